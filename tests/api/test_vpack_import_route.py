"""POST /api/admin/import/vpack: administrators only, the database inside the allowed roots."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import Person
from tests.vpack_db import VpackDb


def _history(footage: Path) -> VpackDb:
    shop = footage / "shop"
    clip = shop / "Cam1" / "a.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"packing video")
    os.utime(clip, (time.time() - 3600,) * 2)
    vpack = VpackDb(footage / "events.db")
    source = vpack.add_local_source(shop)
    rows = [
        {"source_id": source, "camera": "Cam1", "name": "a.mp4", "path": str(clip), "size": 13},
        {
            "source_id": source,
            "camera": "Cam1",
            "name": "b.mp4",
            "path": str(shop / "b"),
            "size": 1,
        },
    ]
    vpack.add_downloads(rows)
    return vpack


def test_an_admin_imports_after_a_dry_run(client: TestClient, admin: Person, footage: Path) -> None:
    vpack = _history(footage)
    url = "/api/admin/import/vpack"

    dry = client.post(url, json={"path": str(vpack.path), "dry_run": True}, headers=admin.auth)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and dry.json()["videos"] == {"imported": 1, "missing": 1}
    assert client.get("/api/sources", headers=admin.auth).json() == []

    done = client.post(url, json={"path": str(vpack.path)}, headers=admin.auth)
    assert done.status_code == 200, done.text
    (source,) = [s for s in done.json()["sources"] if s["outcome"] == "imported"]
    assert source["outcome"] == "imported" and source["kind"] == "local"
    listed = client.get("/api/sources", headers=admin.auth).json()
    assert [s["id"] for s in listed] == [source["source_id"]]
    again = client.post(url, json={"path": str(vpack.path)}, headers=admin.auth)
    assert again.json()["videos"] == {"already imported": 1, "missing": 1}
    events = client.get("/api/audit?action=vpack_imported", headers=admin.auth).json()
    assert len(events["items"]) == 2  # the dry run left nothing, not even its audit


def test_only_admins_and_only_inside_the_roots(
    client: TestClient,
    admin: Person,
    make_user: Callable[[str], Person],
    footage: Path,
    tmp_path: Path,
) -> None:
    vpack = _history(footage)
    url = "/api/admin/import/vpack"
    user = make_user("lan")
    assert client.post(url, json={"path": str(vpack.path)}, headers=user.auth).status_code == 403
    outside = VpackDb(tmp_path / "events.db").path
    refused = client.post(url, json={"path": str(outside)}, headers=admin.auth)
    assert refused.status_code == 403 and "VPACK_LOCAL_ROOTS" in refused.text
    relative = client.post(url, json={"path": "events.db"}, headers=admin.auth)
    assert relative.status_code == 400
    (footage / "bad.db").write_text("not a database")
    bad = client.post(url, json={"path": str(footage / "bad.db")}, headers=admin.auth)
    assert bad.status_code == 422 and "nothing was changed" in bad.text
    assert client.get("/api/sources", headers=admin.auth).json() == []
