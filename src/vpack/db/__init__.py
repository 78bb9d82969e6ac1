"""Persistence: models, sessions and migrations."""

# The newest migration's revision (here, not in `session`, for readers that must not
# import SQLAlchemy: vpack.head_start). A test checks it against Alembic's own head,
# so a new migration cannot be forgotten here.
SCHEMA_HEAD = "0003"
