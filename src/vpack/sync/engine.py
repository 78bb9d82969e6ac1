"""Scan and download: idempotent steps over the database, a provider and the store.

Every public method is a function of ids, so the local executor and a Celery
worker can run the same steps; at-least-once delivery is made safe by the
videos table's unique key and by leases.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vpack.connections import ConnectionManager
from vpack.db.models import (
    Connection,
    ConnectionStatus,
    Source,
    SourceStatus,
    SyncRun,
    Video,
    VideoState,
    utcnow,
)
from vpack.db.session import Database
from vpack.providers.base import Checkpoint, Found, Provider, RemoteVideo, Removed, Waiting
from vpack.providers.errors import AuthExpired, BadConfig, ProviderError, RateLimited
from vpack.providers.registry import source_options
from vpack.security import audit
from vpack.security.audit import Action
from vpack.settings import Settings
from vpack.store import Placement, VideoStore
from vpack.sync import durability
from vpack.sync.filters import SourceFilters
from vpack.sync.progress import NullProgress, ProgressSink
from vpack.sync.retry import RetryPolicy, Verdict, judge
from vpack.sync.transfer import Staged, stage, stage_each_blocking
from vpack.sync.workers import WorkerId, make_worker_id

log = logging.getLogger(__name__)

UPSERT_BATCH = 500
CLAIM_BATCH = 64
SMALL_CLAIM_BATCH = 256  # claims of small files only grow up to this (see _drain)
RESULT_BATCH = 64
RESULT_BATCH_BYTES = 512 * 1024 * 1024
RESULT_MAX_DELAY = 1.0
# Videos smaller than this move up to SMALL_BATCH at a time through one thread hand-off.
SMALL_BELOW = 1024 * 1024
SMALL_BATCH = 16

# Told of each batch of new rows a scan commits: (videos, bytes).
OnFound = Callable[[int, int], None]


@dataclass
class Tally:
    """What one sync did for one source."""

    source_id: int
    name: str = ""
    new: int = 0
    removed: int = 0
    downloaded: int = 0
    bytes: int = 0
    failed: int = 0
    skipped: int = 0
    filtered: int = 0  # found, but left out by the source's filters
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.source_id,
            "name": self.name,
            "new": self.new,
            "removed": self.removed,
            "downloaded": self.downloaded,
            "bytes": self.bytes,
            "failed": self.failed,
            "skipped": self.skipped,
            "filtered": self.filtered,
            "error": self.error,
        }


@dataclass
class SyncReport:
    sources: list[Tally] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(int(getattr(t, name)) for t in self.sources)

    @property
    def ok(self) -> bool:
        return self.total("failed") == 0 and not any(t.error for t in self.sources)

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.total("new"),
            "downloaded": self.total("downloaded"),
            "bytes": self.total("bytes"),
            "failed": self.total("failed") + sum(1 for t in self.sources if t.error),
            "sources": [t.as_dict() for t in self.sources],
        }


@dataclass
class _Done:
    video_id: int
    source_id: int
    staged: Staged
    placement: Placement
    values: dict[str, Any]


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


_VIDEOS = cast(Table, Video.__table__)
_SOURCES, _CONNECTIONS = Source.__table__, Connection.__table__
# One UPDATE, many parameter sets: the SET clause is the keys of _Done.values.
_MARK_DONE = update(_VIDEOS).where(_VIDEOS.c.id == bindparam("done_id"))
_CLAIM_COLUMNS = [_VIDEOS.c[f.name] for f in fields(Claim)]


class SyncEngine:
    def __init__(
        self,
        db: Database,
        store: VideoStore,
        settings: Settings,
        connections: ConnectionManager,
        *,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.connections = connections
        self.worker_id = worker_id or make_worker_id()
        self.policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            base_seconds=settings.retry_base_seconds,
            cap_seconds=settings.retry_cap_seconds,
        )
        self.lease = timedelta(seconds=settings.lease_seconds)
        self._providers: dict[int, Provider] = {}

    # ---------------------------------------------------------------- providers
    async def provider_for(self, connection: Connection) -> Provider:
        cached = self._providers.get(connection.id)
        if cached is None:
            cached = self.connections.build(connection)
            self._providers[connection.id] = cached
        return cached

    async def aclose(self) -> None:
        providers, self._providers = self._providers, {}
        for provider in providers.values():
            await provider.aclose()

    # ---------------------------------------------------------------- scan
    async def scan_source(
        self, source_id: int, tally: Tally | None = None, found: OnFound | None = None
    ) -> Tally:
        """List what is new or gone in one source and record it (idempotent).

        `found(videos, bytes)` hears of each batch of new rows as it is committed, so
        downloads can start before a long listing ends."""
        async with self.db.session() as session:
            source = await _get_source(session, source_id)
            connection = source.connection
        tally = tally or Tally(source_id=source_id, name=source.name)
        paused = connection.paused_until
        if paused is not None and paused > utcnow():
            # The account waits out what its vendor asked (a locked recorder, a quota):
            # asking again now would prolong it, and the provider's requests would only
            # sit in its pacer until the pause ends.
            tally.error = source.last_error or (
                f"{connection.name} is paused until {paused:%Y-%m-%d %H:%M} UTC"
            )
            await self._finish_scan(source, SourceStatus.PAUSED, tally.error)
            return tally
        await self._set_source_status(
            source_id,
            SourceStatus.SCANNING,
            next_scan_at=utcnow() + timedelta(seconds=source.interval_s),
        )
        try:
            provider = await self.provider_for(connection)
            options = source_options(connection.provider, source.options)
            provider.begin_scan()
            for selection in source.selections:
                await self._scan_selection(source, provider, selection, options, tally, found)
        except BadConfig as exc:
            # The settings are wrong, not the moment: retrying each interval would only
            # repeat the same message, so it waits for the user (or a long while).
            tally.error = str(exc)
            await self._finish_scan(
                source, SourceStatus.ATTENTION, tally.error, wait=self._attention_wait(source)
            )
            return tally
        except ProviderError as exc:
            tally.error = str(exc)
            status = (
                SourceStatus.PAUSED
                if isinstance(exc, AuthExpired | RateLimited)
                else (SourceStatus.ERROR)
            )
            if isinstance(exc, AuthExpired):
                await self.mark_reauth(connection.id, str(exc))
            if isinstance(exc, RateLimited):
                # The whole account waits (a locked recorder, an API quota), not
                # just this source: asking again each interval would prolong it.
                await self._pause_connection(
                    connection.id, exc.retry_after or self.policy.rate_limit_default_seconds
                )
            await self._finish_scan(source, status, str(exc))
            return tally
        await self._finish_scan(source, SourceStatus.IDLE, None)
        return tally

    async def _scan_selection(
        self,
        source: Source,
        provider: Provider,
        selection: str,
        options: Any,
        tally: Tally,
        found: OnFound | None,
    ) -> None:
        cursor = source.cursors.get(selection)
        seen: set[str] | None = set() if provider.features.full_listing else None
        restore = seen is None

        async def record(
            batch: Sequence[RemoteVideo], removed: Sequence[str], cursor: str | None, save: bool
        ) -> None:
            added, nbytes = await self._record(
                source, selection, batch, removed, cursor, save, restore, tally
            )
            tally.new += added
            if added and found is not None:
                found(added, nbytes)

        batch: list[RemoteVideo] = []
        removed: list[str] = []
        filters = SourceFilters.stored(source.filters)
        async for event in provider.scan(selection, cursor, options):
            if isinstance(event, Found):
                if seen is not None:  # filtered or not, it is still there
                    seen.add(event.video.remote_id)
                if not filters.accepts(event.video, self.store.zone):
                    tally.filtered += 1
                    continue
                batch.append(event.video)
                if len(batch) >= UPSERT_BATCH:
                    await record(batch, [], None, False)
                    batch = []
            elif isinstance(event, Waiting):
                if seen is not None:
                    seen.add(event.remote_id)
            elif isinstance(event, Removed):
                removed.append(event.remote_id)
            elif isinstance(event, Checkpoint):
                await record(batch, removed, event.cursor, True)
                batch, removed = [], []
                if seen is not None and event.complete:
                    tally.removed += await self._reconcile_removals(source.id, selection, seen)
        if batch or removed:  # a provider that forgot its final Checkpoint loses nothing
            await record(batch, removed, None, False)

    async def _record(
        self,
        source: Source,
        selection: str,
        videos: Sequence[RemoteVideo],
        removed: Sequence[str],
        cursor: str | None,
        save_cursor: bool,
        restore: bool,
        tally: Tally,
    ) -> tuple[int, int]:
        """Upsert one batch and, in the same transaction, its cursor. Returns the rows
        added and their bytes; removals reported by the provider are counted in `tally`.

        `restore`: rows found again lose their removed mark (for change feeds; a
        full listing does this in its reconciliation)."""
        added = nbytes = 0
        async with self.db.transaction() as session:
            # Most of a rescan is already known: look those up (one cheap SELECT)
            # instead of compiling a 500-row INSERT that would insert nothing.
            if videos and restore:
                # Seen again (untrashed, moved back) after a change feed said gone.
                await session.execute(
                    update(Video)
                    .where(
                        Video.source_id == source.id,
                        Video.remote_id.in_({v.remote_id for v in videos}),
                        Video.removed_at.is_not(None),
                    )
                    .values(removed_at=None)
                )
            videos = await self._unknown(session, source.id, videos)
            if videos:
                rows = [self._row(source, selection, v) for v in videos]
                # One statement, many parameter sets: SQLAlchemy sends them as
                # multi-row INSERTs from one cached compilation. A 500-row .values()
                # was compiled anew for every batch: 0.3 ms a row, most of a scan.
                connection = await session.connection()
                inserted = (await connection.execute(self._insert_new(), rows)).all()
                added, nbytes = len(inserted), sum(size or 0 for _, size in inserted)
            if removed:
                gone = await session.execute(
                    update(Video)
                    .where(
                        Video.source_id == source.id,
                        # A change feed reports the whole account: a file that left
                        # this selection may now be in another of the source's.
                        Video.selection == selection,
                        Video.remote_id.in_(removed),
                        Video.removed_at.is_(None),
                    )
                    .values(removed_at=utcnow())
                )
                tally.removed += getattr(gone, "rowcount", 0) or 0
            if save_cursor:
                fresh = await session.get(Source, source.id)
                if fresh is not None:
                    fresh.cursors = {**fresh.cursors, selection: cursor}
        return added, nbytes

    async def _unknown(
        self, session: AsyncSession, source_id: int, videos: Sequence[RemoteVideo]
    ) -> list[RemoteVideo]:
        if not videos:
            return []
        rows = await session.execute(
            select(Video.remote_id, Video.revision).where(
                Video.source_id == source_id,
                Video.remote_id.in_({v.remote_id for v in videos}),
            )
        )
        known = {(remote_id, revision) for remote_id, revision in rows}
        return [v for v in videos if (v.remote_id, v.revision) not in known]

    def _insert_new(self) -> Any:
        """INSERT of new rows that skips any already there (another worker's scan)."""
        # Only the dialect in use is imported: PostgreSQL's pulls in its drivers' modules.
        dialect = importlib.import_module(f"sqlalchemy.dialects.{self.db.engine.dialect.name}")
        table = Video.__table__
        return (
            dialect.insert(table)
            .on_conflict_do_nothing(index_elements=["source_id", "remote_id", "revision"])
            .returning(table.c.id, table.c.size)
        )

    def _row(self, source: Source, selection: str, v: RemoteVideo) -> dict[str, Any]:
        camera = str(source.cameras.get(v.camera, v.camera))
        return {
            "source_id": source.id,
            "selection": selection,
            "remote_id": v.remote_id,
            "revision": v.revision,
            "camera": camera,
            "name": v.name,
            "remote_path": v.path,
            "size": v.size,
            "remote_hash": v.hash,
            "modified_at": v.modified_at,
            "recorded_start": v.recorded_start,
            "recorded_end": v.recorded_end,
            "extra": v.extra,
            "state": VideoState.PENDING,
            "attempts": 0,
            "bytes_done": 0,
            "created_at": utcnow(),
            "updated_at": utcnow(),
        }

    async def _reconcile_removals(self, source_id: int, selection: str, seen: set[str]) -> int:
        """After a complete listing: rows not seen are gone; rows seen again are back."""
        async with self.db.transaction() as session:
            result = await session.execute(
                select(Video.remote_id, Video.removed_at.is_(None))
                .where(Video.source_id == source_id, Video.selection == selection)
                .distinct()
            )
            gone, back = set(), set()
            for remote_id, live in result:
                if live and remote_id not in seen:
                    gone.add(remote_id)
                elif not live and remote_id in seen:
                    back.add(remote_id)
            for chunk in _chunks(sorted(gone), 500):
                await session.execute(
                    update(Video)
                    .where(
                        Video.source_id == source_id,
                        Video.remote_id.in_(chunk),
                        Video.removed_at.is_(None),
                    )
                    .values(removed_at=utcnow())
                )
            for chunk in _chunks(sorted(back), 500):
                await session.execute(
                    update(Video)
                    .where(Video.source_id == source_id, Video.remote_id.in_(chunk))
                    .values(removed_at=None)
                )
        return len(gone)

    def _attention_wait(self, source: Source) -> float:
        """Seconds to the next try of a source whose settings failed, doubling per failure."""
        previous = None
        if source.status == SourceStatus.ATTENTION and source.last_scan_at and source.next_scan_at:
            previous = (source.next_scan_at - source.last_scan_at).total_seconds()
        return self.policy.attention_wait(source.interval_s, previous)

    async def _finish_scan(
        self, source: Source, status: str, error: str | None, *, wait: float | None = None
    ) -> None:
        """Record the scan's outcome and book the next one `wait` seconds on (default:
        the source's interval)."""
        now = utcnow()
        # An unchanged "needs attention" is audited once, not at every retry.
        newly_attention = status == SourceStatus.ATTENTION and source.status != status
        async with self.db.transaction() as session:
            if error is not None and (status == SourceStatus.ERROR or newly_attention):
                audit.record(
                    session,
                    Action.SYNC_FAILED,
                    user_id=source.owner_id,
                    target_type="source",
                    target_id=source.id,
                    reason=error,
                )
            await session.execute(
                update(Source)
                .where(Source.id == source.id)
                .values(
                    status=status,
                    last_error=error,
                    last_scan_at=now,
                    # The next scan was booked when this one started; a "sync now"
                    # that arrived meanwhile cleared it, and must not be lost.
                    next_scan_at=case(
                        (Source.next_scan_at.is_(None), None),
                        else_=now + timedelta(seconds=wait or source.interval_s),
                    ),
                )
            )

    async def _pause_connection(self, connection_id: int, seconds: float) -> None:
        async with self.db.transaction() as session:
            await _pause_in(session, connection_id, seconds)

    async def _set_source_status(self, source_id: int, status: str, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Source).where(Source.id == source_id).values(status=status, **values)
            )

    async def mark_reauth(self, connection_id: int, detail: str) -> None:
        await self.mark_reauth_in(None, connection_id, detail)

    async def mark_reauth_in(
        self, session: AsyncSession | None, connection_id: int, detail: str
    ) -> None:
        """Park the connection for the user; audited once per change, not per video."""
        if session is None:
            async with self.db.transaction() as own:
                await self.mark_reauth_in(own, connection_id, detail)
            return
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

    # ---------------------------------------------------------------- claim
    def _claimable(self, now: datetime, *, due_only: bool) -> Any:
        columns = _VIDEOS.c  # Core columns: ORM ones would route claims through the ORM
        pending = columns.state == VideoState.PENDING
        if due_only:
            pending = and_(
                pending, or_(columns.next_attempt_at.is_(None), columns.next_attempt_at <= now)
            )
        stale = and_(columns.state == VideoState.DOWNLOADING, columns.lease_expires_at < now)
        return or_(pending, stale)

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
                .where(self._claimable(now, due_only=due_only), columns.source_id.in_(usable))
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
                .where(columns.id.in_(ids), self._claimable(now, due_only=due_only))
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

    # ---------------------------------------------------------------- download
    async def run_downloads(
        self,
        source_ids: Iterable[int] | None = None,
        *,
        due_only: bool = True,
        stop: asyncio.Event | None = None,
        progress: ProgressSink | None = None,
        max_rate_limit_wait: float = 60.0,
        discovery: _Discovery | None = None,
    ) -> dict[int, Tally]:
        """Fetch claimable videos with bounded concurrency until none are left (and,
        with a `discovery`, its scans have ended).

        Setting `stop` cancels transfers in flight: their leases are released and
        their `.part` files kept, so the next run resumes them.
        """
        run = _Run(
            source_ids=list(source_ids) if source_ids is not None else None,
            due_only=due_only,
            progress=progress or NullProgress(),
            batch=_ResultBatch(self),
            discovery=discovery,
        )
        stop = stop or asyncio.Event()
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        try:
            while not stop.is_set():
                run.rate_limits = _RateLimits()
                drained = await _until_stopped(self._drain(run), stop)
                await run.batch.flush()
                wait = run.rate_limits.until
                # A short rate-limit pause is waited out in this run; longer ones
                # are left to the scheduler.
                if not drained or wait is None or wait > max_rate_limit_wait:
                    break
                run.blocked -= run.rate_limits.connections
                await _until_stopped(asyncio.sleep(wait), stop)
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await run.batch.flush()
            await self.release_leases()
        return run.tallies

    async def _drain(self, run: _Run) -> None:
        limit = self.settings.concurrency
        # Claims come in batches (one UPDATE each), refilled only once the queue
        # runs low: small files go by in a blink, and claiming a row each time a
        # worker took one made the database the bottleneck.
        base = batch = max(CLAIM_BATCH, limit * 2)
        queue = _Claimed()
        running_low = asyncio.Event()

        async def claimer() -> None:
            nonlocal batch
            try:
                while True:
                    # Asked before the claim: a scan ending during it still gets one more.
                    scanning = run.discovery is not None and run.discovery.expect_more()
                    rows = await self.claim(
                        batch,
                        source_ids=run.source_ids,
                        due_only=run.due_only,
                        exclude_connections=run.blocked,
                    )
                    if not rows:
                        if not scanning:
                            return
                        await run.discovery.found.wait()  # type: ignore[union-attr]
                        continue
                    queue.put(rows)
                    # Claims grow while they bring only small files: each one sorts
                    # what is pending in a transaction of its own (5,000 small files:
                    # 0.44 CPU-s in claims of 64, 0.17 in claims of 256), and a few
                    # hundred small files are still only seconds of work to hold.
                    small = all(_small(row) for row in rows)
                    batch = min(batch * 2, SMALL_CLAIM_BATCH) if small else base
                    running_low.clear()
                    await running_low.wait()
            finally:
                queue.close()

        async def worker() -> None:
            while (row := await queue.take()) is not None:
                small = self._small_batch(row, queue, run, share=(len(queue) + 1) // limit)
                if len(queue) <= batch // 2:
                    running_low.set()
                if small is None:
                    await self._download(row, run)
                else:
                    await self._download_small(*small, run)
                await run.batch.flush_if_due()

        async with asyncio.TaskGroup() as group:
            group.create_task(claimer())
            for _ in range(limit):
                group.create_task(worker())

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        period = max(1.0, self.lease.total_seconds() / 3)
        while not stop.is_set():
            await asyncio.sleep(period)
            await self.renew_leases()

    async def _provider_of_source(self, source_id: int, run: _Run) -> Provider:
        """The provider for a source's connection, looked up once per run."""
        connection_id = run.connection_of.get(source_id)
        if connection_id is None:
            async with self.db.session() as session:
                source = await _get_source(session, source_id)
            connection_id = run.connection_of[source_id] = source.connection_id
            if connection_id not in self._providers:
                self._providers[connection_id] = self.connections.build(source.connection)
        return self._providers[connection_id]

    async def _download(self, row: Claim, run: _Run) -> None:
        progress = run.progress
        progress.started(row.source_id, row.id, row.name, row.size)
        try:
            provider = await self._provider_of_source(row.source_id, run)
            staged = await stage(
                provider,
                _remote(row),
                self.store.part_path(row.id),
                on_bytes=lambda n: progress.advanced(row.id, n),
                lockstep=progress.lockstep,
                durable=self.store.fsync,
            )
        except asyncio.CancelledError:
            progress.finished(row.id, ok=False)
            raise
        except Exception as exc:
            await self._fetch_failed(row, exc, run)
            return
        await self._fetched(row, staged, run)

    def _small_batch(
        self, row: Claim, queue: _Claimed, run: _Run, share: int
    ) -> tuple[Provider, list[Claim]] | None:
        """`row` and the small rows of its source queued right behind it (up to
        `share` in all), when they can all move in one thread hand-off: a 64 KiB object
        costs less to fetch than the hand-off and the bookkeeping of a transfer
        of its own. None: fetch `row` alone."""
        connection_id = run.connection_of.get(row.source_id)
        provider = self._providers.get(connection_id) if connection_id is not None else None
        if (
            provider is None  # the first row of a source finds its provider the usual way
            or run.progress.lockstep  # a sink acting between chunks gets every chunk
            or not _small(row)
            or provider.blocking_reader(_remote(row)) is None
        ):
            return None
        rows = [row]
        rows += queue.take_while(
            lambda r: r.source_id == row.source_id and _small(r),
            min(SMALL_BATCH, share) - 1,
        )
        return provider, rows

    async def _download_small(self, provider: Provider, rows: list[Claim], run: _Run) -> None:
        """Several small videos of one source, fetched one after another in one thread.
        Their bytes are reported when each is done, not chunk by chunk."""
        progress = run.progress
        for row in rows:
            progress.started(row.source_id, row.id, row.name, row.size)
        jobs = [(_remote(row), self.store.part_path(row.id)) for row in rows]
        try:
            outcomes = await stage_each_blocking(provider, jobs, durable=self.store.fsync)
        except asyncio.CancelledError:
            # Finished ones keep their whole `.part`: the next run adopts it unfetched.
            for row in rows:
                progress.finished(row.id, ok=False)
            raise
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, Exception):
                await self._fetch_failed(row, outcome, run)
            else:
                progress.advanced(row.id, outcome.size)
                await self._fetched(row, outcome, run)

    async def _fetched(self, row: Claim, staged: Staged, run: _Run) -> None:
        try:
            done = self._prepare_publish(row, staged)
        except Exception as exc:
            await self._fetch_failed(row, exc, run)
            return
        tally = run.tally(row.source_id)
        tally.downloaded += 1
        tally.bytes += staged.size
        run.batch.add(done)
        run.progress.finished(row.id, ok=True)

    async def _fetch_failed(self, row: Claim, exc: Exception, run: _Run) -> None:
        if not isinstance(exc, ProviderError):
            log.exception("unexpected error fetching video %s", row.id, exc_info=exc)
        verdict = judge(exc, row.attempts, self.policy, utcnow())
        if verdict.final or getattr(exc, "restart", False):
            await asyncio.to_thread(self.store.discard, row.id)
        await self._apply_failure(row, verdict, run.tally(row.source_id), run)
        run.progress.finished(row.id, ok=not verdict.counts_as_failure)

    def _prepare_publish(self, row: Claim, staged: Staged) -> _Done:
        """Decide the staged file's place and row values from what its probe found.
        (The probe ran in the transfer's thread: one thread hand-off per video.)"""
        info = staged.info
        assert info is not None, "stage() probes every file it hands back"
        start = row.recorded_start or info.recorded_start
        when = start or row.modified_at or utcnow()
        placement = self.store.placement(row.source_id, row.camera, when, row.name)
        values = {
            "state": VideoState.DONE,
            "lease_owner": None,
            "lease_expires_at": None,
            "error": None,
            "size": staged.size,
            "bytes_done": staged.size,
            "sha256": staged.sha256,
            "duration_s": info.duration_s,
            "codecs": info.codecs,
            "probe_error": info.error,
            "recorded_start": start,
            "downloaded_at": utcnow(),
        }
        return _Done(row.id, row.source_id, staged, placement, values)

    async def _apply_failure(self, row: Claim, verdict: Verdict, tally: Tally, run: _Run) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(Video).where(Video.id == row.id).values(**verdict.values))
            source = await session.get(Source, row.source_id)
            assert source is not None
            if verdict.reauth:
                run.blocked.add(source.connection_id)
                await self.mark_reauth_in(session, source.connection_id, verdict.values["error"])
            if verdict.values.get("state") == VideoState.FAILED:
                audit.record(
                    session,
                    Action.SYNC_FAILED,
                    user_id=source.owner_id,
                    target_type="video",
                    target_id=row.id,
                    source_id=source.id,
                    name=row.name,
                    reason=verdict.values["error"],
                )
            if verdict.pause_connection_for is not None:
                run.blocked.add(source.connection_id)
                run.rate_limits.add(source.connection_id, verdict.pause_connection_for)
                await _pause_in(session, source.connection_id, verdict.pause_connection_for)
        if verdict.counts_as_failure:
            tally.failed += 1
        elif verdict.values.get("state") == VideoState.SKIPPED:
            tally.skipped += 1

    async def commit_done(self, items: Sequence[_Done]) -> None:
        """Make staged files durable, link them into place, then record them as done."""
        if not items:
            return
        await asyncio.to_thread(self._link_all, items)
        async with self.db.transaction() as session:
            await session.execute(
                _MARK_DONE, [{"done_id": item.video_id, **item.values} for item in items]
            )
        await asyncio.to_thread(self._unlink_parts, items)

    def _link_all(self, items: Sequence[_Done]) -> None:
        if self.store.fsync:
            durability.sync_filesystem(self.store.staging_dir)
        for item in items:
            target = self.store.link(item.staged.path, item.placement)
            item.values["local_path"] = str(target)
        if self.store.fsync:
            durability.sync_filesystem(self.store.videos_dir)

    def _unlink_parts(self, items: Sequence[_Done]) -> None:
        for item in items:
            item.staged.path.unlink(missing_ok=True)

    # ---------------------------------------------------------------- runs
    async def sync(
        self,
        source_ids: Sequence[int] | None = None,
        *,
        progress: ProgressSink | None = None,
        stop: asyncio.Event | None = None,
    ) -> SyncReport:
        """What `vpack sync` does: requeue failures, scan, then download everything."""
        progress = progress or NullProgress()
        async with self.db.session() as session:
            query = select(Source).order_by(Source.id)
            if source_ids:
                query = query.where(Source.id.in_(source_ids))
            sources = list((await session.execute(query)).scalars())
        report = SyncReport([Tally(source_id=s.id, name=s.name) for s in sources])
        by_id = {t.source_id: t for t in report.sources}
        runs = {s.id: await self._start_run(s.id) for s in sources}
        await self.recover_dead_workers()
        await self.requeue(by_id)
        # Downloads start with what was already waiting and take each batch a scan
        # finds as it is committed: a listing of thousands of objects takes seconds.
        discovery = _Discovery(progress, *await self.pending_bytes(by_id))
        scans = asyncio.create_task(self._scan_all(sources, report, progress, discovery))
        try:
            tallies = await self.run_downloads(
                by_id, due_only=True, stop=stop, progress=progress, discovery=discovery
            )
        except BaseException:  # the downloads failed or were cancelled: so are the scans
            scans.cancel()
            await asyncio.gather(scans, return_exceptions=True)
            raise
        await scans  # `stop` ends the downloads early; a scan still ends cleanly, as before
        for source_id, tally in tallies.items():
            mine = by_id[source_id]
            mine.downloaded += tally.downloaded
            mine.bytes += tally.bytes
            mine.failed += tally.failed
            mine.skipped += tally.skipped
        for tally in report.sources:
            await self._finish_run(runs[tally.source_id], tally)
        return report

    async def _scan_all(
        self,
        sources: Sequence[Source],
        report: SyncReport,
        progress: ProgressSink,
        discovery: _Discovery,
    ) -> None:
        try:
            for source, tally in zip(sources, report.sources, strict=True):
                await self.scan_source(source.id, tally, found=discovery.add)
                progress.scanned(source.id, tally.new)
        finally:
            discovery.finish()

    async def pending_bytes(self, source_ids: Iterable[int]) -> tuple[int, int]:
        """(videos, bytes) waiting to be fetched for these sources."""
        async with self.db.session() as session:
            row = (
                await session.execute(
                    select(func.count(Video.id), func.coalesce(func.sum(Video.size), 0)).where(
                        Video.source_id.in_(list(source_ids)), Video.state == VideoState.PENDING
                    )
                )
            ).one()
        return int(row[0] or 0), int(row[1] or 0)

    async def _start_run(self, source_id: int) -> int:
        async with self.db.transaction() as session:
            run = SyncRun(source_id=source_id)
            session.add(run)
            await session.flush()
            return run.id

    async def _finish_run(self, run_id: int, tally: Tally) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(SyncRun)
                .where(SyncRun.id == run_id)
                .values(
                    finished_at=utcnow(),
                    status="failed" if (tally.failed or tally.error) else "ok",
                    new=tally.new,
                    removed=tally.removed,
                    downloaded=tally.downloaded,
                    failed=tally.failed,
                    bytes=tally.bytes,
                    error=tally.error,
                )
            )


class _ResultBatch:
    """Successes are committed in groups: one filesystem sync and one UPDATE per group."""

    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.items: list[_Done] = []
        self.bytes = 0
        self.first_at: float | None = None
        self.lock = asyncio.Lock()

    def add(self, item: _Done) -> None:
        self.items.append(item)
        self.bytes += item.staged.size
        if self.first_at is None:
            self.first_at = asyncio.get_running_loop().time()

    async def flush_if_due(self) -> None:
        if not self.items:
            return
        age = asyncio.get_running_loop().time() - (self.first_at or 0)
        if (
            len(self.items) >= RESULT_BATCH
            or self.bytes >= RESULT_BATCH_BYTES
            or age >= RESULT_MAX_DELAY
        ):
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            items, self.items, self.bytes, self.first_at = self.items, [], 0, None
            await asyncio.shield(self.engine.commit_done(items))


class _RateLimits:
    """Connections told to slow down during one pass, and the longest wait asked."""

    def __init__(self) -> None:
        self.connections: set[int] = set()
        self.until: float | None = None

    def add(self, connection_id: int, seconds: float) -> None:
        self.connections.add(connection_id)
        self.until = max(self.until or 0.0, seconds)


@dataclass
class _Run:
    """State shared by the claimer and workers of one run_downloads call."""

    source_ids: list[int] | None
    due_only: bool
    progress: ProgressSink
    batch: _ResultBatch
    tallies: dict[int, Tally] = field(default_factory=dict)
    connection_of: dict[int, int] = field(default_factory=dict)  # source id -> connection id
    blocked: set[int] = field(default_factory=set)  # connections paused or needing reauth
    rate_limits: _RateLimits = field(default_factory=_RateLimits)
    discovery: _Discovery | None = None  # scans still adding rows to this run

    def tally(self, source_id: int) -> Tally:
        return self.tallies.setdefault(source_id, Tally(source_id=source_id))


class _Claimed:
    """Claimed rows waiting for a worker, in claim order."""

    def __init__(self) -> None:
        self.rows: deque[Claim] = deque()
        self.more = asyncio.Event()
        self.closed = False

    def __len__(self) -> int:
        return len(self.rows)

    def put(self, rows: Iterable[Claim]) -> None:
        self.rows.extend(rows)
        self.more.set()

    def close(self) -> None:
        """No more rows will come: workers finish what is queued, then stop."""
        self.closed = True
        self.more.set()

    async def take(self) -> Claim | None:
        """The next row; None once the queue is closed and empty."""
        while not self.rows:
            if self.closed:
                return None
            self.more.clear()
            await self.more.wait()
        return self.rows.popleft()

    def take_while(self, like: Callable[[Claim], bool], limit: int) -> list[Claim]:
        """Up to `limit` rows from the front, as long as they are `like` the first."""
        taken: list[Claim] = []
        while self.rows and len(taken) < limit and like(self.rows[0]):
            taken.append(self.rows.popleft())
        return taken


class _Discovery:
    """What scans running beside the downloads have found so far: wakes the claimer
    and keeps the progress plan up to date."""

    def __init__(self, progress: ProgressSink, videos: int, nbytes: int) -> None:
        self.progress = progress
        self.videos, self.bytes = videos, nbytes
        self.found = asyncio.Event()  # new rows, or the scans ended
        self.done = False
        progress.planned(videos, nbytes)

    def add(self, videos: int, nbytes: int) -> None:
        self.videos += videos
        self.bytes += nbytes
        self.progress.planned(self.videos, self.bytes)
        self.found.set()

    def finish(self) -> None:
        self.done = True
        self.found.set()

    def expect_more(self) -> bool:
        """Could rows still come? (Arms `found` for the next batch.)"""
        self.found.clear()
        return not self.done


async def _until_stopped(work: Coroutine[Any, Any, Any], stop: asyncio.Event) -> bool:
    """Run `work` unless `stop` is set first (then cancel it). True if it finished."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    task.result()  # re-raise a failure of the work itself
    return True


def _small(row: Claim) -> bool:
    return row.size is not None and row.size < SMALL_BELOW


def _remote(row: Claim) -> RemoteVideo:
    return RemoteVideo(
        remote_id=row.remote_id,
        revision=row.revision,
        name=row.name,
        camera=row.camera,
        size=row.size,
        hash=row.remote_hash,
        modified_at=row.modified_at,
        recorded_start=row.recorded_start,
        recorded_end=row.recorded_end,
        path=row.remote_path,
        extra=row.extra,
    )


async def _get_source(session: AsyncSession, source_id: int) -> Source:
    source = (
        await session.execute(
            select(Source).options(selectinload(Source.connection)).where(Source.id == source_id)
        )
    ).scalar_one_or_none()
    if source is None:
        raise LookupError(f"no source with id {source_id}")
    return source


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def _pause_in(session: AsyncSession, connection_id: int, seconds: float) -> None:
    """No requests on this connection for `seconds` (rate limits); claims skip it."""
    await session.execute(
        update(Connection)
        .where(Connection.id == connection_id)
        .values(paused_until=utcnow() + timedelta(seconds=seconds))
    )
