"""Benchmarks for VPACK Sources (run with `make bench`)."""
