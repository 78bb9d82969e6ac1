"""Connecting an OAuth2 account through the API, end to end against the emulator.

The provider here is a throwaway one that only asks the emulator's userinfo
endpoint who is signed in: it tests the generic routes, vault and refresh
handling that Google Drive, OneDrive and Dropbox will use.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tests.api.conftest import ADMIN
from tests.emulators.oauth_server import Client, OAuthEmulator
from vpack.api.app import create_app
from vpack.db.models import Connection
from vpack.providers import registry
from vpack.providers.base import (
    AuthKind,
    BrowsePage,
    Checkpoint,
    Features,
    Identity,
    Node,
    Provider,
    RemoteVideo,
    ScanEvent,
)
from vpack.providers.errors import NotFound
from vpack.providers.kit.oauth import OAuthDefaults
from vpack.settings import Settings

CLIENT_ID = "vpack-test-client"
CLIENT_SECRET = "client-secret-0f5d2a9c"  # a known value that must never be shown
PASSWORD = ADMIN[1]


class _Empty(BaseModel):
    pass


class DemoCloud(Provider):
    name = "demo_cloud"
    label = "Demo cloud"
    auth = AuthKind.OAUTH2
    features = Features()
    Config = _Empty
    SourceOptions = _Empty
    userinfo_url: ClassVar[str] = ""

    async def check(self) -> Identity:
        assert self.tokens is not None
        response = await self.tokens.authorized_request("GET", self.userinfo_url)
        email = response.json()["email"]
        return Identity(id=email, label=email)

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        await self.check()
        return BrowsePage([Node(id="root", name="All files")])

    async def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        await self.check()
        yield Checkpoint(cursor=None)

    async def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        raise NotFound("the demo cloud holds no videos")
        yield b""  # pragma: no cover - makes this an async generator


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[OAuthEmulator]:
    redirect = "http://testserver/api/cloud/demo_cloud/oauth/callback"
    with OAuthEmulator(
        clients=[Client(CLIENT_ID, [redirect], CLIENT_SECRET)],
        email="owner@shop.vn",
        auto_approve=True,
    ) as server:
        DemoCloud.oauth = OAuthDefaults(
            authorize_url=server.authorize_url, token_url=server.token_url, scopes=("files.read",)
        )
        DemoCloud.userinfo_url = server.userinfo_url
        registry.register(DemoCloud)
        monkeypatch.setenv("VPACK_DEMO_CLOUD_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("VPACK_DEMO_CLOUD_CLIENT_SECRET", CLIENT_SECRET)
        try:
            yield server
        finally:
            registry.unregister(DemoCloud.name)


@pytest.fixture
def browser(api_settings: Settings, emulator: OAuthEmulator) -> Iterator[TestClient]:
    """A signed-in browser: cookie session plus the CSRF header it reads from its cookie."""
    app_settings = api_settings.model_copy(update={"public_url": "http://testserver"})
    with TestClient(create_app(app_settings, run_worker=False)) as client:
        client.post("/api/setup", json={"email": ADMIN[0], "password": PASSWORD})
        client.post("/api/auth/login", json={"email": ADMIN[0], "password": PASSWORD})
        client.headers["X-CSRF-Token"] = client.cookies["vpack_csrf"]
        yield client


def _sign_in_at_provider(browser: TestClient, body: dict[str, Any]) -> httpx.Response:
    """POST /auth, let the emulator approve, then follow its redirect to our callback."""
    started = browser.post("/api/cloud/demo_cloud/auth", json=body)
    assert started.status_code == 200, started.text
    auth_url = started.json()["auth_url"]
    assert "code_challenge_method=S256" in auth_url and started.json()["state"] in auth_url
    at_provider = httpx.get(auth_url, follow_redirects=False)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["location"])
    return browser.get(f"{back.path}?{back.query}", follow_redirects=False)


def _connection_id(callback: httpx.Response) -> int:
    assert callback.status_code == 303, callback.text
    return int(callback.headers["location"].split("connected=")[1])


def test_connect_refresh_reauth_and_reconnect(browser: TestClient, emulator: OAuthEmulator) -> None:
    connection_id = _connection_id(_sign_in_at_provider(browser, {"name": "Shop cloud"}))
    (conn,) = browser.get("/api/connections").json()
    assert conn["id"] == connection_id and conn["account"] == "owner@shop.vn"
    assert conn["status"] == "ok" and conn["name"] == "Shop cloud"

    source = browser.post(
        "/api/sources",
        json={"connection_id": connection_id, "name": "Cloud", "selections": ["root"]},
    )
    assert source.status_code == 201, source.text

    # An expired access token is refreshed; the rotated refresh token is stored at once.
    emulator.expire_access_tokens()
    checked = browser.post(f"/api/connections/{connection_id}/check")
    assert checked.json()["status"] == "ok" and emulator.calls["refresh_token"] == 1
    services = browser.app.state.services  # type: ignore[attr-defined]
    stored = _stored_tokens(browser, connection_id)
    assert emulator.refresh_token_is_active(stored["refresh_token"])

    # A revoked grant parks the connection for the user, with an audit event.
    emulator.revoke_refresh_tokens()
    emulator.expire_access_tokens()
    parked = browser.post(f"/api/connections/{connection_id}/check").json()
    assert parked["status"] == "reauth_required" and "reconnect" in parked["status_detail"]
    assert services is not None

    # Reconnecting the same account keeps the connection and its sources.
    again = _connection_id(_sign_in_at_provider(browser, {"connection_id": connection_id}))
    assert again == connection_id
    assert browser.get(f"/api/connections/{connection_id}").json()["status"] == "ok"
    assert [s["id"] for s in browser.get("/api/sources").json()] == [source.json()["id"]]
    actions = [e["action"] for e in browser.get("/api/audit").json()["items"]]
    assert actions.count("oauth_callback") == 2
    assert "connection_reauth_required" in actions and "connection_created" in actions


def _stored_tokens(browser: TestClient, connection_id: int) -> dict[str, Any]:
    services = browser.app.state.services  # type: ignore[attr-defined]

    async def read() -> dict[str, Any]:
        async with services.db.session() as session:
            connection = await session.get(Connection, connection_id)
            return services.connections.config_of(connection)["oauth"]  # type: ignore[no-any-return]

    return browser.portal.call(read)  # type: ignore[union-attr]


def test_state_is_single_use_and_bound_to_the_user(
    browser: TestClient, emulator: OAuthEmulator
) -> None:
    started = browser.post("/api/cloud/demo_cloud/auth", json={}).json()
    back = urlsplit(httpx.get(started["auth_url"], follow_redirects=False).headers["location"])
    first = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert first.status_code == 303
    replay = browser.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert replay.status_code == 400 and "already" in replay.json()["detail"]
    anonymous = TestClient(browser.app).get(f"{back.path}?{back.query}", follow_redirects=False)
    assert anonymous.status_code == 401
    denied = browser.get(
        "/api/cloud/demo_cloud/oauth/callback",
        params={"state": started["state"], "error": "access_denied"},
        follow_redirects=False,
    )
    assert denied.status_code == 400


def test_oauth_providers_refuse_the_key_form_and_vice_versa(
    browser: TestClient, emulator: OAuthEmulator
) -> None:
    keyed = browser.post("/api/connections", json={"provider": "demo_cloud", "name": "x"})
    assert keyed.status_code == 400 and "/api/cloud/demo_cloud/auth" in keyed.json()["detail"]
    local = browser.post("/api/cloud/local/auth", json={})
    assert local.status_code == 400 and "sign-in page" in local.json()["detail"]
    unknown = browser.post("/api/cloud/nope/auth", json={})
    assert unknown.status_code == 400 and "unknown provider" in unknown.json()["detail"]


def test_no_secret_ever_reaches_a_response_or_a_log(
    browser: TestClient,
    emulator: OAuthEmulator,
    caplog: pytest.LogCaptureFixture,
    api_settings: Settings,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    connection_id = _connection_id(_sign_in_at_provider(browser, {"name": "Leak check"}))
    emulator.expire_access_tokens()
    for method, path in [
        ("GET", "/api/connections"),
        ("GET", f"/api/connections/{connection_id}"),
        ("POST", f"/api/connections/{connection_id}/check"),
        ("GET", f"/api/connections/{connection_id}/browse"),
        ("GET", "/api/providers"),
        ("GET", "/api/audit"),
        ("GET", "/api/auth/me"),
        ("GET", "/api/users"),
        ("GET", "/api/sources"),
        ("GET", "/api/health"),
    ]:
        response = browser.request(method, path)
        assert response.status_code < 400, (path, response.text)
        seen.append(response.text + str(response.headers))
    browser.post("/api/auth/login", json={"email": ADMIN[0], "password": "wrong-" + PASSWORD})
    seen.append(browser.get("/api/audit").text)

    tokens = _stored_tokens(browser, connection_id)
    vault_key = (api_settings.data_dir / "secret.key").read_text().strip()
    secrets = {
        "password": PASSWORD,
        "client secret": CLIENT_SECRET,
        "access token": tokens["access_token"],
        "refresh token": tokens["refresh_token"],
        "vault key": vault_key,
    }
    secrets.update({f"issued {i}": t for i, t in enumerate(emulator.issued_tokens())})
    haystack = "\n".join(seen) + "\n" + caplog.text
    leaked = [name for name, value in secrets.items() if value and value in haystack]
    assert leaked == []
    assert len(caplog.records) > 0, "logs were captured"
