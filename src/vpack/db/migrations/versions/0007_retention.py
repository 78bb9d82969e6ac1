"""sources may keep local copies a number of days; videos record when theirs went

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL for every existing source: copies are kept, as before.
    with op.batch_alter_table("sources") as batch:
        batch.add_column(sa.Column("keep_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("removed_local_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("removed_local_at")
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("keep_days")
