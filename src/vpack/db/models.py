"""The tables: connections, sources, videos, sync runs and audit events."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Role(enum.StrEnum):
    ADMIN = "admin"
    USER = "user"


class User(Base):
    """A person who signs in; everything they connect is theirs alone."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-case
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default=Role.USER)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]


class OAuthState(Base):
    """One pending OAuth authorisation: single use, bound to its user, short-lived."""

    __tablename__ = "oauth_states"

    state: Mapped[str] = mapped_column(String(100), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))
    code_verifier: Mapped[str] = mapped_column(String(200))  # PKCE
    connection_name: Mapped[str | None] = mapped_column(String(200))
    connection_id: Mapped[int | None] = mapped_column(Integer)  # set when reconnecting
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ConnectionStatus(enum.StrEnum):
    OK = "ok"
    REAUTH_REQUIRED = "reauth_required"
    ERROR = "error"


class SourceStatus(enum.StrEnum):
    IDLE = "idle"
    SCANNING = "scanning"
    SYNCING = "syncing"
    PAUSED = "paused"  # rate limited or waiting for reauth
    ERROR = "error"
    # Its own settings (or its connection's) stop every scan: a folder gone, a bucket
    # renamed, options no longer valid. Tried again rarely, and at once when changed.
    ATTENTION = "attention"


class VideoState(enum.StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


class Connection(Base):
    """An account, key pair or device: how we reach a provider."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )  # None: the operator's (made with the CLI)
    provider: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # non-secret settings
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)  # vault ciphertext
    account: Mapped[str | None] = mapped_column(String(400))  # identity from check()
    status: Mapped[str] = mapped_column(String(20), default=ConnectionStatus.OK)
    status_detail: Mapped[str | None] = mapped_column(Text)
    paused_until: Mapped[datetime | None]  # rate limited: whole account waits
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sources: Mapped[list[Source]] = relationship(
        back_populates="connection",
        passive_deletes=True,  # the database cascades
    )


class Source(Base):
    """What to keep in sync: some selected folders/channels of one connection."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    selections: Mapped[list[str]] = mapped_column(default=list)
    # selection -> the name the provider gave it (a Drive folder id -> "Cam1").
    selection_names: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cameras: Mapped[dict[str, Any]] = mapped_column(default=dict)  # camera renames
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)  # provider SourceOptions
    filters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    interval_s: Mapped[int] = mapped_column(Integer, default=300)
    # Local copies go this many days after publish, never before every sink has them
    # (None: kept for ever).
    keep_days: Mapped[int | None] = mapped_column(Integer)
    cursors: Mapped[dict[str, Any]] = mapped_column(default=dict)  # selection -> cursor
    status: Mapped[str] = mapped_column(String(20), default=SourceStatus.IDLE)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_scan_at: Mapped[datetime | None]
    next_scan_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    connection: Mapped[Connection] = relationship(back_populates="sources")


class Video(Base):
    """One revision of one remote recording, and where its verified copy is."""

    __tablename__ = "videos"
    __table_args__ = (
        UniqueConstraint("source_id", "remote_id", "revision", name="uq_videos_identity"),
        Index("ix_videos_source_state", "source_id", "state"),
        Index("ix_videos_state_due", "state", "next_attempt_at"),
        Index("ix_videos_published_seq", "published_seq", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    selection: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[str] = mapped_column(String(1024))
    revision: Mapped[str] = mapped_column(String(200))
    camera: Mapped[str] = mapped_column(String(400))
    name: Mapped[str] = mapped_column(Text)
    remote_path: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int | None] = mapped_column(BigInteger)
    remote_hash: Mapped[str | None] = mapped_column(String(200))
    modified_at: Mapped[datetime | None]
    recorded_start: Mapped[datetime | None]
    recorded_end: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    codecs: Mapped[str | None] = mapped_column(String(200))
    probe_error: Mapped[str | None] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)

    state: Mapped[str] = mapped_column(String(20), default=VideoState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)

    local_path: Mapped[str | None] = mapped_column(Text)  # relative to the videos dir
    sha256: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None]  # gone at the source; our copy stays
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    downloaded_at: Mapped[datetime | None]
    # Its place in publish order (the hand-off feed): given under FeedCounter's row
    # lock in the transaction that marks it done, so numbers commit in order.
    published_seq: Mapped[int | None] = mapped_column(BigInteger)
    removed_local_at: Mapped[datetime | None]  # our copy deleted by the source's retention


class SinkStatus(enum.StrEnum):
    OK = "ok"
    FAILING = "failing"  # the last delivery failed; retried with backoff
    DISABLED = "disabled"  # stopped after repeated failures, or by its owner


class Sink(Base):
    """Where a source's published videos are handed on (VPACK's folder or queue, a
    webhook), each once and in publish order: `after_seq` is how far it has got."""

    __tablename__ = "sinks"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[bytes | None] = mapped_column(LargeBinary)  # vault ciphertext
    after_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(20), default=SinkStatus.OK)
    status_detail: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Delivery(Base):
    """One attempt to hand one video to one sink: the delivery log."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_sink_at", "sink_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sink_id: Mapped[int] = mapped_column(ForeignKey("sinks.id", ondelete="CASCADE"))
    video_id: Mapped[int] = mapped_column(ForeignKey("videos.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedCounter(Base):
    """The last publish number given out; one row, locked by each publishing commit."""

    __tablename__ = "feed_counter"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")
    new: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    downloaded: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
