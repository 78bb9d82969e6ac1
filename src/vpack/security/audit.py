"""The audit trail: who did what to which thing, from where, and when."""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from vpack.db.models import AuditEvent

# Detail keys that must never be stored, whatever a caller passes.
_SECRET_KEYS = {
    "password",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "code",
    "client_secret",
    "secret_access_key",
    "code_verifier",
    "key",
}


class Action(enum.StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    USER_CREATED = "user_created"
    USER_DISABLED = "user_disabled"
    USER_ENABLED = "user_enabled"
    CONNECTION_CREATED = "connection_created"
    CONNECTION_REMOVED = "connection_removed"
    CONNECTION_REAUTH_REQUIRED = "connection_reauth_required"
    OAUTH_CALLBACK = "oauth_callback"
    SOURCE_CREATED = "source_created"
    SOURCE_CHANGED = "source_changed"
    SOURCE_REMOVED = "source_removed"
    SYNC_FAILED = "sync_failed"
    SINK_CREATED = "sink_created"
    SINK_CHANGED = "sink_changed"
    SINK_REMOVED = "sink_removed"
    COPY_DELETED = "copy_deleted"
    KEY_ROTATED = "key_rotated"
    VPACK_IMPORTED = "vpack_imported"


def record(
    session: AsyncSession,
    action: Action,
    *,
    user_id: int | None = None,
    target_type: str | None = None,
    target_id: int | str | None = None,
    ip: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to the caller's transaction (it commits with the change)."""
    clean = {k: v for k, v in detail.items() if k.lower() not in _SECRET_KEYS}
    event = AuditEvent(
        action=action.value,
        user_id=user_id,
        target_type=target_type,
        target_id=None if target_id is None else str(target_id),
        ip=ip,
        detail=clean,
    )
    session.add(event)
    return event
