"""Alembic environment: runs on the connection handed over by vpack.db.session.migrate."""

from alembic import context

from vpack.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through `alembic` by hand
    raise RuntimeError("run migrations with `vpack init` (vpack.db.session.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
