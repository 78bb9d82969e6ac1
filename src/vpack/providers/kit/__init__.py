"""What providers share: the HTTP layer, OAuth tokens, the file-store and recorder kits."""
