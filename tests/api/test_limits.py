"""Oversized bodies and too many requests are refused politely."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ADMIN, Person, login
from vpack.api.app import create_app
from vpack.settings import Settings


def test_oversized_bodies_get_413(client: TestClient) -> None:
    huge = {"email": "a@b.vn", "password": "x" * (2 * 1024 * 1024)}
    response = client.post("/api/setup", json=huge)
    assert response.status_code == 413 and "too large" in response.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(2048):
            yield b"x" * 1024

    streamed = client.post(
        "/api/setup", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    lying = client.post("/api/setup", content=b"{}", headers={"Content-Length": "abc"})
    assert lying.status_code in (400, 413)
    assert client.get("/api/health").status_code == 200, "the service is unharmed"


def test_requests_per_user_are_limited(api_settings: Settings) -> None:
    tight = api_settings.model_copy(update={"api_rate_limit": "5/minute"})
    with TestClient(create_app(tight, run_worker=False)) as client:
        client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        auth = {"Authorization": f"Bearer {login(client, *ADMIN)}"}
        codes = [client.get("/api/auth/me", headers=auth).status_code for _ in range(7)]
        assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
        limited = client.get("/api/sources", headers=auth)
        assert int(limited.headers["Retry-After"]) >= 1
        assert client.get("/api/health").status_code == 200, "health is never limited"


def test_a_nul_character_is_a_clear_422_and_changes_nothing(
    client: TestClient, admin: Person
) -> None:
    """Refused at the edge on both databases (PostgreSQL could store none anyway)."""
    listed = client.get("/api/videos", params={"camera": "Cam\x001"}, headers=admin.auth)
    assert listed.status_code == 422, listed.text
    assert listed.json()["detail"][0]["loc"] == ["query", "camera"]
    assert "NUL" in listed.json()["detail"][0]["msg"]
    made = client.post(
        "/api/connections",
        headers=admin.auth,
        json={"provider": "local", "name": "Shop\x00disk", "config": {}},
    )
    assert made.status_code == 422, made.text
    assert made.json()["detail"][0]["loc"] == ["body", "name"]
    assert client.get("/api/connections", headers=admin.auth).json() == []


def test_a_value_the_database_refuses_is_a_422_not_a_500(
    client: TestClient, admin: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's own refusal stays a 422 behind the edge's check (PostgreSQL only)."""
    if not client.app.state.services.db.url.startswith("postgresql"):
        pytest.skip("SQLite stores a NUL")
    import vpack.api.edge as edge

    monkeypatch.setattr(edge, "_UNSAFE", edge.re.compile("(?!)"))  # the edge lets all through
    made = client.post(
        "/api/connections",
        headers=admin.auth,
        json={"provider": "local", "name": "Shop\x00disk", "config": {}},
    )
    assert made.status_code == 422 and "cannot store" in made.json()["detail"], made.text
    assert client.get("/api/connections", headers=admin.auth).json() == []
