"""The Hikvision provider against the ISAPI emulator: logins, channels, days, search, download."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.providers.hikvision.emulator import HikvisionDevice, User
from vpack.providers.base import Checkpoint, Found, RemoteVideo, ScanEvent, Waiting
from vpack.providers.errors import AuthExpired, BadConfig, NotFound, RateLimited, Transient
from vpack.providers.hikvision.provider import HikvisionProvider
from vpack.providers.registry import build_provider, source_options

PASSWORD = "Vpack-12345"
HOUR_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
def nvr() -> Iterator[HikvisionDevice]:
    with HikvisionDevice(lock_after=5) as device:
        device.add_channel("Packing 1")
        device.add_channel("Packing 2")
        yield device


def config(device: HikvisionDevice, **changes: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": device.port,
        "username": "admin",
        "password": PASSWORD,
        **changes,
    }


@pytest.fixture
async def provider(nvr: HikvisionDevice) -> AsyncIterator[HikvisionProvider]:
    made = build_provider("hikvision", config(nvr))
    assert isinstance(made, HikvisionProvider)
    try:
        yield made
    finally:
        await made.aclose()


async def scan(
    provider: HikvisionProvider, cursor: str | None = None, **options: Any
) -> list[ScanEvent]:
    opts = source_options("hikvision", {"settle_seconds": 1, **options})
    return [event async for event in provider.scan("1", cursor, opts)]


def found(events: list[ScanEvent]) -> list[RemoteVideo]:
    return [e.video for e in events if isinstance(e, Found)]


async def read(provider: HikvisionProvider, video: RemoteVideo) -> bytes:
    return b"".join([chunk async for chunk in provider.open(video)])


# ---------------------------------------------------------------- connecting
async def test_check_names_model_serial_and_firmware(provider: HikvisionProvider) -> None:
    identity = await provider.check()
    assert identity.id == "DS-7608NI-K20820231130CCRRJ12345678WCVU"
    assert "DS-7608NI-K2" in identity.label
    assert identity.details["firmware"] == "V4.62.210 build 231130"
    assert identity.details["device_type"] == "NVR"
    assert "clock_warning" not in identity.details


async def test_a_wrong_password_costs_one_try_and_says_so(nvr: HikvisionDevice) -> None:
    for attempt in (1, 2):
        wrong = build_provider("hikvision", config(nvr, password="wrong"))
        with pytest.raises(BadConfig, match="refused the user name or password") as caught:
            await wrong.check()
        await wrong.aclose()
        assert nvr.failed_logins == attempt, "one check, one failed login, never a retry"
    assert f"{5 - 2} tries left" in str(caught.value)
    assert not nvr.is_locked()


async def test_a_locked_account_is_reported_and_not_made_worse(nvr: HikvisionDevice) -> None:
    nvr.lock_account()
    right = build_provider("hikvision", config(nvr))
    with pytest.raises(BadConfig, match=r"locked user admin .* unlocks in about 30 min"):
        await right.check()
    await right.aclose()
    assert nvr.failed_logins == 0


async def test_during_sync_a_lock_waits_and_a_wrong_password_needs_the_user(
    nvr: HikvisionDevice,
) -> None:
    nvr.lock_account()
    provider = build_provider("hikvision", config(nvr))
    with pytest.raises(RateLimited) as waited:
        await scan(provider)  # type: ignore[arg-type]
    assert waited.value.retry_after is not None and waited.value.retry_after > 1700
    await provider.aclose()
    nvr.unlock_account()
    wrong = build_provider("hikvision", config(nvr, password="wrong"))
    with pytest.raises(AuthExpired, match="refused the user name or password"):
        await scan(wrong)  # type: ignore[arg-type]
    await wrong.aclose()
    assert nvr.failed_logins == 1


async def test_unreachable_device(tmp_path: Path) -> None:
    with HikvisionDevice() as device:
        port = device.port
    gone = build_provider(
        "hikvision", {"host": "127.0.0.1", "port": port, "username": "a", "password": "b"}
    )
    with pytest.raises(BadConfig, match=r"cannot reach 127\.0\.0\.1.*LAN or a VPN"):
        await gone.check()
    await gone.aclose()


async def test_https_checks_the_certificate_unless_told_not_to(tmp_path: Path) -> None:
    with HikvisionDevice(https=True, cert_dir=tmp_path) as device:
        strict = build_provider("hikvision", config(device, https=True))
        with pytest.raises(BadConfig, match=r"certificate .* is not trusted"):
            await strict.check()
        await strict.aclose()
        trusting = build_provider("hikvision", config(device, https=True, verify_certificate=False))
        assert (await trusting.check()).details["model"] == "DS-7608NI-K2"
        await trusting.aclose()


async def test_basic_only_firmware_and_stale_nonces() -> None:
    with HikvisionDevice(auth="basic") as device:
        provider = build_provider("hikvision", config(device))
        await provider.check()
        await provider.aclose()
    with HikvisionDevice() as device:
        provider = build_provider("hikvision", config(device))
        await provider.check()
        device.expire_nonces()  # the next request meets stale="TRUE" and answers it once
        await provider.check()
        await provider.aclose()
        assert device.failed_logins == 0 and device.calls["deviceInfo"] == 2


async def test_a_clock_in_another_time_zone_is_pointed_out() -> None:
    with HikvisionDevice(time_zone="Asia/Tokyo") as device:
        provider = build_provider("hikvision", config(device))
        identity = await provider.check()
        await provider.aclose()
    assert "UTC+09:00" in identity.details["clock_warning"]
    assert "Asia/Ho_Chi_Minh (UTC+07:00)" in identity.details["clock_warning"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"host": "http://192.168.1.64"}, "address only"),
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_settings_are_checked(change: dict[str, str], message: str) -> None:
    base = {"host": "192.168.1.64", "username": "admin", "password": "x"}
    with pytest.raises(BadConfig, match=message):
        build_provider("hikvision", {**base, **change})


# ---------------------------------------------------------------- browsing
async def test_device_then_channels_with_their_names(provider: HikvisionProvider) -> None:
    (device,) = (await provider.browse(None)).nodes
    assert (device.kind, device.selectable) == ("device", False)
    channels = (await provider.browse(device.id)).nodes
    assert [(c.id, c.name, c.kind, c.selectable) for c in channels] == [
        ("1", "Packing 1", "channel", True),
        ("2", "Packing 2", "channel", True),
    ]
    assert await provider.validate_selection("2") == "Packing 2"
    with pytest.raises(BadConfig, match="no channel '9'"):
        await provider.validate_selection("9")


async def test_a_camera_names_its_channel_from_its_streams() -> None:
    with HikvisionDevice(kind="camera") as camera:
        provider = build_provider("hikvision", config(camera))
        channels = (await provider.browse("device")).nodes
        await provider.aclose()
    assert [(c.id, c.name) for c in channels] == [("1", "Camera 01")]


async def test_days_with_recordings_month_by_month(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    starts = [HOUR_AGO - timedelta(days=d) for d in (0, 1, 45)]
    for start in starts:
        nvr.add_recording(1, start, 1)
    nvr.add_recording(2, HOUR_AGO - timedelta(days=3), 1)  # another channel
    days, page, pages = [], None, 0
    while True:
        listing = await provider.browse("1", page)
        days += [n.name for n in listing.nodes]
        assert all(n.kind == "day" and not n.selectable for n in listing.nodes)
        pages += 1
        page = listing.next_page
        if page is None:
            break
    expected = sorted({s.astimezone(tz).date().isoformat() for s in starts}, reverse=True)
    assert days == expected and pages >= 2
    assert (await provider.browse(f"1/{expected[0]}")).nodes == []


# ---------------------------------------------------------------- scanning
async def test_recordings_in_device_time_become_utc(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    recording = nvr.add_recording(1, HOUR_AGO, 3)
    (video,) = found(await scan(provider))
    assert video.recorded_start == HOUR_AGO and video.recorded_end == HOUR_AGO + timedelta(
        seconds=3
    )
    assert video.remote_id == f"101/{recording.name}" and video.size == len(recording.data)
    assert video.camera == "Packing 1"
    local = HOUR_AGO.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert video.name == f"Packing 1 {local:%Y-%m-%d %H-%M-%S}.mp4"


async def test_firmware_that_writes_true_utc() -> None:
    with HikvisionDevice(z_is_local=False) as device:
        device.add_channel("Cam")
        device.add_recording(1, HOUR_AGO, 2)
        provider = build_provider("hikvision", config(device, times_in_utc=True))
        (video,) = found(await scan(provider))  # type: ignore[arg-type]
        await provider.aclose()
    assert video.recorded_start == HOUR_AGO


async def test_paging_through_more_with_checkpoints(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    nvr.max_results = 4  # the device caps each page below what we ask for
    for i in range(10):
        nvr.add_recording(1, HOUR_AGO + timedelta(minutes=i), 1)
    events = await scan(provider)
    videos = found(events)
    assert len(videos) == 10 == len({v.remote_id for v in videos})
    checkpoints = [e for e in events if isinstance(e, Checkpoint)]
    assert len(checkpoints) == 4 and checkpoints[-1].complete
    assert not any(c.complete for c in checkpoints[:-1])
    assert checkpoints[-1].cursor == (HOUR_AGO + timedelta(minutes=9, seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert nvr.calls["search"] == 3


async def test_cursor_and_overlap(nvr: HikvisionDevice, provider: HikvisionProvider) -> None:
    nvr.add_recording(1, HOUR_AGO - timedelta(hours=5), 1)
    nvr.add_recording(1, HOUR_AGO, 1)
    first = await scan(provider)
    cursor = [e for e in first if isinstance(e, Checkpoint)][-1].cursor
    nvr.add_recording(1, HOUR_AGO + timedelta(minutes=5), 1)
    narrow = found(await scan(provider, cursor, overlap_seconds=0))
    assert [v.recorded_start for v in narrow] == [HOUR_AGO + timedelta(minutes=5)]
    wide = found(await scan(provider, cursor, overlap_seconds=3600))
    assert len(wide) == 2, "the overlap finds the last one again (the database drops it)"


async def test_a_recording_being_written_waits(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    nvr.add_recording(1, HOUR_AGO, 1)
    writing = nvr.start_recording(1, datetime.now(UTC) - timedelta(seconds=30))
    events = await scan(provider)
    assert [type(e) for e in events if not isinstance(e, Checkpoint)] == [Found, Waiting]
    waiting = next(e for e in events if isinstance(e, Waiting))
    assert waiting.remote_id == f"101/{writing.name}"
    final = [e for e in events if isinstance(e, Checkpoint)][-1]
    assert final.cursor == (HOUR_AGO + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_sub_stream_and_first_scan_history(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    nvr.add_recording(1, HOUR_AGO - timedelta(days=10), 1)
    nvr.add_recording(1, HOUR_AGO, 1)
    assert len(found(await scan(provider, history_days=2))) == 1
    assert found(await scan(provider, stream="sub")) == []  # this NVR records main streams


async def test_a_busy_device_is_asked_again(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    nvr.add_recording(1, HOUR_AGO, 1)
    nvr.busy_next(1)
    assert len(found(await scan(provider))) == 1


async def test_a_slow_device_times_out(nvr: HikvisionDevice) -> None:
    provider = build_provider("hikvision", config(nvr, timeout_seconds=1))
    nvr.delay = 1.5
    with pytest.raises(BadConfig, match="did not answer in time"):
        await provider.check()
    nvr.delay = 0
    await provider.aclose()


async def test_a_user_without_playback_rights_is_told_what_to_fix() -> None:
    users = [User("admin", PASSWORD), User("viewer", "View-12345", playback=False)]
    with HikvisionDevice(users=users) as device:
        device.add_channel("Cam")
        provider = build_provider(
            "hikvision", config(device, username="viewer", password="View-12345")
        )
        await provider.check()
        with pytest.raises(BadConfig, match="Remote Playback"):
            await scan(provider)  # type: ignore[arg-type]
        await provider.aclose()


# ---------------------------------------------------------------- downloading
async def test_download_is_the_devices_stream(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    recording = nvr.add_recording(1, HOUR_AGO, 2)
    (video,) = found(await scan(provider))
    assert await read(provider, video) == recording.data
    ((method, uri),) = nvr.download_requests
    assert method == "GET" and f"name={recording.name}" in uri and "&size=" in uri


async def test_post_only_firmware_is_learnt_once() -> None:
    with HikvisionDevice(download_methods=frozenset({"POST"})) as device:
        device.add_channel("Cam")
        device.add_recording(1, HOUR_AGO, 1)
        device.add_recording(1, HOUR_AGO + timedelta(minutes=1), 1)
        provider = build_provider("hikvision", config(device))
        videos = found(await scan(provider))  # type: ignore[arg-type]
        for video in videos:
            assert await read(provider, video)  # type: ignore[arg-type]
        await provider.aclose()
    assert [m for m, _ in device.download_requests] == ["POST", "POST"]
    assert device.calls["download"] == 2, "the refused GET answered 405 before any download"


async def test_a_dropped_download_restarts_from_zero(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    nvr.add_recording(1, HOUR_AGO, 3)
    (video,) = found(await scan(provider))
    nvr.cut_next_downloads(after_bytes=5000)
    with pytest.raises(Transient, match="broke off") as caught:
        await read(provider, video)
    assert caught.value.restart
    with pytest.raises(Transient):
        async for _ in provider.open(video, offset=100):
            pass


async def test_an_overwritten_recording_is_not_found(
    nvr: HikvisionDevice, provider: HikvisionProvider
) -> None:
    recording = nvr.add_recording(1, HOUR_AGO, 1)
    (video,) = found(await scan(provider))
    nvr.remove_recording(recording)
    with pytest.raises(NotFound):
        await read(provider, video)
