"""Oversized bodies and too many requests are refused politely."""

from __future__ import annotations

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
    """PostgreSQL stores no NUL in text (SQLite does): either way, no 500."""
    listed = client.get("/api/videos", params={"camera": "Cam\x001"}, headers=admin.auth)
    assert listed.status_code in (200, 422), listed.text
    if listed.status_code == 422:
        assert "cannot store" in listed.json()["detail"]
    made = client.post(
        "/api/connections",
        headers=admin.auth,
        json={"provider": "local", "name": "Shop\x00disk", "config": {}},
    )
    assert made.status_code in (201, 422), made.text
    names = [c["name"] for c in client.get("/api/connections", headers=admin.auth).json()]
    assert names == (["Shop\x00disk"] if made.status_code == 201 else [])
