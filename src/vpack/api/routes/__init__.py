"""Routes, one module per domain."""
