"""Scanning a source: list what is new or gone and record it, idempotently.

Rows are upserted in batches with the cursor in the same transaction, so a scan
cut anywhere resumes where its last batch committed, and two workers scanning
the same source add each video once (the unique key, ON CONFLICT DO NOTHING)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from vpack.db.models import Source, SourceStatus, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.providers.base import Checkpoint, Found, Provider, RemoteVideo, Removed, Waiting
from vpack.providers.errors import AuthExpired, BadConfig, ProviderError, RateLimited
from vpack.providers.registry import source_options
from vpack.security import audit
from vpack.security.audit import Action
from vpack.store import VideoStore
from vpack.sync.accounts import mark_reauth_in, pause_in
from vpack.sync.filters import SourceFilters
from vpack.sync.provider_cache import ProviderCache, source_with_connection
from vpack.sync.report import Tally
from vpack.sync.retry import RetryPolicy

UPSERT_BATCH = 500
# The revision of a row recorded from another tool's history (vpack import) whose bytes
# cannot be vouched for: the first listing that names the file gives it its revision.
ADOPTABLE_REVISION = "vpack-import:unknown"

# Told of each batch of new rows a scan commits: (videos, bytes).
OnFound = Callable[[int, int], None]


class Scanner:
    def __init__(
        self, db: Database, store: VideoStore, providers: ProviderCache, policy: RetryPolicy
    ) -> None:
        self.db = db
        self.store = store
        self.providers = providers
        self.policy = policy

    async def scan_source(
        self, source_id: int, tally: Tally | None = None, found: OnFound | None = None
    ) -> Tally:
        """List what is new or gone in one source and record it (idempotent).

        `found(videos, bytes)` hears of each batch of new rows as it is committed, so
        downloads can start before a long listing ends."""
        async with self.db.session() as session:
            source = await source_with_connection(session, source_id)
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
            provider = self.providers.get(connection)
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
                await self._mark_reauth(connection.id, str(exc))
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
            if videos:
                await self._adopt(session, source.id, videos)
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

    async def _adopt(
        self, session: AsyncSession, source_id: int, videos: Sequence[RemoteVideo]
    ) -> None:
        """Rows imported without a revision (ADOPTABLE_REVISION) take the one this
        listing gives when the size agrees: the same file, so nothing is fetched."""
        listed = {v.remote_id: v for v in videos}
        rows = await session.execute(
            select(Video.id, Video.remote_id, Video.size).where(
                Video.source_id == source_id,
                Video.remote_id.in_(listed),
                Video.revision == ADOPTABLE_REVISION,
            )
        )
        for video_id, remote_id, size in rows.all():
            video = listed[remote_id]
            if size is None or video.size is None or size == video.size:
                await session.execute(
                    update(Video)
                    .where(Video.id == video_id)
                    .values(
                        revision=video.revision,
                        remote_hash=video.hash,
                        modified_at=video.modified_at,
                    )
                )

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
            await pause_in(session, connection_id, seconds)

    async def _mark_reauth(self, connection_id: int, detail: str) -> None:
        async with self.db.transaction() as session:
            await mark_reauth_in(session, connection_id, detail)

    async def _set_source_status(self, source_id: int, status: str, **values: Any) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Source).where(Source.id == source_id).values(status=status, **values)
            )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
