"""Retention: a source's local copies go some days after publish, never sooner than
every one of its sinks has them (and VPACK has processed what it reads in place).

Only files inside our videos folder are ever deleted (a row imported from VPACK may
point at VPACK's own file); the remote original is never touched; the row stays,
with `removed_local_at`; each deletion is audited."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from vpack.db.models import Sink, Source, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.handoff.deliverer import build_kind
from vpack.handoff.kinds import DeliveryFailed, Published, SinkKind
from vpack.security import audit
from vpack.security.audit import Action
from vpack.security.vault import Vault
from vpack.settings import Settings
from vpack.store import VideoStore

log = logging.getLogger(__name__)
BATCH = 500


class Retention:
    def __init__(
        self, db: Database, store: VideoStore, settings: Settings, vault: Callable[[], Vault]
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.vault = vault

    async def prune(self, now: datetime | None = None) -> int:
        """Delete every copy whose time has come; returns how many went."""
        now = now or utcnow()
        async with self.db.session() as session:
            sources = list(
                (await session.execute(select(Source).where(Source.keep_days.is_not(None))))
                .scalars()
                .all()
            )
        deleted = 0
        for source in sources:
            assert source.keep_days is not None
            deleted += await self._prune_source(source, now - timedelta(days=source.keep_days))
        return deleted

    async def _prune_source(self, source: Source, published_before: datetime) -> int:
        async with self.db.session() as session:
            sinks = list(
                (await session.execute(select(Sink).where(Sink.source_id == source.id))).scalars()
            )
            rows = list(
                (
                    await session.execute(
                        select(Video)
                        .where(
                            Video.source_id == source.id,
                            Video.state == VideoState.DONE,
                            Video.removed_local_at.is_(None),
                            Video.published_seq.is_not(None),
                            Video.downloaded_at < published_before,
                        )
                        .order_by(Video.published_seq)
                        .limit(BATCH)
                    )
                ).scalars()
            )
        kinds: list[tuple[Sink, SinkKind]] = []
        for sink in sinks:
            try:
                kinds.append((sink, build_kind(sink, self.vault(), self.settings, self.store)))
            except DeliveryFailed:
                return 0  # a sink we cannot even read: keep everything until it is fixed
        deleted = 0
        for row in rows:
            video = Published.of(row, self.store)
            if not await self._everyone_has(video, kinds):
                continue
            if await asyncio.to_thread(self._delete, video.path):
                await self._record(source, row)
                deleted += 1
        return deleted

    async def _everyone_has(self, video: Published, kinds: list[tuple[Sink, SinkKind]]) -> bool:
        for sink, kind in kinds:
            if sink.after_seq < video.seq or not await kind.done_with(video):
                return False
        return True

    def _delete(self, path: Path) -> bool:
        """Unlink our copy if it is ours (inside the videos folder)."""
        videos = self.store.videos_dir.resolve()
        if not path.resolve().is_relative_to(videos):
            return False
        path.unlink(missing_ok=True)
        return True

    async def _record(self, source: Source, row: Video) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Video).where(Video.id == row.id).values(removed_local_at=utcnow())
            )
            audit.record(
                session,
                Action.COPY_DELETED,
                user_id=source.owner_id,
                target_type="video",
                target_id=row.id,
                source_id=source.id,
                name=row.name,
                reason=f"kept {source.keep_days} days after publish and handed on",
            )
