"""Progress callbacks from the engine to whoever shows it (CLI bar, API events)."""

from __future__ import annotations

import asyncio
import time
from typing import Any


class ProgressSink:
    """Receives progress; every method is optional. Runs on the event loop: keep it quick.

    `advanced` may add up several chunks (a few calls a second per transfer). A sink
    that acts on the transfer itself sets `lockstep`: it is then called after every
    chunk, before the next is read, at the cost of a wait per chunk.
    """

    lockstep = False

    def scanned(self, source_id: int, new: int) -> None:
        """A source's scan finished with `new` videos found."""

    def planned(self, videos: int, total_bytes: int) -> None:
        """What this run will fetch: how many videos and how big (sizes known so far).
        Called again, with larger totals, as scans running beside the downloads find more."""

    def started(self, source_id: int, video_id: int, name: str, size: int | None) -> None:
        """A video's transfer began."""

    def advanced(self, video_id: int, nbytes: int) -> None:
        """More bytes of a video arrived."""

    def finished(self, video_id: int, ok: bool) -> None:
        """A video's transfer ended (ok=False: failed or stopped)."""


class NullProgress(ProgressSink):
    pass


class LiveProgress(ProgressSink):
    """What is moving right now, for status pages, plus a feed for live listeners.

    Listeners get small dicts; a slow listener loses old events rather than
    slowing the transfers down.
    """

    def __init__(self) -> None:
        self.in_flight: dict[int, dict[str, Any]] = {}  # video id -> its progress
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._last_sent: dict[int, float] = {}

    def listen(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    def for_source(self, source_id: int) -> list[dict[str, Any]]:
        return [v for v in self.in_flight.values() if v["source_id"] == source_id]

    def scanned(self, source_id: int, new: int) -> None:
        self.publish({"type": "scanned", "source_id": source_id, "new": new})

    def started(self, source_id: int, video_id: int, name: str, size: int | None) -> None:
        entry = {
            "source_id": source_id,
            "video_id": video_id,
            "name": name,
            "size": size,
            "bytes_done": 0,
        }
        self.in_flight[video_id] = entry
        self.publish({"type": "started", **entry})

    def advanced(self, video_id: int, nbytes: int) -> None:
        entry = self.in_flight.get(video_id)
        if entry is None:
            return
        entry["bytes_done"] += nbytes
        now = time.monotonic()
        if now - self._last_sent.get(video_id, 0.0) >= 0.25:  # at most 4 updates a second
            self._last_sent[video_id] = now
            self.publish({"type": "progress", **entry})

    def finished(self, video_id: int, ok: bool) -> None:
        entry = self.in_flight.pop(video_id, None)
        self._last_sent.pop(video_id, None)
        if entry is not None:
            self.publish({"type": "finished", "ok": ok, **entry})
