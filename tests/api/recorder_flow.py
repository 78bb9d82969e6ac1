"""What the end-to-end recorder flows (Hikvision, Dahua) share: a live app with its
worker, browsing a connection, syncing a source until it settles, a video's content."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, login, wait_for
from tests.media import play_through
from vpack.api.app import create_app
from vpack.settings import Settings


@pytest.fixture
def live(api_settings: Settings) -> Iterator[TestClient]:
    fast = api_settings.model_copy(update={"scheduler_tick_seconds": 0.1})
    with TestClient(create_app(fast, run_worker=True)) as test_client:
        yield test_client


def admin(live: TestClient) -> dict[str, str]:
    """Set the app up and sign the admin in; the bearer header (cookies dropped)."""
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.cookies.clear()
    return auth


def browse(
    live: TestClient, auth: dict[str, str], connection_id: int, node: str | None = None
) -> list[dict[str, Any]]:
    params = {"node": node} if node else {}
    answer = live.get(f"/api/connections/{connection_id}/browse", headers=auth, params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["nodes"])


def sync_until_done(
    live: TestClient, auth: dict[str, str], source_id: int, count: int
) -> dict[str, Any]:
    """Ask for a sync and wait until `count` videos are done and the source is idle."""
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


def videos(live: TestClient, auth: dict[str, str], source_id: int) -> list[dict[str, Any]]:
    answer = live.get("/api/videos", headers=auth, params={"source_id": source_id})
    return list(answer.json()["items"])


def played(
    live: TestClient, auth: dict[str, str], video: dict[str, Any], tmp_path: Path
) -> tuple[int, float, set[str]]:
    """The video's content as served: an MP4 whose sha256 is the one listed; played through."""
    content = live.get(f"/api/videos/{video['id']}/content", headers=auth)
    assert content.headers["content-type"] == "video/mp4"
    assert hashlib.sha256(content.content).hexdigest() == video["sha256"]
    copy = tmp_path / f"copy-{video['id']}.mp4"
    copy.write_bytes(content.content)
    return play_through(copy)


def check_recording(
    live: TestClient,
    auth: dict[str, str],
    video: dict[str, Any],
    start: datetime,
    seconds: int,
    tmp_path: Path,
) -> None:
    """A synced recording: an .mp4 with its device times, H.264 copied and audio as AAC,
    that plays through (10 frames a second) with both streams."""
    assert video["name"].endswith(".mp4")
    assert datetime.fromisoformat(video["recorded_start"]) == start
    assert datetime.fromisoformat(video["recorded_end"]) == start + timedelta(seconds=seconds)
    assert video["codecs"] == "h264,aac" and abs(video["duration_s"] - seconds) < 0.5
    frames, duration, kinds = played(live, auth, video, tmp_path)
    assert frames == seconds * 10 and kinds == {"video", "audio"}
    assert abs(duration - seconds) < 0.5


def new_then_open_recording(
    live: TestClient,
    auth: dict[str, str],
    source_id: int,
    nvr: Any,
    done: int,
    downloads: Callable[[], int],
) -> list[dict[str, Any]]:
    """The NVR records more on channel 1: a finished recording, and one still being
    written. The next sync fetches only the finished one; once the open one closes, the
    sync after takes it, whole. Returns the source's videos."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    nvr.add_recording(1, start, 3)
    now = datetime.now(UTC).replace(microsecond=0)
    writing = nvr.start_recording(1, now - timedelta(seconds=20))
    status = sync_until_done(live, auth, source_id, done + 1)
    assert sum(status["counts"].values()) == done + 1, "the open recording is not taken yet"
    assert downloads() == done + 1, "only the new recording was fetched"

    nvr.finish_recording(writing, now - timedelta(seconds=3))
    status = sync_until_done(live, auth, source_id, done + 2)
    assert sum(status["counts"].values()) == done + 2 and downloads() == done + 2
    items = videos(live, auth, source_id)
    closed = next(
        v
        for v in items
        if datetime.fromisoformat(v["recorded_start"]) == now - timedelta(seconds=20)
    )
    assert abs(closed["duration_s"] - 17) < 0.5
    return items


def connect_device(
    live: TestClient, auth: dict[str, str], provider: str, port: int, password: str
) -> dict[str, Any]:
    """The provider's form says it is a device with a secret password; a connection to
    the emulator on `port` as admin is made, and the password never comes back."""
    providers = {p["name"]: p for p in live.get("/api/providers", headers=auth).json()}
    form = providers[provider]
    assert form["auth"] == "device" and form["features"]["time_indexed"] is True
    assert form["config_schema"]["properties"]["password"]["writeOnly"] is True
    config = {"host": "127.0.0.1", "port": port, "username": "admin", "password": password}
    made = live.post(
        "/api/connections",
        headers=auth,
        json={"provider": provider, "name": "Warehouse NVR", "config": config},
    )
    assert made.status_code == 201, made.text
    connection: dict[str, Any] = made.json()
    assert "password" not in connection["config"] and password not in made.text
    return connection


def add_channels_source(
    live: TestClient,
    auth: dict[str, str],
    connection_id: int,
    selections: list[str],
    cameras: dict[str, str],
) -> int:
    """A source over channels (settled after a second), its cameras renamed."""
    source = live.post(
        "/api/sources",
        headers=auth,
        json={
            "connection_id": connection_id,
            "name": "Packing desks",
            "interval_s": 600,
            "selections": selections,
            "options": {"settle_seconds": 1},
            "cameras": cameras,
        },
    )
    assert source.status_code == 201, source.text
    return int(source.json()["id"])
