"""A rate limit met while scanning pauses the whole connection, not just one source."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.providers.google_drive.harness import GoogleDriveHarness
from vpack.db.models import Connection, Source, utcnow
from vpack.services import Services
from vpack.sync.scheduler import due_sources


async def test_a_long_retry_after_parks_the_connection(services: Services, tmp_path: Path) -> None:
    harness = GoogleDriveHarness(tmp_path)
    try:
        await harness.add_video("Cam1", "a.mp4", b"clip")
        source_id = await harness.add_source(services)
        await services.engine.scan_source(source_id)  # the first walk; the cursor is set
        harness.drive.rate_limit_next(5, status=429, retry_after=600)
        async with services.db.transaction() as session:
            (await session.get(Source, source_id)).next_scan_at = None  # type: ignore[union-attr]

        tally = await services.engine.scan_source(source_id)

        assert tally.error and "429" in tally.error
        async with services.db.session() as session:
            source = await session.get(Source, source_id)
            assert source is not None
            connection = await session.get(Connection, source.connection_id)
            assert connection is not None and connection.paused_until is not None
            waits = connection.paused_until - utcnow()
            assert timedelta(minutes=9) < waits <= timedelta(minutes=10)
            assert source.status == "paused"
        # Its interval (60 s) passes during the pause: still not due until the pause ends.
        assert source_id not in await due_sources(services.db, utcnow() + timedelta(minutes=5))
        assert source_id in await due_sources(services.db, utcnow() + timedelta(minutes=11))
        # One request met the limit; nothing hammered the API while it lasted.
        feed = [r for r in harness.drive.requests if r.path == "/drive/v3/changes"]
        assert len(feed) == 1
    finally:
        await harness.aclose()
