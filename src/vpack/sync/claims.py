"""Claims and leases: which worker fetches which video, until when.

A claim is one UPDATE ... RETURNING under SKIP LOCKED, so workers on several
machines never fetch the same video at once; a lease that runs out (a worker that
died) makes the video claimable again, and the `.part` file stays for resume."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, update

from vpack.db.models import Connection, ConnectionStatus, Source, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.providers.base import RemoteVideo
from vpack.sync.workers import WorkerId


@dataclass(frozen=True, slots=True)
class Claim:
    """A video claimed for download: the columns fetching and recording it read.

    Read from a Core UPDATE ... RETURNING, not as ORM objects: a sync of many small
    files claims thousands, and building `Video` objects for them, with the ORM's
    statement machinery around each claim, took more CPU than the claims' SQL
    (bench/s3, 5,000 objects; docs/architecture.md, "Claiming and leases")."""

    id: int
    source_id: int
    remote_id: str
    revision: str
    camera: str
    name: str
    remote_path: str
    size: int | None
    remote_hash: str | None
    modified_at: datetime | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    extra: dict[str, Any]
    attempts: int

    def remote(self) -> RemoteVideo:
        """The video as its provider described it, to fetch it again."""
        return RemoteVideo(
            remote_id=self.remote_id,
            revision=self.revision,
            name=self.name,
            camera=self.camera,
            size=self.size,
            hash=self.remote_hash,
            modified_at=self.modified_at,
            recorded_start=self.recorded_start,
            recorded_end=self.recorded_end,
            path=self.remote_path,
            extra=self.extra,
        )


_VIDEOS = cast(Table, Video.__table__)
_SOURCES, _CONNECTIONS = Source.__table__, Connection.__table__
_CLAIM_COLUMNS = [_VIDEOS.c[f.name] for f in fields(Claim)]


class Claims:
    """The claims and leases of one worker (`worker_id`)."""

    def __init__(self, db: Database, worker_id: str, lease: timedelta) -> None:
        self.db = db
        self.worker_id = worker_id
        self.lease = lease

    async def claim(
        self,
        limit: int,
        *,
        source_ids: Iterable[int] | None = None,
        video_ids: Iterable[int] | None = None,
        due_only: bool = True,
        exclude_connections: Iterable[int] = (),
    ) -> list[Claim]:
        """Take up to `limit` videos that are ours to fetch until the lease runs out."""
        now = utcnow()
        async with self.db.transaction() as session:
            sources, connections, columns = _SOURCES.c, _CONNECTIONS.c, _VIDEOS.c
            usable = (
                select(sources.id)
                .join(_CONNECTIONS, sources.connection_id == connections.id)
                .where(
                    connections.status != ConnectionStatus.REAUTH_REQUIRED,
                    or_(connections.paused_until.is_(None), connections.paused_until <= now),
                )
            )
            excluded = list(exclude_connections)
            if excluded:
                usable = usable.where(connections.id.not_in(excluded))
            picked = (
                select(columns.id)
                .where(_claimable(now, due_only=due_only), columns.source_id.in_(usable))
                .order_by(columns.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            if source_ids is not None:
                picked = picked.where(columns.source_id.in_(list(source_ids)))
            if video_ids is not None:
                picked = picked.where(columns.id.in_(list(video_ids)))
            ids = list((await session.execute(picked)).scalars())
            if not ids:
                return []
            result = await session.execute(
                update(_VIDEOS)
                .where(columns.id.in_(ids), _claimable(now, due_only=due_only))
                .values(
                    state=VideoState.DOWNLOADING,
                    lease_owner=self.worker_id,
                    lease_expires_at=now + self.lease,
                )
                .returning(*_CLAIM_COLUMNS)
            )
            claims = [Claim(*row) for row in result]
        claims.sort(key=lambda claim: claim.id)
        return claims

    async def renew_leases(self) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Video)
                .where(Video.lease_owner == self.worker_id, Video.state == VideoState.DOWNLOADING)
                .values(lease_expires_at=utcnow() + self.lease)
            )

    async def release_leases(self, owner: str | None = None) -> int:
        """Give back what we (or a dead worker) claimed; `.part` files stay for resume."""
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Video)
                .where(
                    Video.lease_owner == (owner or self.worker_id),
                    Video.state == VideoState.DOWNLOADING,
                )
                .values(state=VideoState.PENDING, lease_owner=None, lease_expires_at=None)
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def recover_dead_workers(self) -> int:
        """Release leases of workers on this host whose process is gone (kill -9, crash)."""
        async with self.db.session() as session:
            owners = (
                (
                    await session.execute(
                        select(Video.lease_owner)
                        .where(
                            Video.state == VideoState.DOWNLOADING, Video.lease_owner.is_not(None)
                        )
                        .distinct()
                    )
                )
                .scalars()
                .all()
            )
        released = 0
        for owner in owners:
            assert owner is not None
            worker = WorkerId.parse(owner)
            if owner != self.worker_id and worker is not None and worker.is_dead_on_this_host():
                released += await self.release_leases(owner)
        return released

    async def requeue(self, source_ids: Iterable[int] | None = None) -> int:
        """Make failed and backed-off videos due now (a user asked to sync now)."""
        stmt = (
            update(Video)
            .where(Video.state.in_([VideoState.FAILED, VideoState.PENDING]))
            .values(state=VideoState.PENDING, next_attempt_at=None, attempts=0)
        )
        if source_ids is not None:
            stmt = stmt.where(Video.source_id.in_(list(source_ids)))
        async with self.db.transaction() as session:
            result = await session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _claimable(now: datetime, *, due_only: bool) -> Any:
    columns = _VIDEOS.c  # Core columns: ORM ones would route claims through the ORM
    pending = columns.state == VideoState.PENDING
    if due_only:
        pending = and_(
            pending, or_(columns.next_attempt_at.is_(None), columns.next_attempt_at <= now)
        )
    stale = and_(columns.state == VideoState.DOWNLOADING, columns.lease_expires_at < now)
    return or_(pending, stale)
