"""The Dropbox emulator and its self-tests (driven by Dropbox's own Python SDK)."""
