"""A shop owner's Google Drive, end to end through the API with the real worker.

Google is played by the Drive emulator (tests/providers/google_drive/emulator.py): signing in
goes through its OAuth pages, and every later fact (what was fetched, how many
changes calls) is read off the requests it received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import wait_for, worker_browser
from tests.media import make_video
from tests.providers.google_drive.emulator import DriveEmulator
from tests.providers.google_drive.harness import CLIENT_ID, CLIENT_SECRET
from vpack.providers.kit.oauth import env_name
from vpack.settings import Settings

REDIRECT = "http://testserver/api/cloud/google_drive/oauth/callback"


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Iterator[DriveEmulator]:
    with DriveEmulator(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=[REDIRECT],
        email="owner@shop.vn",
    ) as server:
        for key, value in {
            "CLIENT_ID": CLIENT_ID,
            "CLIENT_SECRET": CLIENT_SECRET,
            "AUTH_URL": server.authorize_url,
            "TOKEN_URL": server.token_url,
            "API_URL": server.api_url,
        }.items():
            monkeypatch.setenv(env_name("google_drive", key), value)
        yield server


@pytest.fixture
def browser(api_settings: Settings, drive: DriveEmulator) -> Iterator[TestClient]:
    with worker_browser(api_settings) as signed_in:
        yield signed_in


def _connect(browser: TestClient) -> int:
    started = browser.post("/api/cloud/google_drive/auth", json={"name": "Shop Drive"})
    assert started.status_code == 200, started.text
    auth_url = started.json()["auth_url"]
    assert "access_type=offline" in auth_url and "drive.readonly" in auth_url
    at_google = httpx.get(auth_url, follow_redirects=False)
    assert at_google.status_code == 302
    back = urlsplit(at_google.headers["location"])
    callback = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert callback.status_code == 303, callback.text
    return int(callback.headers["location"].split("connected=")[1])


def _children(browser: TestClient, connection: int, node: str | None) -> dict[str, Any]:
    params = {"node": node} if node else {}
    answer = browser.get(f"/api/connections/{connection}/browse", params=params)
    assert answer.status_code == 200, answer.text
    return {n["name"]: n for n in answer.json()["nodes"]}


def _videos(browser: TestClient, source: int) -> dict[str, dict[str, Any]]:
    page = browser.get("/api/videos", params={"source_id": source, "limit": 200}).json()
    return {v["name"]: v for v in page["items"]}


def _sync(browser: TestClient, source: int, done: Callable[[dict[str, Any]], bool]) -> None:
    """Sync now, then wait for a scan after this moment and for `done` to hold."""
    before = browser.get(f"/api/sources/{source}/status").json()["last_scan_at"]
    assert browser.post(f"/api/sources/{source}/sync").status_code == 202

    def finished() -> bool:
        status = browser.get(f"/api/sources/{source}/status").json()
        scanned = status["last_scan_at"] not in (None, before)
        return scanned and not status["current"] and done(_videos(browser, source))

    def explain() -> str:
        status = browser.get(f"/api/sources/{source}/status").json()
        rows = {n: (v["state"], v["error"]) for n, v in _videos(browser, source).items()}
        return f"before={before} status={status} videos={rows}"

    wait_for(finished, explain=explain)


def _media_requests(drive: DriveEmulator) -> list[Any]:
    return [r for r in drive.requests if r.query.get("alt") == "media"]


def _camera_source(browser: TestClient, connection: int, folders: list[str]) -> Any:
    """A source on camera folders, each its own camera (the created source's JSON)."""
    made = browser.post(
        "/api/sources",
        json={
            "connection_id": connection,
            "name": "Packing desks",
            "selections": folders,
            "options": {"cameras_from": "selection"},
        },
    )
    assert made.status_code == 201, made.text
    return made.json()


def _published(browser: TestClient, video: dict[str, Any]) -> bytes:
    answer = browser.get(f"/api/videos/{video['id']}/content")
    assert answer.status_code == 200
    return answer.content


def test_connect_browse_sync_changes_and_faults(
    browser: TestClient, drive: DriveEmulator, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=2).read_bytes()
    other = make_video(tmp_path / "other.mp4", seconds=1, fps=8).read_bytes()
    project = drive.add_folder("Project")
    area = drive.add_folder("Area", project)
    cams = {name: drive.add_folder(name, area) for name in ("Cam1", "Cam2", "Cam3")}
    first = drive.add_file("order-1001.mp4", cams["Cam1"], clip)
    drive.add_file("order-1002.mp4", cams["Cam2"], other)
    drive.add_file("order-0999.mp4", cams["Cam3"], other)  # Cam3 is not picked
    drive.add_file("notes.txt", cams["Cam1"], b"not a video")

    # Connect through Google's (the emulator's) consent page.
    connection = _connect(browser)
    (conn,) = browser.get("/api/connections").json()
    assert conn["id"] == connection and conn["account"] == "owner@shop.vn"

    # Browse the lazy tree down to the camera folders.
    top = _children(browser, connection, None)
    assert top["My Drive"]["id"] == "root"
    project_node = _children(browser, connection, "root")["Project"]
    assert project_node["has_children"]
    area_node = _children(browser, connection, project_node["id"])["Area"]
    cameras = _children(browser, connection, area_node["id"])
    assert set(cameras) == {"Cam1", "Cam2", "Cam3"}
    assert not cameras["Cam1"]["has_children"]

    # A source on two of the camera folders; each is its own camera.
    made = _camera_source(browser, connection, [cameras["Cam1"]["id"], cameras["Cam2"]["id"]])
    source = made["id"]
    assert made["selection_names"] == {
        cameras["Cam1"]["id"]: "Cam1",
        cameras["Cam2"]["id"]: "Cam2",
    }
    _sync(browser, source, lambda v: len(v) == 2 and all(x["state"] == "done" for x in v.values()))
    videos = _videos(browser, source)
    assert {v["camera"] for v in videos.values()} == {"Cam1", "Cam2"}
    assert _published(browser, videos["order-1001.mp4"]) == clip
    assert videos["order-1001.mp4"]["sha256"] == hashlib.sha256(clip).hexdigest()

    # New and trashed files: only the change is fetched, from the changes feed.
    drive.reset_counts()
    drive.add_file("order-1003.mp4", cams["Cam2"], clip)
    drive.add_file("order-1000.mp4", cams["Cam3"], clip)  # outside the selection
    drive.trash(first)
    _sync(browser, source, lambda v: v.get("order-1003.mp4", {}).get("state") == "done")
    assert len(_media_requests(drive)) == 1
    assert drive.count("/drive/v3/files") == 1  # that one download; no listing
    assert "order-1000.mp4" not in _videos(browser, source)
    status = browser.get(f"/api/sources/{source}/status").json()
    assert status["counts"].get("removed", 0) == 1 or any(
        v.get("removed_at") for v in _videos(browser, source).values()
    )

    # Nothing changed: one changes call for both selections, nothing else.
    drive.reset_counts()
    _sync(browser, source, lambda v: True)
    assert [r.path for r in drive.requests] == ["/drive/v3/changes"]

    # The access token expires mid-sync: refreshed once, nothing fails.
    refreshes = drive.oauth.calls["refresh_token"]
    drive.expire_access_tokens()
    drive.add_file("order-1004.mp4", cams["Cam1"], other)
    _sync(browser, source, lambda v: v.get("order-1004.mp4", {}).get("state") == "done")
    assert drive.oauth.calls["refresh_token"] == refreshes + 1

    # A stream cut mid-file is resumed with a Range request, then verified.
    drive.reset_counts()
    drive.cut_next_download(after_bytes=len(clip) // 3)
    drive.add_file("order-1005.mp4", cams["Cam1"], clip)
    _sync(browser, source, lambda v: v.get("order-1005.mp4", {}).get("error"))
    _sync(browser, source, lambda v: v["order-1005.mp4"]["state"] == "done")
    ranges = [r.headers.get("range") for r in _media_requests(drive)]
    assert ranges == [None, f"bytes={len(clip) // 3}-"]
    assert _published(browser, _videos(browser, source)["order-1005.mp4"]) == clip

    # Bytes that do not match Drive's md5 are never published; the retry is.
    drive.corrupt_next_download()
    drive.add_file("order-1006.mp4", cams["Cam2"], other)
    _sync(browser, source, lambda v: v.get("order-1006.mp4", {}).get("error"))
    bad = _videos(browser, source)["order-1006.mp4"]
    assert bad["state"] != "done" and "md5" in bad["error"].lower()
    assert bad["local_path"] is None
    # No copy yet (409); on a slow machine the worker's retry may have landed since the
    # read above, and then the copy is the verified one, never the corrupt bytes.
    content = browser.get(f"/api/videos/{bad['id']}/content")
    assert content.status_code == 409 or (content.status_code, content.content) == (200, other)
    _sync(browser, source, lambda v: v["order-1006.mp4"]["state"] == "done")
    assert _published(browser, _videos(browser, source)["order-1006.mp4"]) == other

    # The user revokes VPACK at Google: the connection asks for reauth, audited.
    drive.revoke_refresh_tokens()
    drive.expire_access_tokens()
    drive.add_file("order-1007.mp4", cams["Cam1"], other)
    assert browser.post(f"/api/sources/{source}/sync").status_code == 202
    wait_for(
        lambda: browser.get(f"/api/connections/{connection}").json()["status"] == "reauth_required"
    )
    actions = [e["action"] for e in browser.get("/api/audit").json()["items"]]
    assert "connection_reauth_required" in actions
