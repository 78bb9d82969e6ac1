"""What the contract's cases share: scanning and reading through a harness, checking copies."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

from tests.conformance.harness import Harness
from tests.media import play_through
from vpack.db.models import Video
from vpack.providers.base import Checkpoint, Found, RemoteVideo
from vpack.providers.registry import source_options
from vpack.services import Services

CLIP = os.urandom(300_000)


async def scan_all(
    harness: Harness, cursor: str | None = None
) -> tuple[list[RemoteVideo], str | None]:
    provider = harness.build()
    options = source_options(harness.provider_name, harness.source_options())
    found: list[RemoteVideo] = []
    last: Checkpoint | None = None
    try:
        async for event in provider.scan(harness.selection(), cursor, options):
            if isinstance(event, Found):
                found.append(event.video)
            elif isinstance(event, Checkpoint):
                last = event
    finally:
        await provider.aclose()
    assert last is not None, "a scan must end with a Checkpoint"
    return found, last.cursor


async def read(harness: Harness, video: RemoteVideo, offset: int = 0) -> bytes:
    provider = harness.build()
    try:
        return b"".join([chunk async for chunk in provider.open(video, offset)])
    finally:
        await provider.aclose()


def published(services: Services, video: Video) -> bytes:
    assert video.local_path, f"{video.name} has no local copy"
    return services.store.absolute(video.local_path).read_bytes()


# Recordings are time ranges on channels; the selection is channel "Cam1".
HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def plays_as_recorded(services: Services, video: Video, seconds: float) -> None:
    assert video.local_path and video.local_path.endswith(".mp4"), video.local_path
    path = services.store.absolute(video.local_path)
    frames, duration, kinds = play_through(path)
    assert frames > 0 and kinds == {"video", "audio"}
    assert abs(duration - seconds) < 0.5, f"{duration} s for a {seconds} s recording"
    assert video.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert video.size == path.stat().st_size
