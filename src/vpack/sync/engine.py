"""The sync engine: one front over scanning, claiming, downloading and publishing.

Every public method is a function of ids, so the local executor and a Celery
worker can run the same steps; at-least-once delivery is made safe by the
videos table's unique key and by leases. The steps live in their own modules:
sync/scan.py, sync/claims.py, sync/downloads.py, sync/publish.py, sync/report.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import timedelta

from sqlalchemy import func, select

from vpack.connections import ConnectionManager
from vpack.db.models import Source, Video, VideoState
from vpack.db.session import Database
from vpack.disk import DiskGuard
from vpack.settings import Settings
from vpack.store import VideoStore
from vpack.sync.accounts import mark_reauth_in
from vpack.sync.claims import Claims
from vpack.sync.downloads import Discovery, Downloads
from vpack.sync.progress import NullProgress, ProgressSink
from vpack.sync.provider_cache import ProviderCache
from vpack.sync.publish import Publisher
from vpack.sync.report import SyncReport, Tally, finish_run, start_run
from vpack.sync.retry import RetryPolicy
from vpack.sync.scan import Scanner
from vpack.sync.workers import make_worker_id

__all__ = ["SyncEngine", "SyncReport", "Tally"]


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
        self.providers = ProviderCache(db, connections)
        self.claims = Claims(db, self.worker_id, timedelta(seconds=settings.lease_seconds))
        self.publisher = Publisher(db, store)
        self.scanner = Scanner(db, store, self.providers, self.policy)
        self.disk = DiskGuard(store.staging_dir, settings.free_space_floor)
        self.downloads = Downloads(
            db, store, settings, self.policy, self.claims, self.publisher, self.providers, self.disk
        )
        # The steps, as their own modules define them: a Celery task calls the same.
        self.scan_source = self.scanner.scan_source
        self.run_downloads = self.downloads.run
        self.claim = self.claims.claim
        self.requeue = self.claims.requeue
        self.recover_dead_workers = self.claims.recover_dead_workers

    async def aclose(self) -> None:
        """Close every provider built (their HTTP clients and pools)."""
        await self.providers.aclose()

    async def mark_reauth(self, connection_id: int, detail: str) -> None:
        """Park the connection until its user signs in again (audited once)."""
        async with self.db.transaction() as session:
            await mark_reauth_in(session, connection_id, detail)

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
        runs = {s.id: await start_run(self.db, s.id) for s in sources}
        await self.recover_dead_workers()
        await self.requeue(by_id)
        # Downloads start with what was already waiting and take each batch a scan
        # finds as it is committed: a listing of thousands of objects takes seconds.
        discovery = Discovery(progress, *await self.pending_bytes(by_id))
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
            by_id[source_id].add_downloads(tally)
        for tally in report.sources:
            await finish_run(self.db, runs[tally.source_id], tally)
        return report

    async def _scan_all(
        self,
        sources: Sequence[Source],
        report: SyncReport,
        progress: ProgressSink,
        discovery: Discovery,
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
