"""Which sources are due for a scan."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select

from vpack.db.models import Connection, ConnectionStatus, Source, utcnow
from vpack.db.session import Database


async def due_sources(db: Database, now: datetime | None = None) -> list[int]:
    """Sources whose interval has passed, skipping connections that wait for the user."""
    now = now or utcnow()
    async with db.session() as session:
        result = await session.execute(
            select(Source.id)
            .join(Connection, Source.connection_id == Connection.id)
            .where(
                or_(Source.next_scan_at.is_(None), Source.next_scan_at <= now),
                Connection.status != ConnectionStatus.REAUTH_REQUIRED,
                or_(Connection.paused_until.is_(None), Connection.paused_until <= now),
            )
            .order_by(Source.next_scan_at.is_not(None), Source.next_scan_at, Source.id)
        )
        return list(result.scalars())
