"""Progress callbacks from the engine to whoever shows it (CLI bar, API events)."""

from __future__ import annotations


class ProgressSink:
    """Receives progress; every method is optional. Runs on the event loop: keep it quick."""

    def scanned(self, source_id: int, new: int) -> None:
        """A source's scan finished with `new` videos found."""

    def planned(self, videos: int, total_bytes: int) -> None:
        """Downloads about to start: how many and how big (sizes known so far)."""

    def started(self, video_id: int, name: str, size: int | None) -> None:
        """A video's transfer began."""

    def advanced(self, video_id: int, nbytes: int) -> None:
        """More bytes of a video arrived."""

    def finished(self, video_id: int, ok: bool) -> None:
        """A video's transfer ended (ok=False: failed or stopped)."""


class NullProgress(ProgressSink):
    pass
