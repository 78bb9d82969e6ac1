"""Running the engine's steps in the background: the local (asyncio) executor, and the
change watchers that scan a connection as soon as its store reports a change."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Callable

from vpack.db.models import Connection
from vpack.handoff.deliverer import Deliverer
from vpack.providers.base import Provider
from vpack.providers.errors import RateLimited
from vpack.retention import Retention
from vpack.sync.engine import SyncEngine
from vpack.sync.progress import NullProgress, ProgressSink
from vpack.sync.scheduler import (
    due_sources,
    scan_connection_now,
    stored_cursors,
    watched_connections,
)

log = logging.getLogger(__name__)

WATCH_SECONDS = 120.0  # one wait for changes (Dropbox's longpoll takes 30 to 480)
# After a change, the same cursors are not watched again until a scan has taken the
# change (they would report it at once) or this long has passed (the scan failed).
SETTLE_SECONDS = 60.0
WATCH_BACKOFF_CAP = 300.0


class LocalExecutor:
    """Scans each source on its interval and downloads what is due, in this process."""

    def __init__(
        self,
        engine: SyncEngine,
        tick_seconds: float,
        progress: ProgressSink | None = None,
        deliverer: Deliverer | None = None,
        retention: Retention | None = None,
        retention_every: float = 600.0,
        *,
        watch_seconds: float = WATCH_SECONDS,
    ) -> None:
        self.engine = engine
        self.tick = tick_seconds
        self.watch_seconds = watch_seconds
        self.progress = progress or NullProgress()
        self.deliverer = deliverer  # hands published videos on to the sources' sinks
        self.retention = retention  # deletes copies past their source's keep_days
        self.retention_every = retention_every
        self.wake = asyncio.Event()  # a scan found something to download (or a user asked)
        self.scan_now = asyncio.Event()  # a user asked for a sync
        self.published = asyncio.Event()  # downloads published videos: sinks have work

    def sync_soon(self) -> None:
        """Look for due sources and videos now instead of at the next tick."""
        self.scan_now.set()
        self.wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        released = await self.engine.recover_dead_workers()
        if released:
            log.info("took back %d videos from a worker that died", released)
        async with asyncio.TaskGroup() as group:
            group.create_task(self._scan_loop(stop))
            group.create_task(self._download_loop(stop))
            if self.deliverer is not None:
                group.create_task(self._delivery_loop(stop, self.deliverer))
            if self.retention is not None:
                group.create_task(self._retention_loop(stop, self.retention))
            group.create_task(self._watch_loop(stop))
        await self.engine.aclose()

    async def _scan_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.scan_now.clear()
            for source_id in await due_sources(self.engine.db):
                if stop.is_set():
                    return
                try:
                    # Each committed batch wakes the downloads: a long listing need
                    # not end before its first videos are fetched.
                    tally = await self.engine.scan_source(source_id, found=self._found)
                except Exception:
                    log.exception("scan of source %s failed", source_id)
                    continue
                if tally.error:
                    log.warning("source %s: %s", source_id, tally.error)
                self.progress.scanned(source_id, tally.new)
            await _sleep_or(stop, self.tick, self.scan_now)

    def _found(self, videos: int, nbytes: int) -> None:
        self.wake.set()

    async def _download_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before looking, so a find during this pass wakes the next one.
            self.wake.clear()
            try:
                tallies = await self.engine.run_downloads(
                    due_only=True, stop=stop, progress=self.progress
                )
            except Exception:
                log.exception("download pass failed")
                tallies = {}
            if any(tally.downloaded for tally in tallies.values()):
                self.published.set()
            for tally in tallies.values():
                if tally.downloaded or tally.failed:
                    log.info(
                        "source %s: %d downloaded (%d bytes), %d failed",
                        tally.source_id,
                        tally.downloaded,
                        tally.bytes,
                        tally.failed,
                    )
            await _sleep_or(stop, self.tick, self.wake)

    async def _delivery_loop(self, stop: asyncio.Event, deliverer: Deliverer) -> None:
        while not stop.is_set():
            self.published.clear()
            try:
                await deliverer.deliver_due()
            except Exception:
                log.exception("delivery pass failed")
            await _sleep_or(stop, self.tick, self.published)

    async def _retention_loop(self, stop: asyncio.Event, retention: Retention) -> None:
        while not stop.is_set():
            try:
                deleted = await retention.prune()
            except Exception:
                log.exception("retention pass failed")
            else:
                if deleted:
                    log.info("retention: %d local copies deleted", deleted)
            await _sleep_or(stop, self.retention_every)

    # ---------------------------------------------------------------- change watchers
    async def _watch_loop(self, stop: asyncio.Event) -> None:
        """One watcher per connection whose provider sends change notifications, started
        and stopped as connections come and go; all cancelled when the executor stops."""
        watchers: dict[int, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                try:
                    wanted = set(await watched_connections(self.engine.db))
                except Exception:
                    log.exception("could not list the connections to watch")
                    wanted = set(watchers)
                for connection_id in list(watchers):
                    if connection_id not in wanted or watchers[connection_id].done():
                        watchers.pop(connection_id).cancel()
                for connection_id in wanted - set(watchers):
                    watchers[connection_id] = asyncio.create_task(self._watch(connection_id, stop))
                await _sleep_or(stop, self.tick)
        finally:
            for task in watchers.values():
                task.cancel()
            await asyncio.gather(*watchers.values(), return_exceptions=True)

    async def _watch(self, connection_id: int, stop: asyncio.Event) -> None:
        """Wait for changes after the connection's stored cursors; on one, make its
        sources due and wake the scan loop. Errors back off; none ends the executor."""
        failures = 0
        polled: list[str] | None = None
        changed_at = 0.0
        while not stop.is_set():
            wait = 0.0
            try:
                cursors = await stored_cursors(self.engine.db, connection_id)
                settling = cursors == polled and time.monotonic() - changed_at < SETTLE_SECONDS
                if not cursors or settling:
                    wait = self.tick  # not scanned yet, or the scan has not taken it yet
                else:
                    provider = await self._provider(connection_id)
                    if await provider.wait_for_changes(cursors, self.watch_seconds):
                        await scan_connection_now(self.engine.db, connection_id)
                        polled, changed_at = cursors, time.monotonic()
                        self.scan_now.set()
                    failures = 0
            except asyncio.CancelledError:
                raise
            except RateLimited as exc:
                wait = exc.retry_after or WATCH_BACKOFF_CAP / 10
            except Exception as exc:  # the interval scan is the safety net
                failures += 1
                wait = random.uniform(0, min(WATCH_BACKOFF_CAP, 2.0**failures))
                log.warning("watching connection %s for changes: %s", connection_id, exc)
            if wait:
                await _sleep_or(stop, wait)

    async def _provider(self, connection_id: int) -> Provider:
        built = self.engine.providers.built(connection_id)
        if built is not None:
            return built
        async with self.engine.db.session() as session:
            connection = await session.get(Connection, connection_id)
        if connection is None:
            raise LookupError(f"connection {connection_id} is gone")
        return self.engine.providers.get(connection)


async def _sleep_or(stop: asyncio.Event, seconds: float, *others: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in (stop, *others)]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def install_stop_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set `stop`; returns a function that removes the handlers."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    return remove
