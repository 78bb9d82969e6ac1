"""The free-space guard on a real small filesystem (a tmpfs the test mounts)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.conftest import running
from vpack import catalog
from vpack.db.models import Video, VideoState
from vpack.disk import Floor, parse_floor
from vpack.services import Services
from vpack.settings import Settings

MiB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB filesystem of its own, so "the disk is full" is real."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _resize(mount: Path, mib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={mib}m", str(mount)], check=True)


@pytest.fixture
async def on_small_disk(
    settings: Settings, small_disk: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Services]:
    floor = getattr(request, "param", "0")
    small = settings.model_copy(update={"data_dir": small_disk / "data", "min_free": floor})
    async with running(small) as services:
        yield services


async def _source_of(services: Services, folder: Path, data: bytes) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "big.mp4").write_bytes(data)
    os.utime(folder / "big.mp4", (time.time() - 3600,) * 2)
    connection = await catalog.local_connection(services.db)
    source_id = await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection,
        name="shop",
        selections=[str(folder)],
        options={"settle_seconds": 0},
        interval_s=60,
    )
    await services.engine.scan_source(source_id)
    return source_id


async def _row(services: Services) -> Video:
    async with services.db.session() as session:
        return (await session.execute(select(Video))).scalar_one()


async def test_a_disk_that_fills_mid_file_parks_the_video_and_loses_nothing(
    on_small_disk: Services, small_disk: Path, tmp_path: Path
) -> None:
    services = on_small_disk
    data = os.urandom(8 * MiB)  # more than the disk holds
    source_id = await _source_of(services, tmp_path / "cams", data)
    tallies = await services.engine.run_downloads()
    assert tallies[source_id].downloaded == 0 and tallies[source_id].failed == 0
    row = await _row(services)
    assert row.state == VideoState.PENDING and row.attempts == 0, "not the video's fault"
    assert "disk is full" in (row.error or "")
    assert not list(services.store.videos_dir.rglob("*.mp4")), "nothing half-written published"

    _resize(small_disk, 24)  # space came back
    async with services.db.transaction() as session:
        await session.execute(update(Video).values(next_attempt_at=None))
    tallies = await services.engine.run_downloads()
    assert tallies[source_id].downloaded == 1
    row = await _row(services)
    assert row.state == VideoState.DONE and row.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("on_small_disk", ["4MiB"], indirect=True)
async def test_below_the_floor_no_download_starts_and_work_resumes_when_space_returns(
    on_small_disk: Services, small_disk: Path, tmp_path: Path
) -> None:
    services = on_small_disk
    filler = small_disk / "someone-elses.bin"
    filler.write_bytes(os.urandom(3 * MiB))  # 6 MiB disk, 3 used: under the 4 MiB floor
    source_id = await _source_of(services, tmp_path / "cams", os.urandom(MiB // 2))
    assert not services.engine.disk.check().ok
    tallies = await services.engine.run_downloads()
    assert source_id not in tallies or tallies[source_id].downloaded == 0
    row = await _row(services)
    assert (row.state, row.attempts, row.lease_owner) == (VideoState.PENDING, 0, None)
    assert "below the 4.0 MiB to keep free" in services.engine.disk.check().describe()

    filler.unlink()
    tallies = await services.engine.run_downloads()
    assert tallies[source_id].downloaded == 1


def test_the_floor_is_read_as_people_write_it() -> None:
    assert parse_floor("0") == Floor()
    assert parse_floor("2GiB") == Floor(bytes=2 * 1024**3)
    assert parse_floor("500 MB") == Floor(bytes=500 * 1000**2)
    assert parse_floor("5%").of(1000) == 50
    assert parse_floor("1.5kib").bytes == 1536
    for bad, words in [("lots", "not an amount"), ("5 parsecs", "unknown unit"), ("95%", "90%")]:
        with pytest.raises(ValueError, match=words):
            parse_floor(bad)
    with pytest.raises(ValueError, match="not an amount"):
        Settings(min_free="plenty")


def test_health_says_why_downloads_wait(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from vpack.api.app import create_app

    for floor, ok in (("0", True), ("900TiB", False)):
        app = create_app(settings.model_copy(update={"min_free": floor}), run_worker=False)
        with TestClient(app) as client:
            body = client.get("/api/health").json()
        assert body["disk"]["ok"] is ok and body["disk"]["free_bytes"] > 0
        assert body["status"] == ("ok" if ok else "degraded")
        assert ok or "new downloads wait" in body["disk"]["detail"]
