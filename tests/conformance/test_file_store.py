"""The contract for file stores (local folders, Drive, S3, OneDrive, Dropbox): named files
whose published bytes are the bytes added, and whose absence is a removal."""

from __future__ import annotations

import hashlib

import pytest

from tests.conformance.cases import CLIP, published, read, scan_all
from tests.conformance.harness import (
    CUT_STREAM,
    FEED_RESET,
    FILES,
    RANGED,
    RATE_LIMIT,
    TOKEN_EXPIRY,
    WRONG_HASH,
    Harness,
    videos_of,
)
from vpack.db.models import VideoState
from vpack.services import Services


# ---------------------------------------------------------------- scan
@pytest.mark.needs(FILES)
async def test_scan_from_empty_finds_every_video(harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    await harness.add_video("Cam1", "b.mp4", CLIP[:1000])
    await harness.add_video("Cam2", "c.mp4", b"c" * 5000)
    found, _ = await scan_all(harness)
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
    assert published(services, rows[1]) == b"second clip"


@pytest.mark.needs(FILES)
async def test_nothing_new_fetches_nothing(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await services.engine.sync([source_id])
    again = await services.engine.sync([source_id])
    assert again.as_dict()["new"] == 0 and again.as_dict()["downloaded"] == 0
    assert len(await videos_of(services, source_id)) == 1


@pytest.mark.needs(FEED_RESET)
async def test_a_dead_feed_token_walks_again_and_loses_nothing(
    services: Services, harness: Harness
) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await services.engine.sync([source_id])
    await harness.add_video("Cam1", "b.mp4", b"after the token died")
    await harness.forget_feed_tokens()
    again = await services.engine.sync([source_id])
    assert (again.total("new"), again.total("downloaded")) == (1, 1)  # a.mp4 is not fetched twice
    rows = await videos_of(services, source_id)
    assert [r.name for r in rows] == ["a.mp4", "b.mp4"]
    assert published(services, rows[1]) == b"after the token died"
    await harness.add_video("Cam1", "c.mp4", b"followed again")
    third = await services.engine.sync([source_id])  # the walk left a live token
    assert (third.total("new"), third.total("downloaded")) == (1, 1)


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
    assert published(services, rows["a.mp4"]) == CLIP


@pytest.mark.needs(FILES)
async def test_every_copy_is_verified(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    await harness.add_video("Cam2", "b.mp4", CLIP[::-1])
    source_id = await harness.add_source(services)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("bytes") == 2 * len(CLIP)
    for row in await videos_of(services, source_id):
        data = published(services, row)
        assert row.state == VideoState.DONE
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert data == (CLIP if row.name == "a.mp4" else CLIP[::-1])
    assert not list(services.store.staging_dir.iterdir()), "no .part left behind"


# ---------------------------------------------------------------- reads
@pytest.mark.needs(RANGED)
async def test_ranged_read_starts_at_offset(harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    (video,) = (await scan_all(harness))[0]
    assert await read(harness, video, 123_456) == CLIP[123_456:]
    assert await read(harness, video) == CLIP


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
    assert published(services, row) == CLIP
    assert row.sha256 == hashlib.sha256(CLIP).hexdigest()


@pytest.mark.needs(CUT_STREAM, FILES)
async def test_cut_stream_is_retried_and_completed(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await harness.cut_next_download(after_bytes=50_000)
    await services.engine.sync([source_id])
    report = await services.engine.sync([source_id])
    (row,) = await videos_of(services, source_id)
    assert row.state == VideoState.DONE and published(services, row) == CLIP, report


@pytest.mark.needs(WRONG_HASH, FILES)
async def test_wrong_checksum_is_neverpublished(services: Services, harness: Harness) -> None:
    await harness.add_video("Cam1", "a.mp4", CLIP)
    source_id = await harness.add_source(services)
    await harness.corrupt_next_download()
    first = await services.engine.sync([source_id])
    assert first.total("failed") == 1
    assert not any(services.store.videos_dir.rglob("*.mp4"))
    await services.engine.sync([source_id])
    (row,) = await videos_of(services, source_id)
    assert published(services, row) == CLIP


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
