"""Keeping sources in sync: engine steps, scheduling and executors."""
