"""Every owned route x (owner, another user, anonymous, admin): nobody sees another's things."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Person, login
from vpack.api.app import create_app
from vpack.settings import Settings

OWNER, OTHER, ANON, ADMIN = "owner", "other", "anonymous", "admin"
# Status expected for each actor. Another user's ids answer 404, never 403, so
# ids reveal nothing.
READ = {OWNER: 200, OTHER: 404, ANON: 401, ADMIN: 200}
WRITE = {OWNER: 200, OTHER: 404, ANON: 401, ADMIN: 200}
ACCEPT = {OWNER: 202, OTHER: 404, ANON: 401, ADMIN: 202}
GONE = {OWNER: 204, OTHER: 404, ANON: 401, ADMIN: 204}


@pytest.fixture
def world(
    client: TestClient, admin: Person, make_user: Callable[[str], Person], footage: Path
) -> dict[str, object]:
    """The owner's connection, source and a downloaded video; plus who is who."""
    owner, other = make_user("owner"), make_user("other")
    clip = footage / "shop" / "Cam1" / "a.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"recording" * 100)
    os.utime(clip, (time.time() - 3600,) * 2)
    conn = client.post(
        "/api/connections",
        headers=owner.auth,
        json={"provider": "local", "name": "Shop disk", "config": {}},
    )
    assert conn.status_code == 201, conn.text
    source = client.post(
        "/api/sources",
        headers=owner.auth,
        json={
            "connection_id": conn.json()["id"],
            "name": "Shop",
            "selections": [str(footage / "shop")],
            "options": {"settle_seconds": 0},
        },
    )
    assert source.status_code == 201, source.text
    services = client.app.state.services  # type: ignore[attr-defined]
    report = client.portal.call(services.engine.sync, [source.json()["id"]])  # type: ignore[union-attr]
    assert report.total("downloaded") == 1
    (video,) = client.get("/api/videos", headers=owner.auth).json()["items"]
    return {
        "video": video["id"],
        "owner": owner,
        "other": other,
        "admin": admin,
        "connection": conn.json()["id"],
        "source": source.json()["id"],
    }


def _headers(world: dict[str, object], actor: str) -> dict[str, str]:
    if actor == ANON:
        return {}
    person = world[actor]
    assert isinstance(person, Person)
    return person.auth


ROUTES = [
    ("GET", "/api/connections/{connection}", None, READ),
    ("POST", "/api/connections/{connection}/check", None, WRITE),
    ("GET", "/api/connections/{connection}/browse", None, READ),
    ("GET", "/api/sources/{source}", None, READ),
    ("PATCH", "/api/sources/{source}", {"interval_s": 120}, WRITE),
    ("GET", "/api/sources/{source}/status", None, READ),
    ("POST", "/api/sources/{source}/sync", None, ACCEPT),
    ("GET", "/api/cloud/local/list_folders?connection_id={connection}", None, READ),
    ("GET", "/api/videos/{video}", None, READ),
    ("GET", "/api/videos/{video}/content", None, READ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
def test_owned_routes(
    client: TestClient,
    world: dict[str, object],
    method: str,
    path: str,
    body: dict[str, object] | None,
    expected: dict[str, int],
) -> None:
    url = path.format(**world)
    for actor in (ANON, OTHER, OWNER, ADMIN):
        response = client.request(method, url, json=body, headers=_headers(world, actor))
        assert response.status_code == expected[actor], (actor, response.text)


@pytest.mark.parametrize("path", ["/api/connections/{connection}", "/api/sources/{source}"])
def test_deleting_is_owner_or_admin_only(
    client: TestClient, world: dict[str, object], path: str
) -> None:
    url = path.format(**world)
    assert client.delete(url).status_code == 401
    assert client.delete(url, headers=_headers(world, OTHER)).status_code == 404
    assert client.get(url, headers=_headers(world, OWNER)).status_code == 200, "still there"
    assert client.delete(url, headers=_headers(world, OWNER)).status_code == 204
    assert client.get(url, headers=_headers(world, ADMIN)).status_code == 404


def test_lists_show_only_ones_own(client: TestClient, world: dict[str, object]) -> None:
    for path, key in (("/api/connections", None), ("/api/sources", None)):
        mine = client.get(path, headers=_headers(world, OWNER)).json()
        theirs = client.get(path, headers=_headers(world, OTHER)).json()
        everyone = client.get(path, headers=_headers(world, ADMIN)).json()
        assert len(mine) == 1 and theirs == [] and len(everyone) == 1, (path, key)
        assert client.get(path).status_code == 401
    for query in ("", "?source_id={source}"):
        url = "/api/videos" + query.format(**world)
        assert len(client.get(url, headers=_headers(world, OWNER)).json()["items"]) == 1
        assert client.get(url, headers=_headers(world, OTHER)).json()["items"] == []
        assert len(client.get(url, headers=_headers(world, ADMIN)).json()["items"]) == 1
    audit_other = client.get("/api/audit", headers=_headers(world, OTHER)).json()["items"]
    assert all(e["user_id"] == world["other"].id for e in audit_other)  # type: ignore[attr-defined]
    audit_all = client.get("/api/audit", headers=_headers(world, ADMIN)).json()["items"]
    assert {e["action"] for e in audit_all} >= {"connection_created", "source_created"}


def test_cannot_build_on_anothers_connection(
    client: TestClient, world: dict[str, object], footage: Path
) -> None:
    stolen = client.post(
        "/api/sources",
        headers=_headers(world, OTHER),
        json={
            "connection_id": world["connection"],
            "name": "mine now",
            "selections": [str(footage / "shop")],
        },
    )
    assert stolen.status_code == 404
    download = client.post(
        "/api/cloud/local/download",
        headers=_headers(world, OTHER),
        json={"connection_id": world["connection"], "items": [str(footage / "shop")]},
    )
    assert download.status_code == 404


def test_local_folders_outside_the_allowed_roots_are_refused(
    client: TestClient, world: dict[str, object], tmp_path: Path
) -> None:
    outside = tmp_path / "private"
    outside.mkdir()
    owner = _headers(world, OWNER)
    refused = client.post(
        "/api/sources",
        headers=owner,
        json={"connection_id": world["connection"], "name": "x", "selections": [str(outside)]},
    )
    assert refused.status_code == 400 and "outside" in refused.json()["detail"]
    browse = client.get(
        f"/api/connections/{world['connection']}/browse", params={"node": "/etc"}, headers=owner
    )
    assert browse.status_code == 400
    sneaky = client.post(
        "/api/connections",
        headers=owner,
        json={"provider": "local", "name": "root", "config": {"roots": ["/"]}},
    )
    assert sneaky.status_code == 201 and sneaky.json()["config"]["roots"] != ["/"]


def test_the_data_folder_cannot_be_synced_through_the_api(
    api_settings: Settings, tmp_path: Path
) -> None:
    """Allowed roots that hold VPACK's data folder (make run allows $HOME) must still
    refuse a source over it: VPACK would copy its own copies forever."""
    roomy = api_settings.model_copy(update={"local_roots": str(tmp_path)})
    with TestClient(create_app(roomy, run_worker=False)) as client:
        client.post("/api/setup", json={"email": "a@shop.vn", "password": "a-password"})
        auth = {"Authorization": f"Bearer {login(client, 'a@shop.vn', 'a-password')}"}
        client.cookies.clear()
        conn = client.post(
            "/api/connections",
            headers=auth,
            json={"provider": "local", "name": "home", "config": {}},
        ).json()
        (tmp_path / "shop").mkdir()
        for folder, message in (
            (tmp_path, "contains VPACK's data folder"),
            (roomy.data_dir / "videos", "inside VPACK's data folder"),
        ):
            refused = client.post(
                "/api/sources",
                headers=auth,
                json={"connection_id": conn["id"], "name": "x", "selections": [str(folder)]},
            )
            assert refused.status_code == 400 and message in refused.json()["detail"]
        ok = client.post(
            "/api/sources",
            headers=auth,
            json={
                "connection_id": conn["id"],
                "name": "shop",
                "selections": [str(tmp_path / "shop")],
            },
        )
        assert ok.status_code == 201
        moved = client.patch(
            f"/api/sources/{ok.json()['id']}", headers=auth, json={"selections": [str(tmp_path)]}
        )
        assert moved.status_code == 400 and "data folder" in moved.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/connections/{id}",
        "/api/connections/{id}/browse",
        "/api/sources/{id}",
        "/api/sources/{id}/status",
        "/api/videos/{id}",
        "/api/videos/{id}/content",
    ],
)
def test_ids_out_of_range_are_a_422(
    client: TestClient, world: dict[str, object], path: str
) -> None:
    """Before any lookup: an id no INTEGER column holds never reaches the driver."""
    for bad in (0, 2**31):
        response = client.get(path.format(id=bad), headers=_headers(world, OWNER))
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"][0] == "path"


def test_malformed_requests_are_a_422_whoever_owns_the_id(
    client: TestClient, world: dict[str, object]
) -> None:
    """A request that is malformed answers 422 before anyone asks whose the id is: the
    same for the owner, another user and an id that does not exist."""
    requests = [
        ("PATCH", "/api/sources/{}", {"json": {"interval_s": "often"}}, "body"),
        ("DELETE", "/api/sources/{}?purge=perhaps", {}, "query"),
        ("GET", "/api/connections/{}/browse", {"params": {"node": "n" * 5000}}, "query"),
    ]
    for method, path, extra, where in requests:
        target = world["source"] if "sources" in path else world["connection"]
        for actor, target_id in ((OWNER, target), (OTHER, target), (OWNER, 999_999)):
            response = client.request(
                method, path.format(target_id), headers=_headers(world, actor), **extra
            )
            assert response.status_code == 422, (method, path, actor, response.text)
            assert response.json()["detail"][0]["loc"][0] == where
