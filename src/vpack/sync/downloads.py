"""Downloading what scans found: claim in batches, fetch with bounded concurrency,
publish in groups, and turn each failure into the row's next state.

Setting `stop` cancels transfers in flight: their leases are released and their
`.part` files kept, so the next run resumes them."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from vpack.db.models import Source, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.disk import DiskGuard
from vpack.providers.base import Provider
from vpack.providers.errors import ProviderError
from vpack.security import audit
from vpack.security.audit import Action
from vpack.settings import Settings
from vpack.store import VideoStore
from vpack.sync.accounts import mark_reauth_in, pause_in
from vpack.sync.claims import Claim, Claims
from vpack.sync.progress import NullProgress, ProgressSink
from vpack.sync.provider_cache import ProviderCache
from vpack.sync.publish import Publisher, ResultBatch
from vpack.sync.report import Tally
from vpack.sync.retry import RetryPolicy, Verdict, judge
from vpack.sync.transfer import Staged, stage, stage_each_blocking

log = logging.getLogger(__name__)

CLAIM_BATCH = 64
SMALL_CLAIM_BATCH = 256  # claims of small files only grow up to this (see _drain)
# Videos smaller than this move up to SMALL_BATCH at a time through one thread hand-off.
SMALL_BELOW = 1024 * 1024
SMALL_BATCH = 16


class Downloads:
    def __init__(
        self,
        db: Database,
        store: VideoStore,
        settings: Settings,
        policy: RetryPolicy,
        claims: Claims,
        publisher: Publisher,
        providers: ProviderCache,
        disk: DiskGuard,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.policy = policy
        self.claims = claims
        self.publisher = publisher
        self.providers = providers
        self.disk = disk

    async def run(
        self,
        source_ids: Iterable[int] | None = None,
        *,
        due_only: bool = True,
        stop: asyncio.Event | None = None,
        progress: ProgressSink | None = None,
        max_rate_limit_wait: float = 60.0,
        discovery: Discovery | None = None,
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
            batch=ResultBatch(self.publisher),
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
            await self.claims.release_leases()
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
                    disk = await asyncio.to_thread(self.disk.check)
                    if not disk.ok:
                        # What is in flight finishes; nothing new starts. The next
                        # pass (the executor's tick) looks again.
                        log.warning("downloads wait: %s", disk.describe())
                        return
                    # Asked before the claim: a scan ending during it still gets one more.
                    scanning = run.discovery is not None and run.discovery.expect_more()
                    rows = await self.claims.claim(
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
        period = max(1.0, self.claims.lease.total_seconds() / 3)
        while not stop.is_set():
            await asyncio.sleep(period)
            await self.claims.renew_leases()

    async def _provider_of_source(self, source_id: int, run: _Run) -> Provider:
        """The provider for a source's connection, its connection looked up once per run."""
        connection_id = run.connection_of.get(source_id)
        provider = self.providers.built(connection_id) if connection_id is not None else None
        if provider is None:
            connection_id, provider = await self.providers.for_source(source_id)
            run.connection_of[source_id] = connection_id
        return provider

    async def _download(self, row: Claim, run: _Run) -> None:
        progress = run.progress
        progress.started(row.source_id, row.id, row.name, row.size)
        try:
            provider = await self._provider_of_source(row.source_id, run)
            staged = await stage(
                provider,
                row.remote(),
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
        provider = self.providers.built(connection_id) if connection_id is not None else None
        if (
            provider is None  # the first row of a source finds its provider the usual way
            or run.progress.lockstep  # a sink acting between chunks gets every chunk
            or not _small(row)
            or provider.blocking_reader(row.remote()) is None
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
        jobs = [(row.remote(), self.store.part_path(row.id)) for row in rows]
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
            done = self.publisher.prepare(row, staged)
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

    async def _apply_failure(self, row: Claim, verdict: Verdict, tally: Tally, run: _Run) -> None:
        async with self.db.transaction() as session:
            await session.execute(update(Video).where(Video.id == row.id).values(**verdict.values))
            source = await session.get(Source, row.source_id)
            assert source is not None
            if verdict.reauth:
                run.blocked.add(source.connection_id)
                await mark_reauth_in(session, source.connection_id, verdict.values["error"])
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
                await pause_in(session, source.connection_id, verdict.pause_connection_for)
        if verdict.counts_as_failure:
            tally.failed += 1
        elif verdict.values.get("state") == VideoState.SKIPPED:
            tally.skipped += 1


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
    batch: ResultBatch
    tallies: dict[int, Tally] = field(default_factory=dict)
    connection_of: dict[int, int] = field(default_factory=dict)  # source id -> connection id
    blocked: set[int] = field(default_factory=set)  # connections paused or needing reauth
    rate_limits: _RateLimits = field(default_factory=_RateLimits)
    discovery: Discovery | None = None  # scans still adding rows to this run

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


class Discovery:
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
