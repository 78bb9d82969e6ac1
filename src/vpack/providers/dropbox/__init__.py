"""Dropbox: see provider.py."""
