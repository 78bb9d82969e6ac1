"""An app per test, with helpers to make users and sign them in."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from vpack.api.app import create_app
from vpack.settings import Settings

ADMIN = ("admin@shop.vn", "admin-password-1")


@dataclass
class Person:
    email: str
    password: str
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def footage(tmp_path: Path) -> Path:
    root = tmp_path / "footage"
    root.mkdir()
    return root


@pytest.fixture
def api_settings(settings: Settings, footage: Path) -> Settings:
    return settings.model_copy(
        update={
            "local_roots": str(footage),
            # The vendors' emulators listen on loopback; cloud metadata stays refused.
            "blocked_networks": "169.254.0.0/16,fe80::/10",
            "login_failure_limit": "5/minute",
            "api_rate_limit": "10000/minute",
        }
    )


@pytest.fixture
def client(api_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(api_settings, run_worker=False)) as test_client:
        yield test_client


@contextmanager
def worker_browser(api_settings: Settings) -> Iterator[TestClient]:
    """The admin's signed-in browser on a service whose worker (and watchers) really run,
    for a cloud account's end-to-end flow. A failed file waits for "Sync now" (not a
    50 ms backoff), so each step can see the failure before the retry that heals it."""
    app_settings = api_settings.model_copy(
        update={
            "public_url": "http://testserver",
            "scheduler_tick_seconds": 0.1,
            "retry_base_seconds": 3600.0,
        }
    )
    with TestClient(create_app(app_settings, run_worker=True)) as browser:
        browser.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
        browser.post("/api/auth/login", json={"email": ADMIN[0], "password": ADMIN[1]})
        browser.headers["X-CSRF-Token"] = browser.cookies["vpack_csrf"]
        yield browser


def login(client: TestClient, email: str, password: str) -> str:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture
def admin(client: TestClient) -> Person:
    made = client.post("/api/setup", json={"email": ADMIN[0], "password": ADMIN[1]})
    assert made.status_code == 201, made.text
    token = login(client, *ADMIN)
    client.cookies.clear()  # tests choose Bearer or cookie explicitly
    return Person(ADMIN[0], ADMIN[1], made.json()["id"], token)


@pytest.fixture
def make_user(client: TestClient, admin: Person) -> Callable[[str], Person]:
    def make(name: str) -> Person:
        email, password = f"{name}@shop.vn", f"{name}-password-1"
        made = client.post(
            "/api/users", json={"email": email, "password": password}, headers=admin.auth
        )
        assert made.status_code == 201, made.text
        token = login(client, email, password)
        client.cookies.clear()
        return Person(email, password, made.json()["id"], token)

    return make


def local_source(
    client: TestClient, headers: dict[str, str], folder: Path, **fields: object
) -> dict[str, Any]:
    """A local-folder connection and a source over `folder` (settle 0), as a user would."""
    conn = client.post(
        "/api/connections",
        headers=headers,
        json={"provider": "local", "name": folder.name, "config": {}},
    )
    assert conn.status_code == 201, conn.text
    body = {
        "connection_id": conn.json()["id"],
        "name": folder.name,
        "selections": [str(folder)],
        "options": {"settle_seconds": 0},
        **fields,
    }
    source = client.post("/api/sources", headers=headers, json=body)
    assert source.status_code == 201, source.text
    return dict(source.json())


T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 60.0,
    explain: Callable[[], object] = lambda: "",
) -> T:
    """Poll until `predicate` gives something truthy; on timeout, say what `explain` sees."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out; {explain()}"
        time.sleep(0.1)
