"""A source's retention through the API: set, cleared with null, bounds refused."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import Person, local_source


def test_keep_days_is_set_cleared_and_bounded(
    client: TestClient, admin: Person, footage: Path
) -> None:
    (footage / "cams").mkdir()
    source = local_source(client, admin.auth, footage / "cams", keep_days=30)
    assert source["keep_days"] == 30
    path = f"/api/sources/{source['id']}"
    renamed = client.patch(path, headers=admin.auth, json={"name": "Kho"}).json()
    assert renamed["keep_days"] == 30, "a change that does not name it keeps it"
    cleared = client.patch(path, headers=admin.auth, json={"keep_days": None}).json()
    assert cleared["keep_days"] is None, "null: kept for ever again"
    for bad in (-1, 100_000, "soon"):
        refused = client.patch(path, headers=admin.auth, json={"keep_days": bad})
        assert refused.status_code == 422, bad
    assert client.get(path, headers=admin.auth).json()["keep_days"] is None
