"""What a sync did, per source: the tally it keeps and the run row it leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update

from vpack.db.models import SyncRun, utcnow
from vpack.db.session import Database


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

    def add_downloads(self, other: Tally) -> None:
        """Count in what a download run did for the same source."""
        self.downloaded += other.downloaded
        self.bytes += other.bytes
        self.failed += other.failed
        self.skipped += other.skipped


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


async def start_run(db: Database, source_id: int) -> int:
    """A sync_runs row for a sync of this source that has begun; returns its id."""
    async with db.transaction() as session:
        run = SyncRun(source_id=source_id)
        session.add(run)
        await session.flush()
        return run.id


async def finish_run(db: Database, run_id: int, tally: Tally) -> None:
    async with db.transaction() as session:
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
