"""Microsoft OneDrive (personal and business) and SharePoint document libraries."""
