"""A Dahua NVR through the API with the real worker: connect (a wrong password costs one
try), browse, a source over two channels, sync, then only what is new."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.recorder_flow import (
    add_channels_source,
    admin,
    browse,
    check_recording,
    connect_device,
    live,
    new_then_open_recording,
    sync_until_done,
    videos,
)
from tests.providers.dahua.emulator import DahuaDevice

PASSWORD = "Vpack-12345"
__all__ = ["live"]  # the fixture


@pytest.fixture
def nvr() -> Iterator[DahuaDevice]:
    with DahuaDevice(max_finders=2) as device:
        device.add_channel("Packing 1")
        device.add_channel("Packing 2")
        device.add_channel("Gate")
        yield device


def test_nvr_two_channels_sync_then_only_what_is_new(
    live: TestClient, nvr: DahuaDevice, tmp_path: Path
) -> None:
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    nvr.add_recording(1, hour_ago, 4)
    nvr.add_recording(2, hour_ago + timedelta(minutes=1), 3)
    nvr.add_recording(3, hour_ago, 2)  # the channel not picked
    auth = admin(live)

    settings = {"host": "127.0.0.1", "port": nvr.port, "username": "admin"}
    wrong = live.post(
        "/api/connections",
        headers=auth,
        json={"provider": "dahua", "name": "NVR", "config": {**settings, "password": "nope"}},
    )
    assert wrong.status_code == 400 and "refused the user name or password" in wrong.text
    assert nvr.failed_logins == 1 and not nvr.is_locked(), "one try, never a retry"

    conn = connect_device(live, auth, "dahua", nvr.port, PASSWORD)
    assert "DHI-NVR4108-8P-4KS2" in conn["account"]

    nodes = partial(browse, live, auth, conn["id"])
    (device,) = nodes()
    channels = nodes(device["id"])
    assert [c["name"] for c in channels] == ["Packing 1", "Packing 2", "Gate"]
    day = hour_ago.astimezone(nvr.tz).date().isoformat()
    assert day in [d["name"] for d in nodes("2")]

    source_id = add_channels_source(
        live, auth, conn["id"], ["1", "2"], {"Packing 1": "Desk 1", "Packing 2": "Desk 2"}
    )

    sync_until_done(live, auth, source_id, 2)
    by_camera = {v["camera"]: v for v in videos(live, auth, source_id)}
    assert set(by_camera) == {"Desk 1", "Desk 2"}
    # DHAV with G.711 audio: the video copied, the audio made AAC that browsers play.
    check_recording(live, auth, by_camera["Desk 1"], hour_ago, 4, tmp_path)
    check_recording(live, auth, by_camera["Desk 2"], hour_ago + timedelta(minutes=1), 3, tmp_path)
    new_then_open_recording(
        live, auth, source_id, nvr, done=2, downloads=lambda: nvr.calls["RPC_Loadfile"]
    )
    assert nvr.open_finders() == 0, "every finder object given back"
