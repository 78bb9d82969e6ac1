"""Faithful fake servers, one per provider protocol, run for real over HTTP in tests."""
