"""Delivering each sink's videos in publish order, each once, retried with backoff.

A sink's `after_seq` moves past a video only once that video was handed on; a
failure stops the sink there (later videos wait, so order holds) and retries it
after a backoff; repeated failure disables it with the reason. A lease on the
sink row keeps two processes from delivering the same sink at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import exists, or_, select, update

from vpack.db.models import Delivery, Sink, SinkStatus, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.handoff.kinds import KINDS, DeliveryFailed, Published, SinkKind
from vpack.security.vault import Vault
from vpack.settings import Settings
from vpack.store import VideoStore
from vpack.sync.retry import RetryPolicy

log = logging.getLogger(__name__)

MAX_FAILURES = 12  # in a row, then the sink is disabled until its owner enables it
BATCH = 50
LEASE = timedelta(minutes=5)


def vault_id(sink_id: int) -> int:
    """The id a sink's secrets are bound to in the vault: negative, so a sink's blob can
    never pass for a connection's (connection ids are positive)."""
    return -sink_id


def build_kind(sink: Sink, vault: Vault, settings: Settings, store: VideoStore) -> SinkKind:
    """The sink's kind with its configuration (secrets decrypted for this use)."""
    kind = KINDS.get(sink.kind)
    if kind is None:
        raise DeliveryFailed(f"unknown sink kind {sink.kind!r}")
    values: dict[str, Any] = dict(sink.config)
    if sink.secrets is not None:
        values.update(vault.decrypt(vault_id(sink.id), sink.secrets))
    try:
        config = kind.Config.model_validate(values)
    except ValidationError as exc:
        raise DeliveryFailed(f"invalid {kind.label} settings: {exc.errors()[0]['msg']}") from None
    return kind(config, settings, store.zone)


class Deliverer:
    def __init__(
        self,
        db: Database,
        store: VideoStore,
        settings: Settings,
        vault: Callable[[], Vault],
        worker_id: str,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.vault = vault
        self.worker_id = worker_id
        self.policy = RetryPolicy(
            base_seconds=settings.retry_base_seconds, cap_seconds=settings.retry_cap_seconds
        )

    async def deliver_due(self) -> int:
        """Deliver what every due sink has waiting; returns the videos handed on."""
        now = utcnow()
        async with self.db.session() as session:
            waiting = exists().where(
                Video.source_id == Sink.source_id,
                Video.published_seq > Sink.after_seq,
            )
            due = (
                await session.execute(
                    select(Sink.id)
                    .where(
                        Sink.status != SinkStatus.DISABLED,
                        or_(Sink.next_attempt_at.is_(None), Sink.next_attempt_at <= now),
                        waiting,
                    )
                    .order_by(Sink.id)
                )
            ).scalars()
            sink_ids = list(due)
        delivered = 0
        for sink_id in sink_ids:
            if await self._take_lease(sink_id):
                try:
                    delivered += await self._deliver_sink(sink_id)
                finally:
                    await self._release_lease(sink_id)
        return delivered

    async def _take_lease(self, sink_id: int) -> bool:
        now = utcnow()
        async with self.db.transaction() as session:
            taken = await session.execute(
                update(Sink)
                .where(
                    Sink.id == sink_id,
                    or_(
                        Sink.lease_owner.is_(None),
                        Sink.lease_expires_at < now,
                        Sink.lease_owner == self.worker_id,
                    ),
                )
                .values(lease_owner=self.worker_id, lease_expires_at=now + LEASE)
            )
        return bool(getattr(taken, "rowcount", 0))

    async def _release_lease(self, sink_id: int) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Sink)
                .where(Sink.id == sink_id, Sink.lease_owner == self.worker_id)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def _deliver_sink(self, sink_id: int) -> int:
        async with self.db.session() as session:
            sink = await session.get(Sink, sink_id)
        if sink is None or sink.status == SinkStatus.DISABLED:
            return 0
        try:
            kind = build_kind(sink, self.vault(), self.settings, self.store)
        except DeliveryFailed as exc:
            await self._failed(sink, None, str(exc))
            return 0
        delivered = 0
        while True:
            videos = await self._next(sink)
            if not videos:
                return delivered
            for video in videos:
                try:
                    detail = await kind.deliver(video)
                except DeliveryFailed as exc:
                    await self._failed(sink, video, str(exc))
                    return delivered
                except Exception as exc:  # a bug or an OS error: still the sink's problem
                    log.exception("sink %s: delivering video %s failed", sink.id, video.video_id)
                    await self._failed(sink, video, f"{exc.__class__.__name__}: {exc}")
                    return delivered
                await self._delivered(sink, video, detail)
                sink.after_seq = video.seq
                delivered += 1

    async def _next(self, sink: Sink) -> list[Published]:
        async with self.db.session() as session:
            rows = (
                await session.execute(
                    select(Video)
                    .where(
                        Video.source_id == sink.source_id,
                        Video.published_seq > sink.after_seq,
                        Video.state == VideoState.DONE,
                    )
                    .order_by(Video.published_seq)
                    .limit(BATCH)
                )
            ).scalars()
            return [Published.of(v, self.store) for v in rows]

    async def _delivered(self, sink: Sink, video: Published, detail: str) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                update(Sink)
                .where(Sink.id == sink.id)
                .values(
                    after_seq=video.seq,
                    delivered=Sink.delivered + 1,
                    failures=0,
                    status=SinkStatus.OK,
                    status_detail=None,
                    next_attempt_at=None,
                )
            )
            session.add(
                Delivery(
                    sink_id=sink.id, video_id=video.video_id, seq=video.seq, ok=True, detail=detail
                )
            )

    async def _failed(self, sink: Sink, video: Published | None, detail: str) -> None:
        failures = sink.failures + 1
        disabled = failures >= MAX_FAILURES
        wait = self.policy.backoff(failures)
        async with self.db.transaction() as session:
            await session.execute(
                update(Sink)
                .where(Sink.id == sink.id)
                .values(
                    failures=failures,
                    status=SinkStatus.DISABLED if disabled else SinkStatus.FAILING,
                    status_detail=(
                        f"stopped after {failures} failures in a row: {detail}"
                        if disabled
                        else detail
                    ),
                    next_attempt_at=utcnow() + timedelta(seconds=wait),
                )
            )
            if video is not None:
                session.add(
                    Delivery(
                        sink_id=sink.id,
                        video_id=video.video_id,
                        seq=video.seq,
                        ok=False,
                        detail=detail,
                    )
                )
        log.warning("sink %s: %s", sink.id, detail)


def _entry(sink: Sink, video: Published, *, ok: bool, detail: str) -> Delivery:
    """One line of the delivery log."""
    return Delivery(sink_id=sink.id, video_id=video.video_id, seq=video.seq, ok=ok, detail=detail)
