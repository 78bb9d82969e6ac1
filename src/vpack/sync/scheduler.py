"""Which sources are due for a scan, and which connections a change watcher follows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update

from vpack.db.models import Connection, ConnectionStatus, Source, utcnow
from vpack.db.session import Database
from vpack.providers.errors import BadConfig
from vpack.providers.registry import get_provider_class


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


async def watched_connections(db: Database) -> list[int]:
    """Connections with sources whose provider sends change notifications, skipping
    those that wait for the user."""
    async with db.session() as session:
        rows = await session.execute(
            select(Connection.id, Connection.provider)
            .where(
                Connection.status != ConnectionStatus.REAUTH_REQUIRED,
                Connection.id.in_(select(Source.connection_id)),
            )
            .order_by(Connection.id)
        )
        return [cid for cid, name in rows if _notifies(name)]


def _notifies(provider: str) -> bool:
    try:
        return get_provider_class(provider).features.change_notifications
    except BadConfig:
        return False  # a provider this build does not have


async def stored_cursors(db: Database, connection_id: int) -> list[str]:
    """The stored cursor of every selection of the connection's sources."""
    async with db.session() as session:
        rows = await session.execute(
            select(Source.cursors).where(Source.connection_id == connection_id)
        )
        return [c for cursors in rows.scalars() for c in (cursors or {}).values() if c]


async def scan_connection_now(db: Database, connection_id: int) -> None:
    """Make every source of the connection due at once."""
    async with db.transaction() as session:
        await session.execute(
            update(Source).where(Source.connection_id == connection_id).values(next_scan_at=None)
        )
