"""The contract for recorders and camera clouds (Hikvision, Dahua, Tapo, Imou, Ezviz):
recordings are time ranges on channels, fetched in a vendor container and remuxed to MP4.
The selection is channel "Cam1"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.conformance.cases import HOUR_AGO, plays_as_recorded, scan_all
from tests.conformance.harness import (
    CUT_STREAM,
    DEVICE_CLOCK,
    LOCKOUT,
    TIME_INDEXED,
    Harness,
    videos_of,
)
from vpack.db.models import Connection, ConnectionStatus, Source, VideoState
from vpack.services import Services


@pytest.mark.needs(TIME_INDEXED)
async def test_recordings_are_found_as_time_ranges(harness: Harness) -> None:
    first = HOUR_AGO
    await harness.add_recording("Cam1", first, 4)
    await harness.add_recording("Cam1", first + timedelta(minutes=10), 3)
    await harness.add_recording("Cam2", first, 3)  # another channel: not selected
    found, cursor = await scan_all(harness)
    assert len(found) == 2 and len({v.remote_id for v in found}) == 2
    by_start = sorted(found, key=lambda v: v.recorded_start or first)
    assert [v.recorded_start for v in by_start] == [first, first + timedelta(minutes=10)]
    assert [v.recorded_end for v in by_start] == [
        first + timedelta(seconds=4),
        first + timedelta(minutes=10, seconds=3),
    ]
    assert all(v.recorded_start and v.recorded_start.utcoffset() == timedelta(0) for v in found)
    assert {v.camera for v in found} == {"Cam1"}
    assert all(v.name.endswith(".mp4") and v.size for v in found)
    assert cursor is not None


@pytest.mark.needs(TIME_INDEXED)
async def test_sync_takes_only_new_recordings(services: Services, harness: Harness) -> None:
    await harness.add_recording("Cam1", HOUR_AGO, 4)
    source_id = await harness.add_source(services)
    first = await services.engine.sync([source_id])
    assert (first.total("new"), first.total("downloaded")) == (1, 1), first.as_dict()
    await harness.add_recording("Cam1", HOUR_AGO + timedelta(minutes=5), 3)
    second = await services.engine.sync([source_id])
    assert (second.total("new"), second.total("downloaded")) == (1, 1), second.as_dict()
    third = await services.engine.sync([source_id])
    assert (third.total("new"), third.total("downloaded")) == (0, 0)
    rows = await videos_of(services, source_id)
    assert [r.state for r in rows] == [VideoState.DONE, VideoState.DONE]
    for row, seconds in zip(rows, (4, 3), strict=True):
        assert row.recorded_start is not None and row.recorded_end is not None
        plays_as_recorded(services, row, seconds)
    assert not list(services.store.staging_dir.iterdir()), "no .part left behind"


@pytest.mark.needs(TIME_INDEXED)
async def test_open_recording_is_taken_once_closed(services: Services, harness: Harness) -> None:
    await harness.add_recording("Cam1", HOUR_AGO, 2)
    now = datetime.now(UTC).replace(microsecond=0)
    handle = await harness.start_recording("Cam1", now - timedelta(seconds=6))
    source_id = await harness.add_source(services)
    first = await services.engine.sync([source_id])
    assert (first.total("new"), first.total("downloaded")) == (1, 1), first.as_dict()
    # Closed three seconds ago: past the harness's settle window.
    await harness.finish_recording(handle, now - timedelta(seconds=3))
    second = await services.engine.sync([source_id])
    assert (second.total("new"), second.total("downloaded")) == (1, 1), second.as_dict()
    rows = await videos_of(services, source_id)
    assert [r.state for r in rows] == [VideoState.DONE, VideoState.DONE]
    plays_as_recorded(services, rows[1], 3)


@pytest.mark.needs(TIME_INDEXED, CUT_STREAM)
async def test_cut_recording_is_fetched_again_whole(services: Services, harness: Harness) -> None:
    await harness.add_recording("Cam1", HOUR_AGO, 5)
    source_id = await harness.add_source(services)
    await harness.cut_next_download(after_bytes=20_000)
    first = await services.engine.sync([source_id])
    assert first.total("failed") == 1, first.as_dict()
    assert not any(services.store.videos_dir.rglob("*.mp4")), "a partial file was published"
    await services.engine.sync([source_id])
    (row,) = await videos_of(services, source_id)
    assert row.state == VideoState.DONE
    plays_as_recorded(services, row, 5)


@pytest.mark.needs(TIME_INDEXED, LOCKOUT)
async def test_a_locked_account_pauses_the_connection_without_trying_again(
    services: Services, harness: Harness
) -> None:
    await harness.add_recording("Cam1", HOUR_AGO, 2)
    source_id = await harness.add_source(services)
    await harness.lock_account()
    report = await services.engine.sync([source_id])
    assert not report.ok and "locked" in str(report.as_dict()), report.as_dict()
    async with services.db.session() as session:
        source = await session.get(Source, source_id)
        assert source is not None
        connection = await session.get(Connection, source.connection_id)
    assert connection is not None and connection.paused_until is not None
    # Paused for about as long as the device keeps the lock, not a short backoff that
    # would try (and, on a real device, prolong the lock) again and again.
    assert connection.paused_until - datetime.now(UTC) > timedelta(minutes=20)
    assert connection.status != ConnectionStatus.REAUTH_REQUIRED, "the password is right"
    tried = harness.login_attempts()
    again = await services.engine.sync([source_id])
    assert again.total("downloaded") == 0
    assert harness.login_attempts() == tried, "no request reaches a locked device"
    assert not await videos_of(services, source_id) or all(
        r.state != VideoState.DONE for r in await videos_of(services, source_id)
    )


@pytest.mark.needs(TIME_INDEXED, DEVICE_CLOCK)
@pytest.mark.parametrize("skew_minutes", [25, -25], ids=["device-ahead", "device-behind"])
async def test_a_device_clock_off_ours_still_takes_each_recording_once_closed(
    services: Services, harness: Harness, skew_minutes: int
) -> None:
    """A recording is open or closed by the device's clock, not ours: a device behind
    ours must not have its open recording taken as finished (its end looks old), and
    one ahead must not have its recordings taken for the future and left out."""
    await harness.set_device_clock(timedelta(minutes=skew_minutes))
    now = harness.device_now().replace(microsecond=0)
    await harness.add_recording("Cam1", now - timedelta(minutes=40), 3)
    handle = await harness.start_recording("Cam1", now - timedelta(seconds=6))
    source_id = await harness.add_source(services)
    first = await services.engine.sync([source_id])
    assert (first.total("new"), first.total("downloaded")) == (1, 1), first.as_dict()
    await harness.finish_recording(handle, now - timedelta(seconds=3))
    second = await services.engine.sync([source_id])
    assert (second.total("new"), second.total("downloaded")) == (1, 1), second.as_dict()
    third = await services.engine.sync([source_id])
    assert third.total("new") == 0, "nothing found twice across the clock's offset"
    rows = await videos_of(services, source_id)
    assert [r.state for r in rows] == [VideoState.DONE, VideoState.DONE]
    plays_as_recorded(services, rows[1], 3)
