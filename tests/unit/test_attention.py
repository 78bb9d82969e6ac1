"""A source whose own settings fail a scan needs attention: said once, tried rarely."""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.unit.test_engine import _add
from vpack.db.models import AuditEvent, Source, SourceStatus
from vpack.security.audit import Action
from vpack.services import Services
from vpack.sync.retry import RetryPolicy
from vpack.sync.scheduler import due_sources


async def _source(services: Services, source_id: int) -> Source:
    async with services.db.session() as session:
        source = await session.get(Source, source_id)
    assert source is not None
    return source


def _wait(source: Source) -> float:
    assert source.next_scan_at is not None and source.last_scan_at is not None
    return (source.next_scan_at - source.last_scan_at).total_seconds()


async def _failures_audited(services: Services, source_id: int) -> int:
    async with services.db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(
                    AuditEvent.action == Action.SYNC_FAILED,
                    AuditEvent.target_id == str(source_id),
                )
            )
            or 0
        )


async def test_a_gone_folder_needs_attention_and_is_tried_ever_more_rarely(
    services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "cam"
    source_id = await _add(services, folder)
    os.rmdir(folder)  # an unmounted share, or a folder deleted by hand
    with caplog.at_level(logging.WARNING):
        tally = await services.engine.scan_source(source_id)
    assert tally.error and "does not exist" in tally.error
    first = await _source(services, source_id)
    assert first.status == SourceStatus.ATTENTION
    assert first.last_error == tally.error
    assert _wait(first) == pytest.approx(3600, abs=5), "an hour, not the 60 s interval"
    assert first.id not in await due_sources(services.db)
    assert first.id not in await due_sources(services.db, datetime.now(UTC) + timedelta(minutes=5))

    for expected in (7200, 14400):  # each failure in a row doubles the wait
        await services.engine.scan_source(source_id)
        assert _wait(await _source(services, source_id)) == pytest.approx(expected, abs=5)
    assert await _failures_audited(services, source_id) == 1, "audited once, not per retry"
    assert not [r for r in caplog.records if r.exc_info], "no traceback for a user's setting"

    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"video")
    os.utime(folder / "a.mp4", (time.time() - 3600,) * 2)
    # "Sync now" (or changed settings) clears the booking: due at once, normal again.
    async with services.db.transaction() as session:
        cleared = update(Source).where(Source.id == source_id).values(next_scan_at=None)
        await session.execute(cleared)
    assert source_id in await due_sources(services.db)
    tally = await services.engine.scan_source(source_id)
    back = await _source(services, source_id)
    assert (tally.error, tally.new) == (None, 1)
    assert back.status == SourceStatus.IDLE and back.last_error is None
    assert _wait(back) == pytest.approx(60, abs=5)


async def test_options_no_longer_valid_need_attention_instead_of_a_traceback(
    services: Services, tmp_path: Path
) -> None:
    source_id = await _add(services, tmp_path / "cam")
    # Stored by an older release that accepted it, or edited in the database.
    async with services.db.transaction() as session:
        await session.execute(
            update(Source).where(Source.id == source_id).values(options={"settle_seconds": -5})
        )
    tally = await services.engine.scan_source(source_id)
    source = await _source(services, source_id)
    assert source.status == SourceStatus.ATTENTION
    assert tally.error and "source options" in tally.error and "settle_seconds" in tally.error


def test_the_wait_starts_at_the_interval_when_that_is_longer_and_stops_at_a_day() -> None:
    policy = RetryPolicy()
    assert policy.attention_wait(60, None) == 3600
    assert policy.attention_wait(6 * 3600, None) == 6 * 3600
    assert policy.attention_wait(60, 3600) == 7200
    assert policy.attention_wait(60, 20 * 3600) == 24 * 3600
    assert policy.attention_wait(60, -30) == 3600, "a booking cleared meanwhile starts over"
