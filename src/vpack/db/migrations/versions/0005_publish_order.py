"""published videos carry their place in publish order, for the hand-off feed

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 01:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("published_seq", sa.BigInteger(), nullable=True))
        batch.create_index("ix_videos_published_seq", ["published_seq"], unique=True)
    counter = op.create_table(
        "feed_counter",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
    )
    # Videos already done join the feed in the order they were downloaded.
    op.execute(
        """
        UPDATE videos SET published_seq = (
            SELECT ranked.n FROM (
                SELECT id, ROW_NUMBER() OVER (ORDER BY downloaded_at, id) AS n
                FROM videos WHERE state = 'done'
            ) AS ranked WHERE ranked.id = videos.id
        ) WHERE state = 'done'
        """
    )
    last = op.get_bind().scalar(sa.text("SELECT COALESCE(MAX(published_seq), 0) FROM videos"))
    op.bulk_insert(counter, [{"id": 1, "last_seq": int(last or 0)}])


def downgrade() -> None:
    op.drop_table("feed_counter")
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ix_videos_published_seq")
        batch.drop_column("published_seq")
