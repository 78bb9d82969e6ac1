"""Handing published videos on to what consumes them: VPACK, webhooks."""
