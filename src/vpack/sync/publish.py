"""Publishing fetched videos: their place in the store, then one durable commit per group.

A staged file is linked into place (no clobber) before its row says done, and
the filesystem is synced once per group, not once per file."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, update

from vpack.db.models import FeedCounter, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.store import Placement, VideoStore
from vpack.sync import durability
from vpack.sync.claims import Claim
from vpack.sync.transfer import Staged

RESULT_BATCH = 64
RESULT_BATCH_BYTES = 512 * 1024 * 1024
RESULT_MAX_DELAY = 1.0

_VIDEOS = cast(Table, Video.__table__)
# One UPDATE, many parameter sets: the SET clause is the keys of Done.values.
_MARK_DONE = update(_VIDEOS).where(_VIDEOS.c.id == bindparam("done_id"))


@dataclass
class Done:
    """A fetched video, its place decided, waiting for its group's commit."""

    video_id: int
    source_id: int
    staged: Staged
    placement: Placement
    values: dict[str, Any]


class Publisher:
    def __init__(self, db: Database, store: VideoStore) -> None:
        self.db = db
        self.store = store

    def prepare(self, row: Claim, staged: Staged) -> Done:
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
        return Done(row.id, row.source_id, staged, placement, values)

    async def commit(self, items: Sequence[Done]) -> None:
        """Make staged files durable, link them into place, then record them as done."""
        if not items:
            return
        await asyncio.to_thread(self._link_all, items)
        async with self.db.transaction() as session:
            # The counter's row stays locked until this commits, so the next group
            # numbers after it only once it is visible: a feed reader that has seen
            # number n can never later find a smaller one appear.
            last = (
                await session.execute(
                    update(FeedCounter)
                    .where(FeedCounter.id == 1)
                    .values(last_seq=FeedCounter.last_seq + len(items))
                    .returning(FeedCounter.last_seq)
                )
            ).scalar_one()
            first = last - len(items) + 1
            await session.execute(
                _MARK_DONE,
                [
                    {"done_id": item.video_id, **item.values, "published_seq": first + i}
                    for i, item in enumerate(items)
                ],
            )
        await asyncio.to_thread(self._unlink_parts, items)

    def _link_all(self, items: Sequence[Done]) -> None:
        if self.store.fsync:
            durability.sync_filesystem(self.store.staging_dir)
        for item in items:
            target = self.store.link(item.staged.path, item.placement)
            item.values["local_path"] = str(target)
        if self.store.fsync:
            durability.sync_filesystem(self.store.videos_dir)

    def _unlink_parts(self, items: Sequence[Done]) -> None:
        for item in items:
            item.staged.path.unlink(missing_ok=True)


class ResultBatch:
    """Successes are committed in groups: one filesystem sync and one UPDATE per group."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.items: list[Done] = []
        self.bytes = 0
        self.first_at: float | None = None
        self.lock = asyncio.Lock()

    def add(self, item: Done) -> None:
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
            await asyncio.shield(self.publisher.commit(items))
