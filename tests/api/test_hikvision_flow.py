"""An NVR through the API with the real worker: connect, browse, pick a channel, sync twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, login, wait_for
from tests.media import play_through
from tests.providers.hikvision.emulator import HikvisionDevice
from vpack.api.app import create_app
from vpack.settings import Settings

PASSWORD = "Vpack-12345"


@pytest.fixture
def live(api_settings: Settings) -> Iterator[TestClient]:
    fast = api_settings.model_copy(update={"scheduler_tick_seconds": 0.1})
    with TestClient(create_app(fast, run_worker=True)) as test_client:
        yield test_client


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
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.cookies.clear()

    providers = {p["name"]: p for p in live.get("/api/providers", headers=auth).json()}
    form = providers["hikvision"]
    assert form["auth"] == "device" and form["features"]["time_indexed"] is True
    assert form["config_schema"]["properties"]["password"]["writeOnly"] is True

    made = live.post(
        "/api/connections",
        headers=auth,
        json={
            "provider": "hikvision",
            "name": "Warehouse NVR",
            "config": {
                "host": "127.0.0.1",
                "port": nvr.port,
                "username": "admin",
                "password": PASSWORD,
            },
        },
    )
    assert made.status_code == 201, made.text
    conn = made.json()
    assert "password" not in conn["config"] and PASSWORD not in made.text
    assert "DS-7608NI-K2" in conn["account"]

    def browse(node: str | None = None) -> list[dict[str, Any]]:
        params = {"node": node} if node else {}
        answer = live.get(f"/api/connections/{conn['id']}/browse", headers=auth, params=params)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["nodes"])

    (device,) = browse()
    channels = browse(device["id"])
    assert [(c["id"], c["name"]) for c in channels] == [("1", "Packing 1"), ("2", "Packing 2")]
    day = hour_ago.astimezone(nvr.tz).date().isoformat()
    assert day in [d["name"] for d in browse("1")]

    source = live.post(
        "/api/sources",
        headers=auth,
        json={
            "connection_id": conn["id"],
            "name": "Packing desk 1",
            "interval_s": 600,
            "selections": ["1"],
            "options": {"settle_seconds": 1},
            "cameras": {"Packing 1": "Desk 1"},
        },
    )
    assert source.status_code == 201, source.text
    source_id = source.json()["id"]

    def sync_until_done(count: int) -> dict[str, Any]:
        assert live.post(f"/api/sources/{source_id}/sync", headers=auth).status_code == 202
        status: dict[str, Any] = wait_for(
            lambda: (
                (s := live.get(f"/api/sources/{source_id}/status", headers=auth).json())["counts"][
                    "done"
                ]
                == count
                and s["state"] == "idle"
                and s
            )
        )
        return status

    sync_until_done(1)
    (video,) = live.get("/api/videos", headers=auth, params={"source_id": source_id}).json()[
        "items"
    ]
    assert video["camera"] == "Desk 1" and video["name"].endswith(".mp4")
    assert datetime.fromisoformat(video["recorded_start"]) == hour_ago
    assert datetime.fromisoformat(video["recorded_end"]) == hour_ago + timedelta(seconds=4)
    assert video["codecs"] == "h264,aac" and abs(video["duration_s"] - 4) < 0.5
    content = live.get(f"/api/videos/{video['id']}/content", headers=auth)
    assert content.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(content.content).hexdigest() == video["sha256"]
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(content.content)
    frames, duration, kinds = play_through(copy)
    assert frames == 40 and kinds == {"video", "audio"} and abs(duration - 4) < 0.5

    # The NVR records more: a finished recording, and one still being written.
    nvr.add_recording(1, hour_ago + timedelta(minutes=30), 3)
    now = datetime.now(UTC).replace(microsecond=0)
    writing = nvr.start_recording(1, now - timedelta(seconds=20))
    status = sync_until_done(2)
    assert sum(status["counts"].values()) == 2, "the open recording is not taken yet"
    assert nvr.calls["download"] == 2, "only the new recording was fetched"

    nvr.finish_recording(writing, now - timedelta(seconds=3))
    status = sync_until_done(3)
    assert sum(status["counts"].values()) == 3 and nvr.calls["download"] == 3
    items = live.get("/api/videos", headers=auth, params={"source_id": source_id}).json()["items"]
    closed = next(
        v
        for v in items
        if datetime.fromisoformat(v["recorded_start"]) == now - timedelta(seconds=20)
    )
    assert abs(closed["duration_s"] - 17) < 0.5
    assert {v["camera"] for v in items} == {"Desk 1"}
