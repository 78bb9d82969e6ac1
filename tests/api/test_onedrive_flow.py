"""A shop owner's OneDrive, end to end through the API with the real worker.

Microsoft is played by the Graph emulator (tests/providers/onedrive/emulator.py): signing
in goes through its consent page, and every later fact (what was downloaded, how many
delta calls, which refresh tokens came back) is read off the requests it received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import wait_for, worker_browser
from tests.api.test_google_drive_flow import (
    _camera_source,
    _children,
    _published,
    _sync,
    _videos,
)
from tests.media import make_video
from tests.providers.onedrive.emulator import OneDriveEmulator
from tests.providers.onedrive.harness import CLIENT_ID, emulator_env
from vpack.settings import Settings

REDIRECT = "http://testserver/api/cloud/onedrive/oauth/callback"


@pytest.fixture
def od(monkeypatch: pytest.MonkeyPatch) -> Iterator[OneDriveEmulator]:
    with OneDriveEmulator(
        client_id=CLIENT_ID, redirect_uris=[REDIRECT], email="owner@shop.vn", auto_approve=False
    ) as server:
        for key, value in emulator_env(server).items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def browser(api_settings: Settings, od: OneDriveEmulator) -> Iterator[TestClient]:
    with worker_browser(api_settings) as signed_in:
        yield signed_in


def _connect(browser: TestClient, od: OneDriveEmulator, reconnect: int | None = None) -> int:
    body: dict[str, Any] = {"name": "Shop OneDrive"}
    if reconnect is not None:
        body["connection_id"] = reconnect
    started = browser.post("/api/cloud/onedrive/auth", json=body)
    assert started.status_code == 200, started.text
    auth_url = started.json()["auth_url"]
    assert "/common/oauth2/v2.0/authorize" in auth_url
    assert "code_challenge_method=S256" in auth_url and "Sites.Read.All" not in auth_url
    with httpx.Client() as microsoft:
        page = microsoft.get(auth_url)  # the consent page, as a person sees it
        assert page.status_code == 200 and "Files.Read" in page.text
        request_id = page.text.split('name="request" value="')[1].split('"')[0]
        allowed = microsoft.post(
            od.authorize_url(), data={"request": request_id, "decision": "allow"}
        )
    back = urlsplit(allowed.headers["location"])
    callback = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert callback.status_code == 303, callback.text
    return int(callback.headers["location"].split("connected=")[1])


def _downloads(od: OneDriveEmulator) -> list[Any]:
    return [r for r in od.requests if r.path.startswith("/download/")]


def test_connect_browse_sync_changes_and_reauth(
    browser: TestClient, od: OneDriveEmulator, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=2).read_bytes()
    other = make_video(tmp_path / "other.mp4", seconds=1, fps=8).read_bytes()
    project = od.add_folder("Project")
    area = od.add_folder("Area", project)
    cams = {name: od.add_folder(name, area) for name in ("Cam1", "Cam2", "Cam3")}
    first = od.add_file("order-1001.mp4", cams["Cam1"], clip)
    od.add_file("order-1002.mp4", cams["Cam2"], other)
    od.add_file("order-0999.mp4", cams["Cam3"], other)  # Cam3 is not picked
    od.add_file("notes.txt", cams["Cam1"], b"not a video")

    connection = _connect(browser, od)
    (conn,) = browser.get("/api/connections").json()
    assert conn["id"] == connection and conn["account"] == "owner@shop.vn"

    # Browse the lazy tree down to the camera folders (folders only).
    top = _children(browser, connection, None)
    assert list(top) == ["My files"]
    project_node = _children(browser, connection, top["My files"]["id"])["Project"]
    assert project_node["has_children"]
    area_node = _children(browser, connection, project_node["id"])["Area"]
    cameras = _children(browser, connection, area_node["id"])
    assert set(cameras) == {"Cam1", "Cam2", "Cam3"}
    assert cameras["Cam1"]["has_children"]  # childCount counts files too: a hint

    made = _camera_source(browser, connection, [cameras["Cam1"]["id"], cameras["Cam2"]["id"]])
    source = made["id"]
    _sync(browser, source, lambda v: len(v) == 2 and all(x["state"] == "done" for x in v.values()))
    videos = _videos(browser, source)
    assert {v["camera"] for v in videos.values()} == {"Cam1", "Cam2"}
    assert _published(browser, videos["order-1001.mp4"]) == clip
    assert videos["order-1001.mp4"]["sha256"] == hashlib.sha256(clip).hexdigest()

    # Added, renamed, moved and deleted: only the new file is fetched.
    od.reset_counts()
    od.add_file("order-1003.mp4", cams["Cam2"], clip)
    od.add_file("order-1000.mp4", cams["Cam3"], clip)  # outside the selection
    moved = od.add_file("order-1010.mp4", cams["Cam2"], other)
    od.rename(first, "order-1001-renamed.mp4")
    _sync(browser, source, lambda v: v.get("order-1010.mp4", {}).get("state") == "done")
    assert len(_downloads(od)) == 2
    od.reset_counts()
    od.move(moved, cams["Cam1"])
    od.delete(first)
    _sync(browser, source, lambda v: v["order-1001.mp4"].get("removed_at") is not None)
    assert _downloads(od) == []  # a move fetches nothing
    assert "order-1000.mp4" not in _videos(browser, source)

    # Nothing changed: one delta request for both selections of the drive.
    od.reset_counts()
    _sync(browser, source, lambda v: True)
    assert [r.path for r in od.requests] == [f"/v1.0/drives/{od.drive_id}/root/delta"]

    # The delta token dies: the drive is enumerated again, nothing fetched twice.
    od.expire_delta_tokens()
    od.reset_counts()
    _sync(browser, source, lambda v: True)
    assert _downloads(od) == []

    # The access token expires: refreshed, the rotated refresh token kept and never
    # sent twice.
    od.expire_access_tokens()
    od.add_file("order-1004.mp4", cams["Cam1"], other)
    _sync(browser, source, lambda v: v.get("order-1004.mp4", {}).get("state") == "done")
    sent = [f["refresh_token"] for f in od.token_requests if "refresh_token" in f]
    assert sent and len(sent) == len(set(sent))

    # A throttling storm: the connection waits, nothing fails.
    od.throttle_next(3, retry_after=1)
    od.add_file("order-1005.mp4", cams["Cam2"], clip)
    _sync(browser, source, lambda v: v.get("order-1005.mp4", {}).get("state") == "done")

    # The URL expires mid-file: a fresh one, resumed from where the bytes stopped.
    od.reset_counts()
    od.cut_next_download(len(clip) // 3, expire_url=True)
    od.add_file("order-1006.mp4", cams["Cam1"], clip)
    _sync(browser, source, lambda v: v.get("order-1006.mp4", {}).get("state") == "done")
    assert [r.status for r in _downloads(od)] == [200, 401, 206]
    assert _published(browser, _videos(browser, source)["order-1006.mp4"]) == clip

    # Bytes that do not match the QuickXorHash are never published.
    od.corrupt_next_download()
    od.add_file("order-1007.mp4", cams["Cam2"], other)
    _sync(browser, source, lambda v: v.get("order-1007.mp4", {}).get("error"))
    bad = _videos(browser, source)["order-1007.mp4"]
    assert bad["state"] != "done" and "quickxorhash" in bad["error"].lower()
    assert bad["local_path"] is None
    _sync(browser, source, lambda v: v["order-1007.mp4"]["state"] == "done")
    assert _published(browser, _videos(browser, source)["order-1007.mp4"]) == other

    # The user revokes VPACK's sessions: the connection asks for reauth, audited.
    od.revoke_refresh_tokens()
    od.expire_access_tokens()
    od.add_file("order-1008.mp4", cams["Cam1"], other)
    assert browser.post(f"/api/sources/{source}/sync").status_code == 202
    wait_for(
        lambda: browser.get(f"/api/connections/{connection}").json()["status"] == "reauth_required"
    )
    actions = [e["action"] for e in browser.get("/api/audit").json()["items"]]
    assert "connection_reauth_required" in actions
