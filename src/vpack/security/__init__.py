"""Accounts, sessions, the credential vault and the audit trail."""
