"""The Dahua provider against the HTTP API emulator: logins, channels, days, the finder
lifecycle, device clocks, downloads by file and by time."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.providers.dahua.emulator import DahuaDevice, User
from vpack import media
from vpack.providers.base import Found, RemoteVideo, ScanEvent, Waiting
from vpack.providers.dahua.provider import DahuaProvider
from vpack.providers.errors import BadConfig, NotFound, Permanent, RateLimited, Transient
from vpack.providers.registry import build_provider, source_options

PASSWORD = "Vpack-12345"
HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def nvr() -> Iterator[DahuaDevice]:
    with DahuaDevice(max_finders=2) as device:
        device.add_channel("Packing 1")
        device.add_channel("Packing 2")
        yield device


def config(device: DahuaDevice, **changes: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": device.port,
        "username": "admin",
        "password": PASSWORD,
        **changes,
    }


def made(device: DahuaDevice, **changes: Any) -> DahuaProvider:
    provider = build_provider("dahua", config(device, **changes))
    assert isinstance(provider, DahuaProvider)
    return provider


@pytest.fixture
async def provider(nvr: DahuaDevice) -> AsyncIterator[DahuaProvider]:
    built = made(nvr)
    try:
        yield built
    finally:
        await built.aclose()


async def scan(
    provider: DahuaProvider, selection: str = "1", cursor: str | None = None, **options: Any
) -> list[ScanEvent]:
    opts = source_options("dahua", {"settle_seconds": 1, **options})
    return [event async for event in provider.scan(selection, cursor, opts)]


def found(events: list[ScanEvent]) -> list[RemoteVideo]:
    return [e.video for e in events if isinstance(e, Found)]


async def read(provider: DahuaProvider, video: RemoteVideo) -> bytes:
    return b"".join([chunk async for chunk in provider.open(video)])


# ---------------------------------------------------------------- connecting
async def test_check_names_model_serial_and_firmware(provider: DahuaProvider) -> None:
    identity = await provider.check()
    assert identity.id == "7J0A2B3PAZ4C5D6"
    assert "DHI-NVR4108-8P-4KS2" in identity.label and "NVR-Packing" in identity.label
    assert identity.details["firmware"] == "4.001.0000000.3 build 2023-08-21"
    assert "clock_warning" not in identity.details


async def test_a_wrong_password_is_refused_once_and_never_locks(nvr: DahuaDevice) -> None:
    for attempt in (1, 2):
        wrong = made(nvr, password="wrong")
        with pytest.raises(BadConfig, match="refused the user name or password"):
            await wrong.check()
        await wrong.aclose()
        assert nvr.failed_logins == attempt, "one check, one refused login, never a retry"
    assert not nvr.is_locked()
    right = made(nvr)
    assert (await right.check()).id == nvr.serial
    await right.aclose()


async def test_a_locked_account_waits_and_is_not_made_worse(nvr: DahuaDevice) -> None:
    nvr.lock_account()
    provider = made(nvr)
    with pytest.raises(BadConfig, match="locked"):
        await provider.check()
    with pytest.raises(RateLimited) as caught:
        await scan(provider)
    assert caught.value.retry_after and caught.value.retry_after > 20 * 60
    assert nvr.failed_logins == 0, "the right password, refused only because of the lock"
    await provider.aclose()


async def test_unreachable_device(tmp_path: Path) -> None:
    provider = build_provider(
        "dahua", {"host": "127.0.0.1", "port": 9, "username": "a", "password": "b"}
    )
    with pytest.raises(BadConfig, match=r"cannot reach 127\.0\.0\.1:9"):
        await provider.check()


async def test_a_user_without_playback_is_told_what_to_fix() -> None:
    users = [User("admin", PASSWORD), User("viewer", "Viewer-1234", playback=False)]
    with DahuaDevice(users=users) as device:
        device.add_channel("Cam1")
        provider = made(device, username="viewer", password="Viewer-1234")
        with pytest.raises(BadConfig, match="Playback"):
            await scan(provider)
        assert device.open_finders() == 0
        await provider.aclose()


# ---------------------------------------------------------------- tree
async def test_device_channels_and_days(nvr: DahuaDevice, provider: DahuaProvider) -> None:
    (root,) = (await provider.browse(None)).nodes
    assert root.name == "NVR-Packing DHI-NVR4108-8P-4KS2"
    channels = (await provider.browse("device")).nodes
    assert [(c.id, c.name) for c in channels] == [("1", "Packing 1"), ("2", "Packing 2")]
    nvr.add_recording(1, HOUR_AGO, 2)
    nvr.add_recording(1, HOUR_AGO - timedelta(days=40), 2)
    days = await provider.browse("1")
    assert [d.name for d in days.nodes] == [HOUR_AGO.astimezone(nvr.tz).date().isoformat()]
    assert days.next_page is not None
    assert nvr.open_finders() == 0


# ---------------------------------------------------------------- search
async def test_recordings_in_device_time_become_utc(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    recording = nvr.add_recording(1, HOUR_AGO, 3)
    (video,) = found(await scan(provider))
    assert video.recorded_start == HOUR_AGO and video.recorded_end == HOUR_AGO + timedelta(
        seconds=3
    )
    assert video.size == len(recording.data) and video.extra["file_path"] == recording.path
    assert video.name.startswith("Packing 1 ") and video.name.endswith(".mp4")


async def test_device_clock_seven_hours_ahead_files_under_the_shops_day(nvr: DahuaDevice) -> None:
    """The device keeps Ho Chi Minh City time (UTC+7): 00:30 on the shop's 8 December is
    17:30 UTC on the 7th; the recording is the 8th's, and its UTC start is exact."""
    shop_night = datetime(2026, 12, 7, 17, 30, tzinfo=UTC)
    nvr.add_recording(1, shop_night, 2)
    provider = made(nvr)
    (video,) = found(await scan(provider))
    assert video.recorded_start == shop_night
    assert video.name == "Packing 1 2026-12-08 00-30-00.mp4"
    days = await provider.recorded_days(await provider.channel("1"), 2026, 12)
    assert [d.isoformat() for d in days] == ["2026-12-08"]
    # A connection that says UTC for that device is told its times will be off.
    wrong_zone = made(nvr, time_zone="UTC")
    warning = (await wrong_zone.check()).details["clock_warning"]
    assert "7.0 h ahead" in warning
    for p in (provider, wrong_zone):
        await p.aclose()


async def test_a_recording_being_written_waits(nvr: DahuaDevice, provider: DahuaProvider) -> None:
    open_one = nvr.start_recording(1, nvr.now() - timedelta(seconds=20))
    events = await scan(provider)
    assert not found(events) and [type(e) for e in events if isinstance(e, Waiting)] == [Waiting]
    nvr.finish_recording(open_one, nvr.now() - timedelta(seconds=5))
    (video,) = found(await scan(provider))
    assert video.remote_id == next(e.remote_id for e in events if isinstance(e, Waiting))


async def test_pages_cursor_and_overlap(nvr: DahuaDevice, provider: DahuaProvider) -> None:
    nvr.page_max = 2
    for i in range(5):
        nvr.add_recording(1, HOUR_AGO + timedelta(minutes=i), 1)
    events = await scan(provider)
    assert len(found(events)) == 5 and nvr.calls["findNextFile"] == 4  # 2 + 2 + 1 + 0
    cursor = events[-1].cursor  # type: ignore[union-attr]
    nvr.add_recording(1, HOUR_AGO + timedelta(minutes=30), 1)
    again = found(await scan(provider, cursor=cursor, overlap_seconds=60))
    # From a minute before the newest end: the last two again (the engine knows them), the new one.
    assert [v.recorded_start for v in again] == [
        HOUR_AGO + timedelta(minutes=m) for m in (3, 4, 30)
    ]


async def test_finder_objects_never_leak_across_fifty_scans(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    """The device keeps two finder objects: a scan that fails mid-search, one that is
    cancelled after its first find, one with nothing to find, all give theirs back."""
    nvr.add_recording(1, HOUR_AGO, 1)
    nvr.add_recording(1, HOUR_AGO + timedelta(minutes=5), 1)
    nvr.page_max = 1
    opts = source_options("dahua", {"settle_seconds": 1})
    for i in range(50):
        if i % 5 == 1:
            nvr.refuse_next("findNextFile")
            with pytest.raises(Permanent):
                await scan(provider)
        elif i % 5 == 2:
            async with aclosing(provider.scan("1", None, opts)) as events:
                async for event in events:
                    if isinstance(event, Found):
                        break
        elif i % 5 == 3:
            assert found(await scan(provider, selection="2")) == []  # an Error body
        else:
            assert len(found(await scan(provider))) == 2
        assert nvr.open_finders() == 0, f"scan {i} left a finder object open"
    assert nvr.finders_created == 50


async def test_no_free_finder_is_transient(nvr: DahuaDevice, provider: DahuaProvider) -> None:
    nvr.max_finders = 0  # other clients hold them all
    with pytest.raises(Transient, match="no search object free"):
        await scan(provider)


# ---------------------------------------------------------------- download
async def test_download_by_file_is_the_devices_dav(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    recording = nvr.add_recording(1, HOUR_AGO, 2)
    (video,) = found(await scan(provider))
    assert await read(provider, video) == recording.data
    assert nvr.calls["RPC_Loadfile"] == 1


async def test_without_download_by_file_it_falls_back_to_by_time(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    nvr.by_file = False
    first = nvr.add_recording(1, HOUR_AGO, 2)
    second = nvr.add_recording(1, HOUR_AGO + timedelta(minutes=5), 2)
    videos = found(await scan(provider))
    assert [await read(provider, v) for v in videos] == [first.data, second.data]
    assert nvr.calls["RPC_Loadfile"] == 1, "learnt once"
    assert nvr.calls["startLoad"] == 2


async def test_mp4_recordings_of_newer_firmware(
    nvr: DahuaDevice, provider: DahuaProvider, tmp_path: Path
) -> None:
    nvr.add_recording(1, HOUR_AGO, 2, kind="mp4")
    (video,) = found(await scan(provider))
    assert video.extra["type"] == "mp4"
    stream = tmp_path / "in.mp4"
    stream.write_bytes(await read(provider, video))
    result = media.remux_to_mp4(stream, tmp_path / "out.mp4")
    assert result.codecs.startswith("h264")


async def test_a_dropped_download_restarts_from_zero(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    nvr.add_recording(1, HOUR_AGO, 3)
    (video,) = found(await scan(provider))
    nvr.cut_next_downloads(5000)
    with pytest.raises(Transient) as caught:
        await read(provider, video)
    assert caught.value.restart


async def test_an_overwritten_recording_is_not_found(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    recording = nvr.add_recording(1, HOUR_AGO, 2)
    (video,) = found(await scan(provider))
    nvr.remove_recording(recording)  # the disk wrapped round
    with pytest.raises(NotFound):
        await read(provider, video)
    assert provider._by_file, "a file that is gone says nothing about the firmware"


async def test_a_slow_device_times_out_as_transient(nvr: DahuaDevice) -> None:
    provider = made(nvr, timeout_seconds=1)
    nvr.delay = 1.5
    with pytest.raises(Transient):
        await provider.device_now()
    await provider.aclose()


async def test_a_length_other_than_listed_is_refused_before_reading(
    nvr: DahuaDevice, provider: DahuaProvider
) -> None:
    nvr.add_recording(1, HOUR_AGO, 2)
    (video,) = found(await scan(provider))
    assert video.size is not None
    grown = dataclasses.replace(video, size=video.size + 1)
    with pytest.raises(Transient, match="announced") as caught:
        await read(provider, grown)
    assert caught.value.restart


async def test_firmware_that_answers_found_zero_when_nothing_matches() -> None:
    with DahuaDevice(empty_as_error=False) as device:
        device.add_channel("Cam1")
        provider = made(device)
        assert found(await scan(provider)) == []
        assert device.calls["findNextFile"] == 1 and device.open_finders() == 0
        await provider.aclose()
