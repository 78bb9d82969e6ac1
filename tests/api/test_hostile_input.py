"""Hostile input, as a probe of the running service found it: every request is a clear
4xx saying what is wrong, nothing is stored that breaks a later list, and nothing the
user sent puts a traceback in the log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vpack.api.app import create_app
from vpack.security.auth import issue_session
from vpack.settings import Settings

from .conftest import ADMIN, Person, local_source, login

LONG = "x" * 300  # over the 255 bytes a file name may have
NUL, SURROGATE = "\x00", "\ud800"


@pytest.fixture
def raw(api_settings: Settings) -> Iterator[TestClient]:
    """A client that sees an unforeseen error as a person would: a 500, not a raise."""
    app = create_app(api_settings, run_worker=False)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def owner(raw: TestClient) -> Person:
    made = raw.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert made.status_code == 201, made.text
    token = login(raw, *ADMIN)
    raw.cookies.clear()
    return Person(ADMIN[0], ADMIN[1], made.json()["id"], token)


def send(client: TestClient, person: Person, method: str, url: str, **kw: Any) -> Any:
    """`json=` goes as JSON escapes: a lone surrogate cannot be UTF-8 on the wire."""
    headers = dict(person.auth)
    if "json" in kw:
        kw["content"] = json.dumps(kw.pop("json"))
        headers["content-type"] = "application/json"
    return client.request(method, url, headers=headers, **kw)


def hostile(root: str, conn: int, source: int) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, url, request, what the answer must say) for each input the probe tried."""
    browse = f"/api/connections/{conn}/browse"
    s3 = {"bucket": "b", "access_key_id": "AKIA", "secret_access_key": "x"}

    def new_source(**fields: Any) -> dict[str, Any]:
        return {"json": {"connection_id": conn, "name": "n", "selections": [root], **fields}}

    return [
        ("GET", browse, {"params": {"node": f"{root}/{NUL}/../outside"}}, "NUL"),
        ("GET", browse, {"params": {"node": f"{root}/{LONG}"}}, "at most 255"),
        ("GET", browse, {"params": {"page": "abc"}}, "not a page token"),
        ("GET", browse, {"params": {"page": "1e3"}}, "not a page token"),
        ("GET", browse, {"params": {"page": NUL}}, "NUL"),
        ("GET", browse, {"params": {"page": "-1"}}, "not a page token"),
        ("GET", f"{browse}?node=%ff", {}, "UTF-8"),
        (
            "GET",
            "/api/cloud/local/list_folders",
            {"params": {"connection_id": conn, "page": "abc"}},
            "not a page token",
        ),
        ("POST", "/api/sources", new_source(selections=[f"{root}/{NUL}"]), "NUL"),
        ("POST", "/api/sources", new_source(selections=[f"{root}/{LONG}"]), "at most 255"),
        ("POST", "/api/sources", new_source(selections=[root + SURROGATE]), "surrogate"),
        ("POST", "/api/sources", new_source(name=SURROGATE), "surrogate"),
        ("POST", "/api/sources", new_source(name="bell\x07"), "control character"),
        ("POST", "/api/sources", new_source(filters={"since": "0001-01-01"}), "1970-01-01"),
        ("POST", "/api/sources", new_source(interval_s=1e308), "interval_s"),
        ("PATCH", f"/api/sources/{source}", {"json": {"selections": [f"{root}/{LONG}"]}}, "255"),
        ("PATCH", f"/api/sources/{source}", {"json": {"name": "\udfff"}}, "surrogate"),
        ("PATCH", f"/api/sources/{source}", {"json": {"interval_s": 1e308}}, "interval_s"),
        ("PATCH", f"/api/sources/{source}", {"json": {"filters": {"since": "0001-01-01"}}}, "1970"),
        (
            "POST",
            "/api/connections",
            {"json": {"provider": "local", "name": f"a{NUL}b", "config": {}}},
            "NUL",
        ),
        (
            "POST",
            "/api/connections",
            {"json": {"provider": "local", "name": "\udfff", "config": {}}},
            "surrogate",
        ),
        (
            "POST",
            "/api/connections",
            {
                "json": {
                    "provider": "s3",
                    "name": "s3",
                    "config": {**s3, "endpoint_url": "127.0.0.1:1"},
                }
            },
            "needs its scheme",
        ),
        (
            "POST",
            "/api/connections",
            {
                "json": {
                    "provider": "s3",
                    "name": "s3",
                    "config": {**s3, "endpoint_url": "http://%31%32%37.0.0.1:18412"},
                }
            },
            "plain host",
        ),
        ("GET", "/api/videos", {"params": {"recorded_from": "9999-12-31"}}, "between"),
        ("GET", "/api/videos", {"params": {"recorded_to": "0001-01-01T00:00:00"}}, "between"),
        (
            "POST",
            "/api/auth/login",
            {"json": {"email": f"a{SURROGATE}@x.vn", "password": "p"}},
            "surrogate",
        ),
    ]


def test_hostile_input_is_a_clear_4xx_and_every_list_still_answers(
    raw: TestClient, owner: Person, footage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = local_source(raw, owner.auth, footage)
    answered = []
    with caplog.at_level(logging.INFO):
        for method, url, request, says in hostile(
            str(footage), source["connection_id"], source["id"]
        ):
            response = send(raw, owner, method, url, **request)
            answered.append((method, url, response.status_code))
            assert 400 <= response.status_code < 500, (method, url, request, response.text)
            assert says in response.text, (method, url, response.text)
        for url in ("/api/sources", "/api/connections", "/api/videos", "/api/audit"):
            assert send(raw, owner, "GET", url).status_code == 200, url
    assert [r for r in caplog.records if r.exc_info] == [], "no traceback from user input"
    # Nothing was stored: the one source and connection made above are all there is.
    assert [s["id"] for s in send(raw, owner, "GET", "/api/sources").json()] == [source["id"]]
    connections = send(raw, owner, "GET", "/api/connections").json()
    assert [c["id"] for c in connections] == [source["connection_id"]]


def test_good_neighbours_of_the_hostile_values_still_pass(
    raw: TestClient, owner: Person, footage: Path
) -> None:
    """The edge refuses only what no one means: tabs, new lines, accents and emoji pass."""
    (footage / "Kho hàng 🎥").mkdir()
    made = send(
        raw,
        owner,
        "POST",
        "/api/connections",
        json={"provider": "local", "name": "Cửa hàng\tA\nB", "config": {}},
    )
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "Cửa hàng\tA\nB"
    page = send(
        raw,
        owner,
        "GET",
        f"/api/connections/{made.json()['id']}/browse",
        params={"node": str(footage)},
    )
    assert [n["name"] for n in page.json()["nodes"]] == ["Kho hàng 🎥"]
    listed = send(raw, owner, "GET", "/api/videos", params={"recorded_from": "2026-01-01T07:00:00"})
    assert listed.status_code == 200  # a time without a zone is read as UTC


def test_a_session_for_an_id_no_row_can_have_is_not_signed_in(
    raw: TestClient, owner: Person, api_settings: Settings
) -> None:
    for user_id in (2**63, 2**31, 0, -1):
        token = issue_session(api_settings, user_id).token
        response = raw.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, (user_id, response.text)


def test_an_unforeseen_error_is_a_500_with_a_request_id_and_no_internals(
    raw: TestClient,
    owner: Person,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import vpack.api.routes.videos as videos

    def broken(cursor: str | None) -> int | None:
        raise RuntimeError("secret internals /srv/vpack/db password=hunter2")

    monkeypatch.setattr(videos, "cursor_id", broken)
    with caplog.at_level(logging.ERROR):
        response = send(raw, owner, "GET", "/api/videos")
    assert response.status_code == 500
    body = response.json()
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert body["request_id"] in body["detail"]
    assert response.headers["X-Request-ID"] == body["request_id"]
    logged = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "the traceback is in the log"
