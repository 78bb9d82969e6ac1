"""The Dahua emulator driven by clients that are not ours: requests' digest, curl --digest,
and PyAV's dhav demuxer reading what it serves."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import av
import pytest
import requests
from requests.auth import HTTPDigestAuth

from tests.providers.dahua.dhav import pack_date, unpack_date, write_dhav
from tests.providers.dahua.emulator import DahuaDevice, User
from vpack import media

PASSWORD = "Vpack-12345"
AUTH = HTTPDigestAuth("admin", PASSWORD)
START = datetime(2026, 12, 8, 2, 0, 0, tzinfo=UTC)  # 09:00 in Ho Chi Minh City


@pytest.fixture
def nvr() -> Iterator[DahuaDevice]:
    with DahuaDevice(max_finders=3) as device:
        device.add_channel("Packing 1")
        device.add_channel("Packing 2")
        yield device


def get(device: DahuaDevice, path: str, auth: HTTPDigestAuth = AUTH) -> requests.Response:
    return requests.get(device.base_url + path, auth=auth, timeout=10)


def lines(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return dict(line.split("=", 1) for line in response.text.split("\r\n") if line)


def find(device: DahuaDevice, query: str, count: int = 100) -> list[dict[str, str]]:
    """The whole lifecycle, as the documents give it; returns every page's key=values."""
    created = lines(get(device, "/cgi-bin/mediaFileFind.cgi?action=factory.create"))
    obj = created["result"]
    base = f"/cgi-bin/mediaFileFind.cgi?object={obj}&action="
    pages = []
    started = get(device, base + "findFile&" + query)
    assert started.status_code == 200
    if started.text.startswith("OK"):
        while True:
            page = lines(get(device, base + f"findNextFile&count={count}"))
            pages.append(page)
            if page["found"] == "0":
                break
    assert get(device, base + "close").text == "OK\r\n"
    assert get(device, base + "destroy").text == "OK\r\n"
    return pages


def window(channel: int, since: str, until: str) -> str:
    return (
        f"condition.Channel={channel}&condition.StartTime={since}&condition.EndTime={until}"
        "&condition.Types[0]=dav&condition.Types[1]=mp4"
    )


# ---------------------------------------------------------------- digest
def test_digest_challenge_as_devices_send_it(nvr: DahuaDevice) -> None:
    bare = requests.get(nvr.base_url + "/cgi-bin/magicBox.cgi?action=getSystemInfo", timeout=5)
    assert bare.status_code == 401
    challenge = bare.headers["WWW-Authenticate"]
    assert challenge.startswith("Digest ")
    assert f'realm="Login to {nvr.serial}"' in challenge
    assert 'qop="auth"' in challenge and "opaque=" in challenge and "nonce=" in challenge
    info = lines(get(nvr, "/cgi-bin/magicBox.cgi?action=getSystemInfo"))
    assert info["serialNumber"] == nvr.serial and info["deviceType"] == nvr.device_type


def test_magic_box_and_channel_titles(nvr: DahuaDevice) -> None:
    assert lines(get(nvr, "/cgi-bin/magicBox.cgi?action=getDeviceType")) == {
        "type": "DHI-NVR4108-8P-4KS2"
    }
    version = lines(get(nvr, "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"))["version"]
    assert version == "4.001.0000000.3,build:2023-08-21"
    assert lines(get(nvr, "/cgi-bin/magicBox.cgi?action=getSerialNo")) == {"sn": nvr.serial}
    titles = lines(get(nvr, "/cgi-bin/configManager.cgi?action=getConfig&name=ChannelTitle"))
    assert titles == {
        "table.ChannelTitle[0].Name": "Packing 1",
        "table.ChannelTitle[1].Name": "Packing 2",
    }
    bad = get(nvr, "/cgi-bin/magicBox.cgi?action=reboot")
    assert (bad.status_code, bad.text) == (400, "Error\r\nBad Request!\r\n")


def test_curl_digest_reads_the_clock(nvr: DahuaDevice) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is needed for this test")
    nvr.clock_skew = timedelta(hours=7)
    url = nvr.base_url + "/cgi-bin/global.cgi?action=getCurrentTime"
    done = subprocess.run(
        [curl, "-s", "--digest", "-u", f"admin:{PASSWORD}", url],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    text = done.stdout.strip()
    assert text.startswith("result=")
    shown = datetime.strptime(text.removeprefix("result="), "%Y-%m-%d %H:%M:%S")
    expected = (datetime.now(UTC) + timedelta(hours=7)).astimezone(nvr.tz).replace(tzinfo=None)
    assert abs(shown - expected) < timedelta(seconds=5)


def test_wrong_passwords_lock_the_user_and_insisting_keeps_it_locked() -> None:
    with DahuaDevice(lock_after=3, users=[User("admin", PASSWORD)]) as device:
        wrong = HTTPDigestAuth("admin", "nope")
        for _ in range(3):
            assert get(device, "/cgi-bin/magicBox.cgi?action=getSerialNo", wrong).status_code == 401
        assert device.is_locked()
        locked = get(device, "/cgi-bin/magicBox.cgi?action=getSerialNo")  # the right password
        assert (locked.status_code, locked.text) == (401, "Error\r\nUser is locked!\r\n")
        device.unlock_account()
        assert get(device, "/cgi-bin/magicBox.cgi?action=getSerialNo").status_code == 200


# ---------------------------------------------------------------- search
def test_find_lifecycle_pages_in_device_time(nvr: DahuaDevice) -> None:
    for i in range(5):
        nvr.add_recording(1, START + timedelta(minutes=10 * i), 2)
    nvr.add_recording(2, START, 2)
    nvr.page_max = 2
    pages = find(nvr, window(1, "2026-12-8 08:00:00", "2026-12-8 10:00:00"), count=100)
    assert [p["found"] for p in pages] == ["2", "2", "1", "0"]
    first = pages[0]
    assert first["items[0].StartTime"] == "2026-12-8 09:00:00"
    assert first["items[0].EndTime"] == "2026-12-8 09:00:02"
    assert first["items[0].Channel"] == "1" and first["items[0].Type"] == "dav"
    assert first["items[0].FilePath"].endswith("/09.00.00-09.00.02[R][0@0][0].dav")
    assert int(first["items[0].Length"]) == len(nvr.recordings()[0].data)
    assert nvr.open_finders() == 0


def test_nothing_found_is_an_error_body_with_200(nvr: DahuaDevice) -> None:
    assert find(nvr, window(1, "2026-12-8 08:00:00", "2026-12-8 10:00:00")) == []
    obj = lines(get(nvr, "/cgi-bin/mediaFileFind.cgi?action=factory.create"))["result"]
    query = window(1, "2026-12-8 08:00:00", "2026-12-8 10:00:00")
    answer = get(nvr, f"/cgi-bin/mediaFileFind.cgi?action=findFile&object={obj}&{query}")
    assert (answer.status_code, answer.text) == (200, "Error\r\n")


def test_finder_objects_run_out_unless_destroyed(nvr: DahuaDevice) -> None:
    for _ in range(3):
        assert get(nvr, "/cgi-bin/mediaFileFind.cgi?action=factory.create").status_code == 200
    refused = get(nvr, "/cgi-bin/mediaFileFind.cgi?action=factory.create")
    assert (refused.status_code, refused.text) == (400, "Error\r\nBad Request!\r\n")
    assert nvr.open_finders() == 3


def test_an_open_recording_ends_at_the_device_clock(nvr: DahuaDevice) -> None:
    nvr.start_recording(1, nvr.now() - timedelta(seconds=30))
    (page, _) = find(nvr, window(1, "2026-1-1 00:00:00", "2037-1-1 00:00:00"))
    end = datetime.strptime(page["items[0].EndTime"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=nvr.tz)
    assert abs(end - nvr.now()) < timedelta(seconds=3)


# ---------------------------------------------------------------- media
def test_dhav_dates_pack_as_ffmpeg_reads_them() -> None:
    when = datetime(2026, 12, 8, 23, 59, 58)
    assert unpack_date(pack_date(when)) == when


def test_downloads_are_dhav_that_pyav_reads(nvr: DahuaDevice, tmp_path: Path) -> None:
    recording = nvr.add_recording(1, START, 3)
    quoted = quote(recording.path)
    by_file = get(nvr, "/cgi-bin/RPC_Loadfile" + quoted)
    assert by_file.status_code == 200 and by_file.content == recording.data
    assert by_file.headers["Content-Length"] == str(len(recording.data))
    assert by_file.content[:4] == b"DHAV"
    by_time = get(
        nvr,
        "/cgi-bin/loadfile.cgi?action=startLoad&channel=1&startTime=2026-12-8%2009:00:00"
        "&endTime=2026-12-8%2009:00:03&subtype=0",
    )
    assert by_time.content == recording.data
    dav = tmp_path / "a.dav"
    dav.write_bytes(by_file.content)
    with av.open(str(dav)) as container:
        assert container.format.name == "dhav"
        kinds = {s.type: s.codec_context.name for s in container.streams}
        assert kinds == {"video": "h264", "audio": "pcm_alaw"}
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 30
    made = media.remux_to_mp4(dav, tmp_path / "a.mp4")
    assert made.codecs == "h264,aac" and made.duration_s and 2.9 < made.duration_s < 3.3


def test_dhav_timestamps_are_the_wall_clock_second_by_second() -> None:
    buffer = io.BytesIO()
    write_dhav(buffer, datetime(2026, 12, 8, 9, 0, 0), 2, audio=None)
    buffer.seek(0)
    with av.open(buffer, format="dhav") as container:
        pts = [p.pts for p in container.demux(video=0) if p.size]
    base = int(datetime(2026, 12, 8, 9, 0, 0, tzinfo=UTC).timestamp()) * 1000
    assert pts == [base + 100 * i for i in range(20)]


def test_mp4_recordings_as_newer_firmware_stores(nvr: DahuaDevice) -> None:
    recording = nvr.add_recording(1, START, 2, kind="mp4")
    (page, _) = find(nvr, window(1, "2026-12-8 08:00:00", "2026-12-8 10:00:00"))
    assert page["items[0].Type"] == "mp4" and page["items[0].FilePath"].endswith(".mp4")
    body = get(nvr, "/cgi-bin/RPC_Loadfile" + quote(recording.path)).content
    assert body[4:8] == b"ftyp"


def test_a_dropped_stream_and_a_device_without_download_by_file(nvr: DahuaDevice) -> None:
    recording = nvr.add_recording(1, START, 3)
    nvr.cut_next_downloads(10_000)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(nvr, "/cgi-bin/RPC_Loadfile" + quote(recording.path))
    nvr.by_file = False
    assert get(nvr, "/cgi-bin/RPC_Loadfile" + recording.path).status_code == 404


def test_a_user_without_playback_is_refused_with_invalid_authority() -> None:
    users = [User("admin", PASSWORD), User("viewer", "Viewer-1234", playback=False)]
    with DahuaDevice(users=users) as device:
        device.add_channel("Cam1")
        viewer = HTTPDigestAuth("viewer", "Viewer-1234")
        obj = lines(get(device, "/cgi-bin/mediaFileFind.cgi?action=factory.create", viewer))[
            "result"
        ]
        answer = get(
            device,
            f"/cgi-bin/mediaFileFind.cgi?action=findFile&object={obj}&"
            + window(1, "2026-12-8 08:00:00", "2026-12-8 10:00:00"),
            viewer,
        )
        assert (answer.status_code, answer.text) == (403, "Error\r\nInvalid Authority!\r\n")
