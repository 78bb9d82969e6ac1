"""The contract every provider passes against its emulator: written once, run for each."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime, timedelta

import pytest

from tests.conformance.harness import (
    CUT_STREAM,
    FILES,
    RANGED,
    RATE_LIMIT,
    TIME_INDEXED,
    TOKEN_EXPIRY,
    WRONG_HASH,
    Harness,
    videos_of,
)
from tests.media import play_through
from vpack.db.models import Video, VideoState
from vpack.providers.base import Checkpoint, Found, RemoteVideo
from vpack.providers.errors import AuthExpired, BadConfig, Permanent, ProviderError
from vpack.providers.registry import source_options
from vpack.services import Services

CLIP = os.urandom(300_000)


async def _scan_all(
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


async def _read(harness: Harness, video: RemoteVideo, offset: int = 0) -> bytes:
    provider = harness.build()
    try:
        return b"".join([chunk async for chunk in provider.open(video, offset)])
    finally:
        await provider.aclose()


def _published(services: Services, video: Video) -> bytes:
    assert video.local_path, f"{video.name} has no local copy"
    return services.store.absolute(video.local_path).read_bytes()


# ---------------------------------------------------------------- connection
async def test_check_names_what_it_reaches(harness: Harness) -> None:
    provider = harness.build()
    identity = await provider.check()
    await provider.aclose()
    assert identity.id and identity.label


async def test_bad_credentials_give_a_clear_error(harness: Harness) -> None:
    provider = harness.build(harness.bad_connection_config())
    with pytest.raises(ProviderError) as caught:
        await provider.check()
    await provider.aclose()
    message = str(caught.value)
    assert len(message) > 10 and "Traceback" not in message
    # Refused OAuth grants are AuthExpired: the connection then asks for reauth.
    assert isinstance(caught.value, BadConfig | Permanent | AuthExpired)


# ---------------------------------------------------------------- browse
async def test_browse_lists_child_folders(harness: Harness) -> None:
    parent = await harness.add_folders(None, ["Cam1", "Cam2"])
    provider = harness.build()
    page = await provider.browse(parent)
    await provider.aclose()
    assert {n.name for n in page.nodes} >= {"Cam1", "Cam2"}
    assert all(n.id for n in page.nodes)


async def test_browse_pages_through_big_folders(harness: Harness) -> None:
    provider = harness.build()
    count = provider.features.page_size * 2 + 7
    names = [f"folder-{i:05d}" for i in range(count)]
    parent = await harness.add_folders(None, names)
    seen: list[str] = []
    page_token: str | None = None
    pages = 0
    while True:
        page = await provider.browse(parent, page_token)
        pages += 1
        assert len(page.nodes) <= provider.features.page_size
        seen.extend(n.name for n in page.nodes)
        page_token = page.next_page
        if page_token is None:
            break
    await provider.aclose()
    assert pages >= 3
    assert sorted(seen) == names, "every child exactly once across pages"


# ---------------------------------------------------------------- scan
@pytest.mark.needs(FILES)
async def test_scan_from_empty_finds_every_video(harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    await harness.add_video("Cam1", "b.mp4", CLIP[:1000])
    await harness.add_video("Cam2", "c.mp4", b"c" * 5000)
    found, _ = await _scan_all(harness)
    by_name = {v.name: v for v in found}
    assert set(by_name) == {"a.mp4", "b.mp4", "c.mp4"}
    assert by_name["a.mp4"].camera == "Cam1" and by_name["c.mp4"].camera == "Cam2"
    assert by_name["b.mp4"].size == 1000
    assert len({v.remote_id for v in found}) == 3


@pytest.mark.needs(FILES)
async def test_scan_from_cursor_finds_what_is_new(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    first = await services.engine.sync([source_id])
    assert (first.total("new"), first.total("downloaded")) == (1, 1)
    await harness.add_video("Cam1", "b.mp4", b"second clip")
    second = await services.engine.sync([source_id])
    assert (second.total("new"), second.total("downloaded")) == (1, 1)
    rows = await videos_of(services, source_id)
    assert [r.name for r in rows] == ["a.mp4", "b.mp4"]
    assert _published(services, rows[1]) == b"second clip"


@pytest.mark.needs(FILES)
async def test_nothing_new_fetches_nothing(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await services.engine.sync([source_id])
    again = await services.engine.sync([source_id])
    assert again.as_dict()["new"] == 0 and again.as_dict()["downloaded"] == 0
    assert len(await videos_of(services, source_id)) == 1


@pytest.mark.needs(FILES)
async def test_removal_is_recorded_and_our_copy_kept(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    await harness.add_video("Cam1", "b.mp4", b"bbb")
    source_id = await harness.add_source(services)
    await services.engine.sync([source_id])
    await harness.remove_video("Cam1", "a.mp4")
    report = await services.engine.sync([source_id])
    assert report.total("removed") == 1
    rows = {r.name: r for r in await videos_of(services, source_id)}
    assert rows["a.mp4"].removed_at is not None and rows["b.mp4"].removed_at is None
    assert _published(services, rows["a.mp4"]) == CLIP


@pytest.mark.needs(FILES)
async def test_every_copy_is_verified(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    await harness.add_video("Cam2", "b.mp4", CLIP[::-1])
    source_id = await harness.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("bytes") == 2 * len(CLIP)
    for row in await videos_of(services, source_id):
        data = _published(services, row)
        assert row.state == VideoState.DONE
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert data == (CLIP if row.name == "a.mp4" else CLIP[::-1])
    assert not list(services.store.staging_dir.iterdir()), "no .part left behind"


# ---------------------------------------------------------------- reads
@pytest.mark.needs(RANGED)
async def test_ranged_read_starts_at_offset(harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    (video,) = (await _scan_all(harness))[0]
    assert await _read(harness, video, 123_456) == CLIP[123_456:]
    assert await _read(harness, video) == CLIP


@pytest.mark.needs(RANGED)
async def test_interrupted_download_resumes(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await services.engine.scan_source(source_id)
    (row,) = await videos_of(services, source_id)
    part = services.store.part_path(row.id)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(CLIP[:100_000])  # what an earlier, interrupted attempt left
    tallies = await services.engine.run_downloads([source_id])
    assert tallies[source_id].downloaded == 1
    (row,) = await videos_of(services, source_id)
    assert _published(services, row) == CLIP
    assert row.sha256 == hashlib.sha256(CLIP).hexdigest()


@pytest.mark.needs(CUT_STREAM, FILES)
async def test_cut_stream_is_retried_and_completed(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await harness.cut_next_download(after_bytes=50_000)
    await services.engine.sync([source_id])
    report = await services.engine.sync([source_id])
    (row,) = await videos_of(services, source_id)
    assert row.state == VideoState.DONE and _published(services, row) == CLIP, report


@pytest.mark.needs(WRONG_HASH, FILES)
async def test_wrong_checksum_is_never_published(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await harness.corrupt_next_download()
    first = await services.engine.sync([source_id])
    assert first.total("failed") == 1
    assert not any(services.store.videos_dir.rglob("*.mp4"))
    await services.engine.sync([source_id])
    (row,) = await videos_of(services, source_id)
    assert _published(services, row) == CLIP


# ---------------------------------------------------------------- throttling and auth
@pytest.mark.needs(RATE_LIMIT, FILES)
async def test_rate_limit_waits_without_failing(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await services.engine.scan_source(source_id)
    await harness.rate_limit_next(requests=1, retry_after=1)
    tallies = await services.engine.run_downloads([source_id])
    assert tallies[source_id].failed == 0 and tallies[source_id].downloaded == 1


@pytest.mark.needs(TOKEN_EXPIRY, FILES)
async def test_expired_token_is_refreshed(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await harness.expire_token()
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 1


# ---------------------------------------------------------------- recorders
# Recordings are time ranges on channels; the selection is channel "Cam1".
HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def _plays_as_recorded(services: Services, video: Video, seconds: float) -> None:
    assert video.local_path and video.local_path.endswith(".mp4"), video.local_path
    path = services.store.absolute(video.local_path)
    frames, duration, kinds = play_through(path)
    assert frames > 0 and kinds == {"video", "audio"}
    assert abs(duration - seconds) < 0.5, f"{duration} s for a {seconds} s recording"
    assert video.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert video.size == path.stat().st_size


@pytest.mark.needs(TIME_INDEXED)
async def test_recordings_are_found_as_time_ranges(harness: Harness) -> None:
    first = HOUR_AGO
    await harness.add_recording("Cam1", first, 4)
    await harness.add_recording("Cam1", first + timedelta(minutes=10), 3)
    await harness.add_recording("Cam2", first, 3)  # another channel: not selected
    found, cursor = await _scan_all(harness)
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
        _plays_as_recorded(services, row, seconds)
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
    _plays_as_recorded(services, rows[1], 3)


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
    _plays_as_recorded(services, row, 5)
