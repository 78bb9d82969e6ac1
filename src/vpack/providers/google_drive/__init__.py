"""Google Drive (v3 REST, OAuth2)."""
