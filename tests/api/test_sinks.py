"""Sinks through the API with the real worker: VPACK's folder and queue, a webhook."""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.api.conftest import ADMIN, local_source, login, wait_for
from tests.emulators.serving import BackgroundServer
from vpack.api.app import create_app
from vpack.db.models import Sink
from vpack.db.session import make_sync_engine
from vpack.handoff.kinds import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from vpack.settings import Settings

SECRET = "a-signing-secret-of-ours"

# VPACK's file_list as backend/database.py creates it (Binhnguyen041280/VPACK), with
# the columns later releases add by ALTER TABLE.
VPACK_FILE_LIST = """
CREATE TABLE file_list (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    program_type TEXT NOT NULL,
    days INTEGER,
    custom_path TEXT,
    file_path TEXT NOT NULL,
    ctime DATETIME,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    is_processed INTEGER DEFAULT 0,
    priority INTEGER DEFAULT 0,
    status TEXT DEFAULT 'chưa bắt đầu',
    log_file_path TEXT,
    camera_name TEXT,
    health_check_failed INTEGER DEFAULT 0,
    health_check_message TEXT
)
"""


@pytest.fixture
def live(api_settings: Settings) -> Iterator[TestClient]:
    fast = api_settings.model_copy(update={"scheduler_tick_seconds": 0.1})
    with TestClient(create_app(fast, run_worker=True)) as test_client:
        yield test_client


@pytest.fixture
def auth(live: TestClient) -> dict[str, str]:
    live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    headers = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
    live.cookies.clear()
    return headers


def _clip(path: Path, data: bytes | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if data is not None else os.urandom(3000))
    os.utime(path, (time.time() - 3600,) * 2)
    return path


def _vpack_db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute(VPACK_FILE_LIST)
    return path


def _queue(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT program_type, file_path, camera_name, status, is_processed, priority, ctime"
            " FROM file_list ORDER BY id"
        ).fetchall()


def _sink(live: TestClient, auth: dict[str, str], source_id: int, **body: Any) -> dict[str, Any]:
    made = live.post(f"/api/sources/{source_id}/sinks", headers=auth, json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


def test_vpack_folder_and_queue_get_each_video_once(
    live: TestClient, auth: dict[str, str], footage: Path, api_settings: Settings
) -> None:
    _clip(footage / "shop" / "Cam1" / "order-1.mp4")
    _clip(footage / "shop" / "Cam2" / "order-2.mp4")
    vpack_input = footage / "vpack-input"
    vpack_input.mkdir()
    database = _vpack_db(footage / "events.db")
    source = local_source(live, auth, footage / "shop")
    folder = _sink(
        live,
        auth,
        source["id"],
        kind="vpack_folder",
        name="VPACK",
        config={"path": str(vpack_input)},
    )
    queue = _sink(
        live,
        auth,
        source["id"],
        kind="vpack_queue",
        name="queue",
        config={"database": str(database)},
    )
    sinks = f"/api/sources/{source['id']}/sinks"
    wait_for(
        lambda: all(s["delivered"] == 2 for s in live.get(sinks, headers=auth).json()),
        explain=lambda: live.get(sinks, headers=auth).json(),
    )
    placed = sorted(p.relative_to(vpack_input).as_posix() for p in vpack_input.rglob("*.mp4"))
    assert placed == ["Cam1/order-1.mp4", "Cam2/order-2.mp4"]
    ours = {v["name"]: v for v in live.get("/api/videos", headers=auth).json()["items"]}
    linked = vpack_input / "Cam1" / "order-1.mp4"
    assert linked.read_bytes() == (footage / "shop" / "Cam1" / "order-1.mp4").read_bytes()
    rows = _queue(database)
    assert sorted((r[0], r[2], r[3], r[4], r[5]) for r in rows) == [
        ("default", "Cam1", "pending", 0, 0),
        ("default", "Cam2", "pending", 0, 0),
    ], "as VPACK's own scanner queues a file"
    assert all(Path(r[1]).is_absolute() and Path(r[1]).is_file() for r in rows)
    assert {Path(r[1]).name for r in rows} == set(ours)

    # A crash between a hand-off and its record repeats it: both kinds find their work
    # done. (The cursor is wound back as a crash would leave it.)
    _rewind(api_settings, [folder["id"], queue["id"]])
    wait_for(lambda: all(s["delivered"] == 4 for s in live.get(sinks, headers=auth).json()))
    assert len(_queue(database)) == 2, "no second row for the same file"
    assert len(list(vpack_input.rglob("*.mp4"))) == 2, "no second copy"
    log = live.get(f"/api/sinks/{queue['id']}/deliveries", headers=auth).json()["items"]
    assert [e["ok"] for e in log] == [True] * 4 and "already queued" in log[0]["detail"]


def _rewind(settings: Settings, sink_ids: list[int]) -> None:
    """Wind the sinks' cursors back to the start, as a crash after the hand-offs and
    before their records would leave them."""
    engine = make_sync_engine(settings.sqlalchemy_url)
    with engine.begin() as conn:
        conn.execute(update(Sink).where(Sink.id.in_(sink_ids)).values(after_seq=0))
    engine.dispose()


class _Receiver:
    """A webhook receiver that checks signatures, and can be down for a while."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.down = threading.Event()
        self.refused = 0
        self.server = BackgroundServer(
            Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]), "webhook receiver"
        )

    async def hook(self, request: Request) -> Response:
        if self.down.is_set():
            self.refused += 1
            return Response(status_code=503)
        body = await request.body()
        expected = sign(SECRET, request.headers[TIMESTAMP_HEADER], body)
        if not hmac.compare_digest(expected, request.headers[SIGNATURE_HEADER]):
            return Response(status_code=401)
        event = json.loads(body)
        assert event["id"] == request.headers[EVENT_HEADER]
        self.events.append(event)
        return JSONResponse({"ok": True})


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    hook = _Receiver()
    hook.server.start()
    yield hook
    hook.server.stop()


def test_a_webhook_down_for_a_while_gets_every_event_once_in_order(
    live: TestClient, auth: dict[str, str], footage: Path, receiver: _Receiver
) -> None:
    receiver.down.set()
    for i in range(5):
        _clip(footage / "shop" / f"order-{i}.mp4")
    source = local_source(live, auth, footage / "shop")
    sink = _sink(
        live,
        auth,
        source["id"],
        kind="webhook",
        name="hook",
        config={"url": f"{receiver.server.base_url}/hook", "secret": SECRET},
    )
    assert "secret" not in sink["config"], "a secret is never shown"
    path = f"/api/sources/{source['id']}/sinks"
    wait_for(lambda: live.get(path, headers=auth).json()[0]["status"] == "failing")
    wait_for(lambda: receiver.refused >= 2)
    receiver.down.clear()
    wait_for(lambda: len(receiver.events) >= 5, explain=lambda: live.get(path, headers=auth).json())
    time.sleep(0.5)  # anything sent twice would have arrived by now
    seqs = [e["seq"] for e in receiver.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == 5, "once each, in order"
    assert {e["video"]["name"] for e in receiver.events} == {f"order-{i}.mp4" for i in range(5)}
    (state,) = live.get(path, headers=auth).json()
    assert (state["status"], state["failures"], state["delivered"]) == ("ok", 0, 5)


def test_a_sink_that_keeps_failing_stops_and_starts_again_on_request(
    live: TestClient, auth: dict[str, str], footage: Path, receiver: _Receiver
) -> None:
    _clip(footage / "shop" / "a.mp4")
    source = local_source(live, auth, footage / "shop")
    receiver.down.set()
    sink = _sink(
        live,
        auth,
        source["id"],
        kind="webhook",
        name="hook",
        config={"url": f"{receiver.server.base_url}/hook", "secret": SECRET},
    )
    one = f"/api/sources/{source['id']}/sinks"
    stopped = wait_for(
        lambda: next(
            (s for s in live.get(one, headers=auth).json() if s["status"] == "disabled"), None
        )
    )
    assert "stopped after 12 failures in a row" in stopped["status_detail"]
    assert "503" in stopped["status_detail"]
    refused = receiver.refused
    time.sleep(0.5)
    assert receiver.refused == refused, "a stopped sink sends nothing"
    receiver.down.clear()
    live.patch(f"/api/sinks/{sink['id']}", headers=auth, json={"enabled": True})
    wait_for(lambda: len(receiver.events) == 1)


def test_bad_sinks_are_refused_clearly_and_others_cannot_see_them(
    live: TestClient, auth: dict[str, str], footage: Path, api_settings: Settings
) -> None:
    (footage / "shop").mkdir()
    source = local_source(live, auth, footage / "shop")
    sinks = f"/api/sources/{source['id']}/sinks"
    cases = [
        ({"kind": "ftp", "name": "x", "config": {}}, "unknown sink kind"),
        ({"kind": "vpack_folder", "name": "x", "config": {"path": "/etc"}}, "outside the folders"),
        ({"kind": "vpack_folder", "name": "x", "config": {"path": "rel"}}, "absolute path"),
        (
            {"kind": "vpack_queue", "name": "x", "config": {"database": str(footage / "no.db")}},
            "no VPACK database",
        ),
        ({"kind": "webhook", "name": "x", "config": {"url": "ftp://h", "secret": SECRET}}, "http"),
        (
            {"kind": "webhook", "name": "x", "config": {"url": "http://h/", "secret": "short"}},
            "secret",
        ),
        (
            {
                "kind": "webhook",
                "name": "x",
                "config": {"url": "http://169.254.169.254/", "secret": SECRET},
            },
            "does not let users connect to",
        ),
    ]
    for body, words in cases:
        answer = live.post(sinks, headers=auth, json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert words in answer.json()["detail"], (body, answer.json())
    not_vpack = footage / "other.db"
    sqlite3.connect(not_vpack).close()
    refused = live.post(
        sinks,
        headers=auth,
        json={"kind": "vpack_queue", "name": "x", "config": {"database": str(not_vpack)}},
    )
    assert refused.status_code == 400 and "not a VPACK database" in refused.json()["detail"]
    assert live.get(sinks, headers=auth).json() == [], "nothing stored"

    made = _sink(
        live,
        auth,
        source["id"],
        kind="vpack_folder",
        name="VPACK",
        config={"path": str(footage)},
        from_start=False,
    )
    live.post("/api/users", headers=auth, json={"email": "b@shop.vn", "password": "b-password-1"})
    other = {"Authorization": f"Bearer {login(live, 'b@shop.vn', 'b-password-1')}"}
    live.cookies.clear()
    assert live.get(sinks, headers=other).status_code == 404
    assert (
        live.patch(f"/api/sinks/{made['id']}", headers=other, json={"name": "y"}).status_code == 404
    )
    assert live.get(f"/api/sinks/{made['id']}/deliveries", headers=other).status_code == 404
    assert live.delete(f"/api/sinks/{made['id']}", headers=other).status_code == 404
    kinds = {k["name"] for k in live.get("/api/sinks/kinds", headers=auth).json()}
    assert kinds == {"vpack_folder", "vpack_queue", "webhook", "command"}
    assert live.delete(f"/api/sinks/{made['id']}", headers=auth).status_code == 204
    actions = {e["action"] for e in live.get("/api/audit", headers=auth).json()["items"]}
    assert {"sink_created", "sink_removed"} <= actions


def _with_status(sinks: list[dict[str, Any]], status: str) -> dict[str, Any] | None:
    return next((s for s in sinks if s["status"] == status), None)


def test_a_command_the_operator_allows_runs_once_per_video_with_its_facts(
    api_settings: Settings, footage: Path, tmp_path: Path
) -> None:
    log = tmp_path / "ran.txt"
    script = tmp_path / "hand-on.sh"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = "Cam2" ]; then echo "no room for $VPACK_VIDEO_NAME" >&2; exit 3; fi\n'
        f'echo "$1|$2|$VPACK_EVENT_ID" >> {log}\n'
    )
    script.chmod(0o755)
    settings = api_settings.model_copy(
        update={"scheduler_tick_seconds": 0.1, "sink_commands": str(script)}
    )
    _clip(footage / "shop" / "Cam1" / "a.mp4")
    with TestClient(create_app(settings, run_worker=True)) as live:
        live.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        auth = {"Authorization": f"Bearer {login(live, *ADMIN)}"}
        live.cookies.clear()
        source = local_source(live, auth, footage / "shop")
        sinks = f"/api/sources/{source['id']}/sinks"
        for config, words in [
            ({"program": "/bin/sh"}, "not a program this server allows"),
            ({"program": str(script), "args": ["{password}"]}, "password"),
        ]:
            refused = live.post(
                sinks, headers=auth, json={"kind": "command", "name": "x", "config": config}
            )
            assert refused.status_code == 400 and words in refused.json()["detail"], refused.text
        sink = _sink(
            live,
            auth,
            source["id"],
            kind="command",
            name="script",
            config={"program": str(script), "args": ["{path}", "{camera}"]},
        )
        wait_for(lambda: live.get(sinks, headers=auth).json()[0]["delivered"] == 1)
        (line,) = log.read_text().splitlines()
        path, camera, event = line.split("|")
        assert Path(path).is_file() and camera == "Cam1" and event.startswith("video-")

        _clip(footage / "shop" / "Cam2" / "b.mp4")
        live.post(f"/api/sources/{source['id']}/sync", headers=auth)
        failing = wait_for(lambda: _with_status(live.get(sinks, headers=auth).json(), "failing"))
        assert "exited 3: no room for b.mp4" in failing["status_detail"]
        assert len(log.read_text().splitlines()) == 1
        assert live.delete(f"/api/sinks/{sink['id']}", headers=auth).status_code == 204
