"""A shop owner's Dropbox, end to end through the API with the real worker.

Dropbox is played by the Dropbox emulator (tests/providers/dropbox/emulator.py, over
TLS with its own CA): signing in goes through its authorize page, and every later fact
(what was downloaded, which refresh happened, which longpolls were waiting) is read off
the requests it received. A file that lands while the service runs is fetched through
the longpoll watcher alone: no sync is asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
from tests.providers.dropbox.emulator import DropboxEmulator
from tests.providers.dropbox.harness import APP_KEY, APP_SECRET, emulator_env
from vpack.settings import Settings

REDIRECT = "http://testserver/api/cloud/dropbox/oauth/callback"


@pytest.fixture
def dbx(monkeypatch: pytest.MonkeyPatch) -> Iterator[DropboxEmulator]:
    with DropboxEmulator(
        app_key=APP_KEY, app_secret=APP_SECRET, redirect_uris=[REDIRECT], email="owner@shop.vn"
    ) as server:
        for key, value in emulator_env(server).items():
            monkeypatch.setenv(key, value)
        yield server


@pytest.fixture
def browser(api_settings: Settings, dbx: DropboxEmulator) -> Iterator[TestClient]:
    with worker_browser(api_settings) as signed_in:
        yield signed_in


def _connect(browser: TestClient, dbx: DropboxEmulator) -> int:
    started = browser.post("/api/cloud/dropbox/auth", json={"name": "Shop Dropbox"})
    assert started.status_code == 200, started.text
    auth_url = started.json()["auth_url"]
    query = parse_qs(urlsplit(auth_url).query)
    assert query["token_access_type"] == ["offline"] and query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["files.metadata.read files.content.read account_info.read"]
    with httpx.Client(verify=dbx.ssl_context()) as person:
        allowed = person.get(auth_url)  # the emulator approves at once
    assert allowed.status_code == 302, allowed.text
    back = urlsplit(allowed.headers["location"])
    callback = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert callback.status_code == 303, callback.text
    return int(callback.headers["location"].split("connected=")[1])


def _downloads(dbx: DropboxEmulator) -> list[Any]:
    return [r for r in dbx.requests if r.path == "/2/files/download"]


def test_connect_browse_sync_changes_longpoll_and_reauth(
    browser: TestClient, dbx: DropboxEmulator, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "clip.mp4", seconds=2).read_bytes()
    other = make_video(tmp_path / "other.mp4", seconds=1, fps=8).read_bytes()
    dbx.add_file("/Project/Area/Cam1/order-1001.mp4", clip)
    dbx.add_file("/Project/Area/Cam2/order-1002.mp4", other)
    dbx.add_file("/Project/Area/Cam3/order-0999.mp4", other)  # Cam3 is not picked
    dbx.add_file("/Project/Area/Cam1/notes.txt", b"not a video")

    connection = _connect(browser, dbx)
    (conn,) = browser.get("/api/connections").json()
    assert conn["id"] == connection and conn["account"] == "owner@shop.vn"
    token_calls = [r for r in dbx.requests if r.path == "/oauth2/token"]
    assert len(token_calls) == 1  # the code exchange, with the PKCE verifier and no secret

    # Browse the lazy tree down to the camera folders (folders only).
    top = _children(browser, connection, None)
    assert list(top) == ["Dropbox"]
    project = _children(browser, connection, top["Dropbox"]["id"])["Project"]
    assert project["has_children"]  # Dropbox counts no children: always offered
    area = _children(browser, connection, project["id"])["Area"]
    cameras = _children(browser, connection, area["id"])
    assert set(cameras) == {"Cam1", "Cam2", "Cam3"}

    made = _camera_source(browser, connection, [cameras["Cam1"]["id"], cameras["Cam2"]["id"]])
    source = made["id"]
    _sync(browser, source, lambda v: len(v) == 2 and all(x["state"] == "done" for x in v.values()))
    videos = _videos(browser, source)
    assert {v["camera"] for v in videos.values()} == {"Cam1", "Cam2"}
    assert _published(browser, videos["order-1001.mp4"]) == clip
    assert videos["order-1001.mp4"]["sha256"] == hashlib.sha256(clip).hexdigest()

    # Added, renamed, moved and deleted: only the new file is fetched.
    dbx.reset_counts()
    dbx.add_file("/Project/Area/Cam2/order-1003.mp4", clip)
    dbx.add_file("/Project/Area/Cam3/order-1000.mp4", clip)  # outside the selection
    dbx.move("/Project/Area/Cam1/order-1001.mp4", "/Project/Area/Cam1/order-1001-renamed.mp4")
    _sync(browser, source, lambda v: v.get("order-1003.mp4", {}).get("state") == "done")
    assert len(_downloads(dbx)) == 1
    dbx.reset_counts()
    dbx.add_file("/Project/Area/Cam2/order-1003.mp4", other)  # modified: a new rev
    dbx.delete("/Project/Area/Cam1/order-1001-renamed.mp4")
    _sync(browser, source, lambda v: v["order-1001.mp4"].get("removed_at") is not None)
    assert "order-1000.mp4" not in _videos(browser, source)
    wait_for(lambda: len(_downloads(dbx)) == 1)
    rows = browser.get("/api/videos", params={"source_id": source, "limit": 200}).json()
    revisions = [v for v in rows["items"] if v["name"] == "order-1003.mp4"]
    assert len(revisions) == 2

    # The cursor is reset: listed again, nothing fetched twice.
    dbx.reset_cursors()
    dbx.reset_counts()
    _sync(browser, source, lambda v: True)
    assert _downloads(dbx) == []

    # Near-real-time: a file that lands is done without anyone asking for a sync.
    wait_for(lambda: dbx.count("/2/files/list_folder/longpoll") > 0)
    dbx.add_file("/Project/Area/Cam1/order-1004.mp4", other)
    wait_for(
        lambda: _videos(browser, source).get("order-1004.mp4", {}).get("state") == "done",
        timeout=20,
    )
    assert _published(browser, _videos(browser, source)["order-1004.mp4"]) == other

    # The access token expires: refreshed once, without the app secret.
    dbx.expire_access_tokens()
    dbx.reset_counts()
    dbx.add_file("/Project/Area/Cam2/order-1005.mp4", clip)
    _sync(browser, source, lambda v: v.get("order-1005.mp4", {}).get("state") == "done")
    assert dbx.count("/oauth2/token") == 1

    # A cut stream resumes with a Range; a wrong hash is never published.
    dbx.reset_counts()
    dbx.cut_next_download(len(clip) // 3)
    dbx.add_file("/Project/Area/Cam1/order-1006.mp4", clip)
    _sync(browser, source, lambda v: v.get("order-1006.mp4", {}).get("state") == "done")
    assert [r.headers.get("range") is not None for r in _downloads(dbx)] == [False, True]
    dbx.corrupt_next_download()
    dbx.add_file("/Project/Area/Cam2/order-1007.mp4", other)
    # The watcher fetches it on its own; "Sync now" would retry it at once.
    wait_for(lambda: _videos(browser, source).get("order-1007.mp4", {}).get("error"))
    bad = _videos(browser, source)["order-1007.mp4"]
    assert bad["state"] != "done" and bad["local_path"] is None

    # The user unlinks VPACK: the refresh is refused, the connection asks for reauth.
    dbx.revoke_refresh_tokens()
    dbx.expire_access_tokens()
    assert browser.post(f"/api/sources/{source}/sync").status_code == 202
    wait_for(
        lambda: browser.get(f"/api/connections/{connection}").json()["status"] == "reauth_required"
    )
    actions = [e["action"] for e in browser.get("/api/audit").json()["items"]]
    assert "connection_reauth_required" in actions
