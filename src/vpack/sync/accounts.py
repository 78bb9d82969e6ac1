"""The state of a connection as scans and downloads change it: paused, needs sign-in."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from vpack.db.models import Connection, ConnectionStatus, utcnow
from vpack.security import audit
from vpack.security.audit import Action


async def pause_in(session: AsyncSession, connection_id: int, seconds: float) -> None:
    """No requests on this connection for `seconds` (rate limits); claims skip it."""
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(paused_until=utcnow() + timedelta(seconds=seconds))
    )


async def mark_reauth_in(session: AsyncSession, connection_id: int, detail: str) -> None:
    """Park the connection for the user; audited once per change, not per video."""
    changed = (
        await session.execute(
            update(Connection)
            .where(
                Connection.id == connection_id,
                Connection.status != ConnectionStatus.REAUTH_REQUIRED,
            )
            .values(status=ConnectionStatus.REAUTH_REQUIRED, status_detail=detail)
            .returning(Connection.owner_id)
        )
    ).one_or_none()
    if changed is not None:
        audit.record(
            session,
            Action.CONNECTION_REAUTH_REQUIRED,
            user_id=changed[0],
            target_type="connection",
            target_id=connection_id,
            reason=detail,
        )
