"""An NVR through the API with the real worker: connect, browse, pick a channel, sync twice."""

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
from tests.providers.hikvision.emulator import HikvisionDevice

PASSWORD = "Vpack-12345"
__all__ = ["live"]  # the fixture


@pytest.fixture
def nvr() -> Iterator[HikvisionDevice]:
    with HikvisionDevice() as device:
        device.add_channel("Packing 1")
        device.add_channel("Packing 2")
        yield device


def test_nvr_channel_sync_then_only_what_is_new(
    live: TestClient, nvr: HikvisionDevice, tmp_path: Path
) -> None:
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    nvr.add_recording(1, hour_ago, 4)
    nvr.add_recording(2, hour_ago, 4)  # the channel not picked
    auth = admin(live)

    conn = connect_device(live, auth, "hikvision", nvr.port, PASSWORD)
    assert "DS-7608NI-K2" in conn["account"]

    nodes = partial(browse, live, auth, conn["id"])
    (device,) = nodes()
    channels = nodes(device["id"])
    assert [(c["id"], c["name"]) for c in channels] == [("1", "Packing 1"), ("2", "Packing 2")]
    day = hour_ago.astimezone(nvr.tz).date().isoformat()
    assert day in [d["name"] for d in nodes("1")]

    source_id = add_channels_source(live, auth, conn["id"], ["1"], {"Packing 1": "Desk 1"})

    sync_until_done(live, auth, source_id, 1)
    (video,) = videos(live, auth, source_id)
    assert video["camera"] == "Desk 1"
    check_recording(live, auth, video, hour_ago, 4, tmp_path)
    items = new_then_open_recording(
        live, auth, source_id, nvr, done=1, downloads=lambda: nvr.calls["download"]
    )
    assert {v["camera"] for v in items} == {"Desk 1"}
