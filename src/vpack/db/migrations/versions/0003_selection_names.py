"""sources keep their selections' display names

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing sources get {}: the UI then shows the selection itself, as before.
    with op.batch_alter_table("sources") as batch:
        batch.add_column(
            sa.Column("selection_names", sa.JSON(), nullable=False, server_default="{}")
        )


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("selection_names")
