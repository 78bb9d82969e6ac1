"""The audit log: administrators see everyone's events, users their own."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import select

from vpack.api.deps import CurrentUser, CursorQuery, SessionDep, cursor_id
from vpack.api.owned import owned
from vpack.api.schemas import AuditOut, AuditPage
from vpack.db.models import AuditEvent

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
async def list_audit(
    user: CurrentUser,
    session: SessionDep,
    action: str | None = Query(default=None, max_length=60),
    cursor: CursorQuery = None,
    limit: int = Query(default=100, ge=1, le=500),
) -> AuditPage:
    query = owned(select(AuditEvent), AuditEvent.user_id, user)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if (after := cursor_id(cursor)) is not None:
        query = query.where(AuditEvent.id < after)
    rows = list(
        (await session.execute(query.order_by(AuditEvent.id.desc()).limit(limit + 1))).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        items=[AuditOut.model_validate(r) for r in rows],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )
