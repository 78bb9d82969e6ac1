"""Persistence: models, sessions and migrations."""

# The newest migration's revision: `migrate` skips Alembic's start-up when the database
# is already there. A test checks it against Alembic's own head, so a new migration
# cannot be forgotten here.
SCHEMA_HEAD = "0007"
