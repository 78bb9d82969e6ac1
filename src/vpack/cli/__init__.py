"""The `vpack` command."""
