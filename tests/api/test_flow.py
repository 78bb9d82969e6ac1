"""A user's whole path through the API with the real worker: connect, pick, sync, play."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, local_source, login, wait_for
from tests.media import make_video
from vpack.api.app import create_app
from vpack.settings import Settings


@pytest.fixture
def live(api_settings: Settings) -> Iterator[TestClient]:
    fast = api_settings.model_copy(update={"scheduler_tick_seconds": 0.1})
    with TestClient(create_app(fast, run_worker=True)) as test_client:
        yield test_client


def test_connect_browse_sync_and_play(live: TestClient, footage: Path) -> None:
    clip = make_video(footage / "warehouse" / "Cam1" / "order-001.mp4", seconds=2)
    os.utime(clip, (time.time() - 3600,) * 2)
    (footage / "warehouse" / "Cam2").mkdir()
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    token = login(live, *ADMIN)
    live.cookies.clear()
    auth = {"Authorization": f"Bearer {token}"}

    providers = {p["name"]: p for p in live.get("/api/providers", headers=auth).json()}
    assert providers["local"]["auth"] == "none"
    assert "settle_seconds" in providers["local"]["source_options_schema"]["properties"]

    conn = live.post(
        "/api/connections",
        headers=auth,
        json={"provider": "local", "name": "Warehouse disk", "config": {}},
    ).json()
    top = live.get(f"/api/connections/{conn['id']}/browse", headers=auth).json()
    assert [n["id"] for n in top["nodes"]] == [str(footage)]
    tree = live.get(
        f"/api/connections/{conn['id']}/browse", params={"node": str(footage)}, headers=auth
    ).json()
    assert [n["name"] for n in tree["nodes"]] == ["warehouse"]
    alias = live.get(
        "/api/cloud/local/list_folders",
        headers=auth,
        params={"connection_id": conn["id"], "parent_id": str(footage)},
    ).json()
    assert alias == tree

    source = live.post(
        "/api/sources",
        headers=auth,
        json={
            "connection_id": conn["id"],
            "name": "Warehouse",
            "interval_s": 600,
            "selections": [str(footage / "warehouse")],
            "options": {"settle_seconds": 0},
            "cameras": {"Cam1": "Packing desk 1"},
        },
    ).json()
    assert live.post(f"/api/sources/{source['id']}/sync", headers=auth).status_code == 202

    status = wait_for(
        lambda: (
            (s := live.get(f"/api/sources/{source['id']}/status", headers=auth).json())["counts"][
                "done"
            ]
            == 1
            and s
        )
    )
    assert status["bytes_done"] == status["bytes_total"] == clip.stat().st_size
    assert status["connection_status"] == "ok" and status["current"] == []

    page = live.get("/api/videos", headers=auth, params={"source_id": source["id"]}).json()
    (video,) = page["items"]
    assert video["camera"] == "Packing desk 1" and video["duration_s"] == 2.0
    assert video["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert page["next_cursor"] is None

    full = live.get(f"/api/videos/{video['id']}/content", headers=auth)
    assert full.status_code == 200 and full.content == clip.read_bytes()
    assert full.headers["content-type"] == "video/mp4"
    part = live.get(
        f"/api/videos/{video['id']}/content", headers={**auth, "Range": "bytes=100-199"}
    )
    assert part.status_code == 206 and part.content == clip.read_bytes()[100:200]

    renamed = live.patch(
        f"/api/sources/{source['id']}", headers=auth, json={"name": "Kho 1", "interval_s": 900}
    ).json()
    assert (renamed["name"], renamed["interval_s"]) == ("Kho 1", 900)
    assert renamed["selection_names"] == {str(footage / "warehouse"): "warehouse"}
    (footage / "returns").mkdir()
    moved = live.patch(
        f"/api/sources/{source['id']}",
        headers=auth,
        json={"selections": [str(footage / "returns")], "options": {"settle_seconds": 5}},
    ).json()
    assert moved["selection_names"] == {str(footage / "returns"): "returns"}
    assert moved["options"]["settle_seconds"] == 5
    filtered = live.patch(
        f"/api/sources/{source['id']}",
        headers=auth,
        json={"filters": {"include": ["order-*"], "since": "2026-11-01"}},
    )
    assert filtered.json()["filters"] == {"include": ["order-*"], "since": "2026-11-01"}
    unknown = live.patch(
        f"/api/sources/{source['id']}", headers=auth, json={"filters": {"colour": "red"}}
    )
    assert unknown.status_code == 422
    bad = live.patch(f"/api/sources/{source['id']}", headers=auth, json={"interval_s": 1})
    assert bad.status_code == 422

    kept = live.delete(f"/api/sources/{source['id']}", headers=auth)
    assert kept.status_code == 204
    actions = {e["action"] for e in live.get("/api/audit", headers=auth).json()["items"]}
    assert {"connection_created", "source_created", "source_changed", "source_removed"} <= actions


def test_video_paging_and_filters(live: TestClient, footage: Path) -> None:
    for i in range(5):
        path = footage / "s" / ("CamA" if i % 2 else "CamB") / f"{i}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (i + 1))
        os.utime(path, (time.time() - 3600,) * 2)
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.cookies.clear()
    source = local_source(live, auth, footage / "s")
    live.post(f"/api/sources/{source['id']}/sync", headers=auth)
    wait_for(
        lambda: (
            live.get(f"/api/sources/{source['id']}/status", headers=auth).json()["counts"]["done"]
            == 5
        )
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = live.get("/api/videos", headers=auth, params=params).json()
        seen += [v["id"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(set(seen)) == 5
    cam_a = live.get("/api/videos", headers=auth, params={"camera": "CamA"}).json()["items"]
    assert {v["name"] for v in cam_a} == {"1.mp4", "3.mp4"}
    assert live.get("/api/videos", headers=auth, params={"state": "failed"}).json()["items"] == []
    assert live.get("/api/videos", headers=auth, params={"state": "bogus"}).status_code == 422
    assert live.get("/api/videos/9999", headers=auth).status_code == 404


def test_a_source_whose_folder_went_needs_attention_until_it_is_back(
    live: TestClient, footage: Path
) -> None:
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    auth = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.cookies.clear()
    folder = footage / "cam"
    folder.mkdir()
    source = local_source(live, auth, folder)
    folder.rmdir()  # the share was unmounted
    status = f"/api/sources/{source['id']}/status"
    wait_for(lambda: live.get(status, headers=auth).json()["state"] == "attention")
    (listed,) = live.get("/api/sources", headers=auth).json()
    assert listed["status"] == "attention" and "does not exist" in listed["last_error"]
    booked = datetime.fromisoformat(listed["next_scan_at"])
    assert booked - datetime.fromisoformat(listed["last_scan_at"]) >= timedelta(minutes=59)

    clip = folder / "order-9.mp4"
    folder.mkdir()
    clip.write_bytes(b"video")
    os.utime(clip, (time.time() - 3600,) * 2)
    changed = live.patch(
        f"/api/sources/{source['id']}", headers=auth, json={"options": {"settle_seconds": 1}}
    )
    assert changed.status_code == 200, changed.text
    # Changed settings are tried at once, not after the hour's wait.
    wait_for(lambda: live.get(status, headers=auth).json()["counts"].get("done") == 1)
    assert live.get(status, headers=auth).json()["state"] in ("idle", "syncing", "scanning")


def test_live_events_show_only_ones_own_progress(live: TestClient, footage: Path) -> None:
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    admin = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.post("/api/users", headers=admin, json={"email": "b@shop.vn", "password": "b-password"})
    bystander = {"Authorization": f"Bearer {login(live, 'b@shop.vn', 'b-password')}"}
    live.cookies.clear()
    for name in ("a.mp4", "b.mp4"):
        clip = footage / "s" / "Cam" / name
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(os.urandom(200_000))
        os.utime(clip, (time.time() - 3600,) * 2)
    source = local_source(live, admin, footage / "s")
    progress = live.app.state.progress  # type: ignore[attr-defined]
    mine, theirs = progress.listen(), progress.listen()
    with (
        live.stream("GET", "/api/events", headers=admin) as stream,
        live.stream("GET", "/api/events", headers=bystander) as other,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert other.status_code == 200
        live.post(f"/api/sources/{source['id']}/sync", headers=admin)
        finished, lines = 0, stream.iter_lines()
        while finished < 2:
            line = next(lines)
            if line.startswith("data:") and '"finished"' in line:
                assert f'"source_id": {source["id"]}' in line and '"ok": true' in line
                finished += 1
    assert mine.qsize() > 0 and theirs.qsize() > 0  # the hub saw the events...
    progress.unlisten(mine)
    progress.unlisten(theirs)
    assert live.get("/api/events").status_code == 401


def test_bystander_stream_gets_nothing_of_others(live: TestClient, footage: Path) -> None:
    """The filter itself: an event for a source the user cannot see is never sent."""
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    admin = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.post("/api/users", headers=admin, json={"email": "b@shop.vn", "password": "b-password"})
    bystander = {"Authorization": f"Bearer {login(live, 'b@shop.vn', 'b-password')}"}
    live.cookies.clear()
    (footage / "s").mkdir()
    ids = []
    for who in (admin, bystander):
        conn = live.post(
            "/api/connections", headers=who, json={"provider": "local", "name": "d", "config": {}}
        ).json()
        ids.append(
            live.post(
                "/api/sources",
                headers=who,
                json={"connection_id": conn["id"], "name": "s", "selections": [str(footage / "s")]},
            ).json()["id"]
        )
    admins_source, own_source = ids
    progress = live.app.state.progress  # type: ignore[attr-defined]
    portal = live.portal  # type: ignore[attr-defined]
    with live.stream("GET", "/api/events", headers=bystander) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        # Published on the app's own event loop, as the engine does.
        portal.call(progress.scanned, admins_source, 5)
        portal.call(
            progress.publish, {"type": "scanned", "source_id": own_source, "new": 0, "marker": 1}
        )
        received = []
        while not any('"marker": 1' in line for line in received):
            received.append(next(lines))
            assert len(received) < 20, received
    assert not any(f'"source_id": {admins_source},' in line for line in received)
