"""Dahua NVRs and cameras over the HTTP API (CGI)."""
