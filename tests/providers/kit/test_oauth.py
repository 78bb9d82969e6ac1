"""The OAuth2 framework end to end, over HTTP, against the authorization-server emulator."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from tests.emulators.oauth_server import Client, OAuthEmulator
from vpack.db.models import OAuthState, User
from vpack.oauth_signin import begin, complete
from vpack.providers.errors import AuthExpired, BadConfig, Permanent, RateLimited, Transient
from vpack.providers.kit.oauth import (
    OAuthDefaults,
    OAuthFlowError,
    OAuthSpec,
    TokenManager,
    TokenSet,
    retry_after_seconds,
    spec_from_env,
    token_call,
)
from vpack.services import Services
from vpack.settings import Settings

PROVIDER = "test_cloud"
SECRET = "s3cret"
REDIRECT = f"http://127.0.0.1:8000/api/cloud/{PROVIDER}/oauth/callback"
SCOPES = ("files.read", "offline_access")
DEFAULTS = OAuthDefaults(
    authorize_url="https://auth.invalid/authorize",
    token_url="https://auth.invalid/token",
    scopes=SCOPES,
    extra_authorize_params={"access_type": "offline", "prompt": "consent"},
)


@pytest.fixture
def emulator() -> Iterator[OAuthEmulator]:
    server = OAuthEmulator(
        clients=[
            Client("vpack-test", [REDIRECT], secret="s3cret"),
            Client("vpack-public", [REDIRECT]),  # PKCE only, like Dropbox
        ]
    )
    with server:
        yield server


def env_for(
    server: OAuthEmulator, client_id: str = "vpack-test", secret: str = SECRET
) -> dict[str, str]:
    env = {
        "VPACK_TEST_CLOUD_CLIENT_ID": client_id,
        "VPACK_TEST_CLOUD_AUTH_URL": server.authorize_url,
        "VPACK_TEST_CLOUD_TOKEN_URL": server.token_url,
    }
    if secret:
        env["VPACK_TEST_CLOUD_CLIENT_SECRET"] = secret
    return env


@pytest.fixture
def spec(emulator: OAuthEmulator) -> OAuthSpec:
    return spec_from_env(PROVIDER, DEFAULTS, Settings(), environ=env_for(emulator))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def users(services: Services) -> tuple[int, int]:
    async with services.db.transaction() as session:
        alice = User(email="alice@example.com", password_hash="x")
        bob = User(email="bob@example.com", password_hash="x")
        session.add_all([alice, bob])
    return alice.id, bob.id


async def consent(
    http: httpx.AsyncClient, auth_url: str, decision: str = "allow"
) -> dict[str, str]:
    """Be the user: open the consent page, press a button, read where it sends us."""
    page = await http.get(auth_url)
    assert page.status_code == 200 and "Allow" in page.text
    action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    request_id = re.search(r'name="request" value="([^"]+)"', page.text)
    assert action and request_id
    answer = await http.post(
        str(page.url.join(action.group(1))),
        data={"request": request_id.group(1), "decision": decision},
    )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def grant(server: OAuthEmulator, http: httpx.AsyncClient, spec: OAuthSpec) -> TokenSet:
    """Tokens without the database: the auto-approving path, exchanged by hand."""
    server.auto_approve = True
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": spec.client_id,
        "redirect_uri": spec.redirect_uri,
        "scope": " ".join(spec.scopes),
        "state": "s",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    redirected = await http.get(server.authorize_url, params=params)
    code = parse_qs(urlsplit(redirected.headers["location"]).query)["code"][0]
    answer = await http.post(
        server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": spec.redirect_uri,
            "code_verifier": verifier,
            "client_id": spec.client_id,
            "client_secret": spec.client_secret or "",
        },
    )
    assert answer.status_code == 200, answer.text
    return TokenSet.from_response(answer.json())


class Saved:
    """The `save` callback: remembers every TokenSet it was handed."""

    def __init__(self) -> None:
        self.tokens: list[TokenSet] = []

    async def __call__(self, tokens: TokenSet) -> None:
        self.tokens.append(tokens)


def expiring(tokens: TokenSet, seconds: float = 30) -> TokenSet:
    tokens.expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
    return tokens


# ---------------------------------------------------------------- configuration


def test_spec_comes_from_env_with_emulator_urls() -> None:
    settings = Settings(public_url="https://vpack.example.com/")
    env = {
        "VPACK_TEST_CLOUD_CLIENT_ID": "id",
        "VPACK_TEST_CLOUD_CLIENT_SECRET": "secret",
        "VPACK_TEST_CLOUD_TOKEN_URL": "http://127.0.0.1:1/token",
    }
    spec = spec_from_env(PROVIDER, DEFAULTS, settings, environ=env)
    assert spec.client_id == "id" and spec.client_secret == "secret"
    assert spec.authorize_url == DEFAULTS.authorize_url
    assert spec.token_url == "http://127.0.0.1:1/token"
    assert spec.redirect_uri == "https://vpack.example.com/api/cloud/test_cloud/oauth/callback"
    assert spec.scopes == list(SCOPES) and spec.extra_authorize_params["prompt"] == "consent"
    assert "secret" not in repr(spec)


def test_missing_client_credentials_name_the_env_var() -> None:
    with pytest.raises(BadConfig, match="VPACK_GOOGLE_DRIVE_CLIENT_ID"):
        spec_from_env("google_drive", DEFAULTS, Settings(), environ={})
    needs_secret = OAuthDefaults("https://a/auth", "https://a/token", client_secret_required=True)
    with pytest.raises(BadConfig, match="VPACK_GOOGLE_DRIVE_CLIENT_SECRET"):
        spec_from_env(
            "google_drive", needs_secret, Settings(), environ={"VPACK_GOOGLE_DRIVE_CLIENT_ID": "x"}
        )


def test_token_set_round_trips_and_hides_secrets() -> None:
    tokens = TokenSet(
        access_token="AT",
        refresh_token="RT",
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        scope="a b",
        extra={"account_id": "dbid:1"},
    )
    assert TokenSet.from_dict(tokens.to_dict()) == tokens
    assert "AT" not in repr(tokens) and "RT" not in repr(tokens)
    naive = TokenSet.from_dict({"access_token": "x", "expires_at": "2030-01-01T00:00:00"})
    assert naive.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert TokenSet.from_dict({"access_token": "x"}).expires_at is None


def test_retry_after_reads_seconds_and_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after_seconds(answer("12")) == 12
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 80 < (retry_after_seconds(answer(later)) or 0) <= 90
    assert retry_after_seconds(answer("soon")) is None
    assert retry_after_seconds(httpx.Response(429)) is None


# ---------------------------------------------------------------- begin / complete


async def test_connect_flow_end_to_end(
    services: Services,
    users: tuple[int, int],
    emulator: OAuthEmulator,
    spec: OAuthSpec,
    http: httpx.AsyncClient,
) -> None:
    alice, _ = users
    url, state = await begin(services.db, spec, user_id=alice, connection_name="Office drive")
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(emulator.authorize_url + "?")
    assert query["state"] == [state] and len(state) >= 43
    assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
    assert query["scope"] == ["files.read offline_access"]
    assert query["access_type"] == ["offline"] and query["redirect_uri"] == [REDIRECT]

    callback = await consent(http, url)
    assert callback["state"] == state
    tokens, row = await complete(
        services.db, spec, state=state, code=callback["code"], user_id=alice, http=http
    )
    assert tokens.access_token and tokens.refresh_token and tokens.token_type == "Bearer"
    assert tokens.scope == "files.read offline_access"
    assert tokens.expires_at is not None
    assert timedelta(minutes=59) < tokens.expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert row.connection_name == "Office drive" and row.used_at is not None

    # PKCE verifier per RFC 7636 §4.1; the secret went in the body (client_secret_post)
    sent = emulator.token_requests[-1]
    assert 43 <= len(sent["code_verifier"]) <= 128
    assert sent["client_secret"] == "s3cret" and sent["redirect_uri"] == REDIRECT
    async with services.db.session() as session:
        stored = await session.get(OAuthState, state)
        assert stored is not None and stored.used_at is not None
        assert stored.expires_at - stored.created_at == timedelta(minutes=10)

    manager = TokenManager(spec, tokens, http, Saved())
    answer = await manager.authorized_request("GET", emulator.userinfo_url)
    assert answer.json()["email"] == "owner@example.com"


async def test_public_client_needs_no_secret(
    services: Services, users: tuple[int, int], emulator: OAuthEmulator, http: httpx.AsyncClient
) -> None:
    env = env_for(emulator, client_id="vpack-public", secret="")
    spec = spec_from_env(PROVIDER, DEFAULTS, Settings(), environ=env)
    url, state = await begin(services.db, spec, user_id=users[0], connection_id=7)
    callback = await consent(http, url)
    tokens, row = await complete(
        services.db, spec, state=state, code=callback["code"], user_id=users[0]
    )
    assert tokens.refresh_token and row.connection_id == 7
    assert "client_secret" not in emulator.token_requests[-1]


async def test_wrong_pkce_verifier_is_rejected_and_spends_the_state(
    services: Services,
    users: tuple[int, int],
    spec: OAuthSpec,
    http: httpx.AsyncClient,
) -> None:
    url, state = await begin(services.db, spec, user_id=users[0])
    callback = await consent(http, url)
    async with services.db.transaction() as session:
        await session.execute(
            update(OAuthState)
            .where(OAuthState.state == state)
            .values(code_verifier=secrets.token_urlsafe(64))
        )
    with pytest.raises(OAuthFlowError, match="PKCE") as failed:
        await complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])
    assert failed.value.error == "invalid_grant"
    with pytest.raises(OAuthFlowError, match="already used") as again:
        await complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])
    assert again.value.error == "state_used"


async def test_a_state_is_single_use(
    services: Services,
    users: tuple[int, int],
    emulator: OAuthEmulator,
    spec: OAuthSpec,
    http: httpx.AsyncClient,
) -> None:
    url, state = await begin(services.db, spec, user_id=users[0])
    callback = await consent(http, url)
    await complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])
    exchanges = len(emulator.token_requests)
    with pytest.raises(OAuthFlowError, match="already used") as failed:
        await complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])
    assert failed.value.error == "state_used"
    assert len(emulator.token_requests) == exchanges  # refused before any exchange


async def test_racing_callbacks_only_one_wins(
    services: Services, users: tuple[int, int], spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    url, state = await begin(services.db, spec, user_id=users[0])
    callback = await consent(http, url)
    results = await asyncio.gather(
        *(
            complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    assert sum(isinstance(r, tuple) for r in results) == 1
    assert all(isinstance(r, OAuthFlowError) for r in results if not isinstance(r, tuple))


async def test_an_expired_state_is_rejected(
    services: Services, users: tuple[int, int], spec: OAuthSpec
) -> None:
    _, state = await begin(services.db, spec, user_id=users[0])
    async with services.db.transaction() as session:
        await session.execute(
            update(OAuthState)
            .where(OAuthState.state == state)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(OAuthFlowError, match="expired") as failed:
        await complete(services.db, spec, state=state, code="whatever", user_id=users[0])
    assert failed.value.error == "state_expired"


async def test_another_users_state_is_rejected_and_left_for_its_owner(
    services: Services, users: tuple[int, int], spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    alice, bob = users
    url, state = await begin(services.db, spec, user_id=alice)
    callback = await consent(http, url)
    with pytest.raises(OAuthFlowError, match="another user") as failed:
        await complete(services.db, spec, state=state, code=callback["code"], user_id=bob)
    assert failed.value.error == "state_other_user"
    tokens, _ = await complete(services.db, spec, state=state, code=callback["code"], user_id=alice)
    assert tokens.access_token


async def test_unknown_and_cross_provider_states_are_rejected(
    services: Services, users: tuple[int, int], spec: OAuthSpec
) -> None:
    with pytest.raises(OAuthFlowError, match="unknown") as unknown:
        await complete(services.db, spec, state="made-up", code="x", user_id=users[0])
    assert unknown.value.error == "state_unknown"
    _, state = await begin(services.db, spec, user_id=users[0])
    other = OAuthSpec("other_cloud", spec.authorize_url, spec.token_url, "id", REDIRECT)
    with pytest.raises(OAuthFlowError, match="test_cloud") as crossed:
        await complete(services.db, other, state=state, code="x", user_id=users[0])
    assert crossed.value.error == "state_other_provider"


async def test_a_declined_consent_is_reported_and_spends_the_state(
    services: Services, users: tuple[int, int], spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    url, state = await begin(services.db, spec, user_id=users[0])
    callback = await consent(http, url, decision="deny")
    assert callback["error"] == "access_denied" and callback["state"] == state
    with pytest.raises(OAuthFlowError, match="declined") as failed:
        await complete(
            services.db,
            spec,
            state=state,
            code=None,
            user_id=users[0],
            error=callback["error"],
            error_description=callback.get("error_description"),
        )
    assert failed.value.error == "access_denied"
    async with services.db.session() as session:
        used = await session.scalar(select(OAuthState.used_at).where(OAuthState.state == state))
    assert used is not None


async def test_exchange_errors_are_explained(
    services: Services,
    users: tuple[int, int],
    emulator: OAuthEmulator,
    spec: OAuthSpec,
    http: httpx.AsyncClient,
) -> None:
    # a code past its lifetime
    emulator.code_ttl = 0
    url, state = await begin(services.db, spec, user_id=users[0])
    callback = await consent(http, url)
    with pytest.raises(OAuthFlowError, match="expired") as expired:
        await complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])
    assert expired.value.error == "invalid_grant"
    emulator.code_ttl = 60

    # a wrong client secret names the settings to check
    bad = spec_from_env(PROVIDER, DEFAULTS, Settings(), environ=env_for(emulator, secret="nope"))
    url, state = await begin(services.db, bad, user_id=users[0])
    callback = await consent(http, url)
    with pytest.raises(OAuthFlowError, match="VPACK_TEST_CLOUD_CLIENT_SECRET") as client:
        await complete(services.db, bad, state=state, code=callback["code"], user_id=users[0])
    assert client.value.error == "invalid_client"

    # an unreachable or failing token endpoint is worth retrying, not a user error
    url, state = await begin(services.db, spec, user_id=users[0])
    callback = await consent(http, url)
    emulator.fail_token_calls(1, status=503)
    with pytest.raises(Transient):
        await complete(services.db, spec, state=state, code=callback["code"], user_id=users[0])


# ---------------------------------------------------------------- the emulator itself


async def test_emulator_authorize_validates_before_redirecting(
    emulator: OAuthEmulator, http: httpx.AsyncClient
) -> None:
    base = {"response_type": "code", "client_id": "vpack-test", "redirect_uri": REDIRECT}
    challenge = {"code_challenge": "A" * 43, "code_challenge_method": "S256", "state": "st"}
    unknown = await http.get(emulator.authorize_url, params={**base, "client_id": "nobody"})
    assert unknown.status_code == 400 and "location" not in unknown.headers
    elsewhere = await http.get(
        emulator.authorize_url, params={**base, "redirect_uri": "https://evil.example/cb"}
    )
    assert elsewhere.status_code == 400 and "location" not in elsewhere.headers

    def error_of(answer: httpx.Response) -> dict[str, list[str]]:
        assert answer.status_code == 302
        return parse_qs(urlsplit(answer.headers["location"]).query)

    no_pkce = error_of(await http.get(emulator.authorize_url, params={**base, "state": "st"}))
    assert no_pkce["error"] == ["invalid_request"] and no_pkce["state"] == ["st"]
    plain = {**base, **challenge, "code_challenge_method": "plain"}
    assert error_of(await http.get(emulator.authorize_url, params=plain))["error"] == [
        "invalid_request"
    ]
    token_flow = {**base, **challenge, "response_type": "token"}
    assert error_of(await http.get(emulator.authorize_url, params=token_flow))["error"] == [
        "unsupported_response_type"
    ]
    emulator.auto_approve = True
    approved = error_of(await http.get(emulator.authorize_url, params={**base, **challenge}))
    assert approved["code"] and approved["state"] == ["st"]


async def test_emulator_token_endpoint_follows_rfc6749(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    assert tokens.refresh_token
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    basic = httpx.BasicAuth("vpack-test", "s3cret")
    refreshed = await http.post(emulator.token_url, data=form, auth=basic)
    assert refreshed.status_code == 200 and refreshed.headers["cache-control"] == "no-store"
    wrong = await http.post(emulator.token_url, data=form, auth=httpx.BasicAuth("vpack-test", "x"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    both = await http.post(emulator.token_url, data={**form, "client_secret": "s3cret"}, auth=basic)
    assert both.json()["error"] == "invalid_request"
    odd = await http.post(emulator.token_url, data={"grant_type": "password"}, auth=basic)
    assert odd.json()["error"] == "unsupported_grant_type"
    wider = await http.post(
        emulator.token_url,
        data={**form, "refresh_token": refreshed.json()["refresh_token"], "scope": "admin"},
        auth=basic,
    )
    assert wider.json()["error"] == "invalid_scope"


async def test_emulator_revokes_tokens_bought_with_a_replayed_code(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    emulator.auto_approve = True
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirected = await http.get(
        emulator.authorize_url,
        params={
            "response_type": "code",
            "client_id": "vpack-test",
            "redirect_uri": REDIRECT,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        },
    )
    code = parse_qs(urlsplit(redirected.headers["location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": "vpack-test",
        "client_secret": "s3cret",
    }
    first = await http.post(emulator.token_url, data=form)
    access = first.json()["access_token"]
    bearer = {"Authorization": f"Bearer {access}"}
    assert (await http.get(emulator.userinfo_url, headers=bearer)).status_code == 200
    replay = await http.post(emulator.token_url, data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    after = await http.get(emulator.userinfo_url, headers=bearer)
    assert after.status_code == 401 and 'error="invalid_token"' in after.headers["www-authenticate"]
    anonymous = await http.get(emulator.userinfo_url)
    assert anonymous.status_code == 401 and "error=" not in anonymous.headers["www-authenticate"]


# ---------------------------------------------------------------- TokenManager


async def test_an_expiring_token_is_refreshed_before_use(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    saved = Saved()
    fresh = TokenManager(spec, tokens, http, saved)
    assert await fresh.access_token() == tokens.access_token
    assert emulator.calls["refresh_token"] == 0

    manager = TokenManager(spec, expiring(tokens), http, saved)
    token = await manager.access_token()
    assert token != tokens.access_token and emulator.calls["refresh_token"] == 1
    assert await manager.access_token() == token and emulator.calls["refresh_token"] == 1
    assert saved.tokens == [manager.tokens]
    answer = await manager.authorized_request("GET", emulator.userinfo_url)
    assert answer.status_code == 200


async def test_a_rotated_refresh_token_is_saved_at_once(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    old_refresh = tokens.refresh_token
    assert old_refresh
    seen: list[tuple[str | None, bool]] = []
    manager: TokenManager

    async def save(new: TokenSet) -> None:
        # Stored before the manager (or anyone) hands out the new tokens.
        seen.append((new.refresh_token, manager.tokens.refresh_token == old_refresh))

    manager = TokenManager(spec, tokens, http, save)
    new = await manager.refresh()
    assert new.refresh_token and new.refresh_token != old_refresh
    assert seen == [(new.refresh_token, True)]
    assert manager.tokens is new
    assert not emulator.refresh_token_is_active(old_refresh)

    stale = TokenManager(spec, TokenSet(access_token="x", refresh_token=old_refresh), http, save)
    with pytest.raises(AuthExpired, match="reconnect"):
        await stale.refresh()


async def test_a_kept_refresh_token_stays_when_none_is_returned(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    emulator.rotate_refresh_tokens = False  # Google's way
    tokens = await grant(emulator, http, spec)
    saved = Saved()
    manager = TokenManager(spec, tokens, http, saved)
    new = await manager.refresh()
    assert new.refresh_token == tokens.refresh_token and new.access_token != tokens.access_token
    assert new.scope == tokens.scope and saved.tokens == [new]
    assert "scope" not in emulator.token_requests[-1]


async def test_refresh_can_carry_the_scope(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    microsoft_like = replace(spec, refresh_with_scope=True)
    tokens = await grant(emulator, http, microsoft_like)
    await TokenManager(microsoft_like, tokens, http, Saved()).refresh()
    assert emulator.token_requests[-1]["scope"] == "files.read offline_access"


async def test_a_revoked_refresh_token_means_reconnect(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    emulator.revoke_refresh_tokens()
    saved = Saved()
    manager = TokenManager(spec, expiring(tokens), http, saved)
    with pytest.raises(AuthExpired, match="invalid_grant"):
        await manager.access_token()
    assert saved.tokens == []
    no_refresh = TokenManager(spec, expiring(TokenSet(access_token="x")), http, saved)
    with pytest.raises(AuthExpired, match="no refresh token"):
        await no_refresh.access_token()


async def test_a_401_refreshes_once_and_retries(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    manager = TokenManager(spec, tokens, http, Saved())
    emulator.expire_access_tokens()  # the server disagrees with our clock
    answer = await manager.authorized_request("GET", emulator.userinfo_url)
    assert answer.status_code == 200 and answer.json()["email"] == "owner@example.com"
    assert emulator.calls["refresh_token"] == 1 and emulator.calls["userinfo"] == 2

    streamed = await manager.authorized_request("GET", emulator.userinfo_url, stream=True)
    try:
        assert b"owner@example.com" in await streamed.aread()
    finally:
        await streamed.aclose()


async def test_a_second_401_means_reconnect(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    emulator.access_token_ttl = 0  # every new token is dead on arrival
    manager = TokenManager(spec, tokens, http, Saved(), leeway=timedelta(0))
    emulator.expire_access_tokens()
    with pytest.raises(AuthExpired, match="after a refresh"):
        await manager.authorized_request("GET", emulator.userinfo_url)
    assert emulator.calls["userinfo"] == 2


async def test_throttled_or_failing_refreshes_are_typed(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    manager = TokenManager(spec, expiring(tokens), http, Saved())
    emulator.fail_token_calls(1, status=429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        await manager.access_token()
    assert limited.value.retry_after == 7
    emulator.fail_token_calls(1, status=503)
    with pytest.raises(Transient):
        await manager.access_token()
    assert await manager.access_token() != tokens.access_token  # then it recovers

    unreachable = replace(spec, token_url="http://127.0.0.1:9/token")
    cut = TokenManager(unreachable, expiring(TokenSet("x", "y")), http, Saved())
    with pytest.raises(Transient, match="unreachable"):
        await cut.access_token()
    with pytest.raises(Transient, match="failed") as cut_off:
        await manager.authorized_request("GET", "http://127.0.0.1:9/api?secret=1")
    assert "secret" not in str(cut_off.value)  # query strings may hold signatures


async def test_concurrent_callers_share_one_refresh(
    emulator: OAuthEmulator, spec: OAuthSpec, http: httpx.AsyncClient
) -> None:
    tokens = await grant(emulator, http, spec)
    emulator.token_delay = 0.2  # everyone arrives while the refresh is in flight
    saved = Saved()
    manager = TokenManager(spec, expiring(tokens), http, saved)
    got = await asyncio.gather(*(manager.access_token() for _ in range(10)))
    assert len(set(got)) == 1 and got[0] != tokens.access_token
    assert emulator.calls["refresh_token"] == 1 and len(saved.tokens) == 1

    emulator.expire_access_tokens()
    answers = await asyncio.gather(
        *(manager.authorized_request("GET", emulator.userinfo_url) for _ in range(5))
    )
    assert all(a.status_code == 200 for a in answers)
    assert emulator.calls["refresh_token"] == 2 and len(saved.tokens) == 2


async def test_odd_token_answers_are_typed() -> None:
    """Shapes a faithful emulator never sends, served by a stub transport."""
    answers: list[httpx.Response] = []

    def reply(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    spec = OAuthSpec(PROVIDER, "https://a.invalid/auth", "https://a.invalid/token", "id", REDIRECT)
    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as stub:
        manager = TokenManager(spec, expiring(TokenSet("x", "y")), stub, Saved())
        cases: list[tuple[httpx.Response, type[Exception], str]] = [
            (httpx.Response(200, text="<html>"), Permanent, "without a JSON object"),
            (httpx.Response(200, json={"token_type": "Bearer"}), Permanent, "access_token"),
            (
                httpx.Response(200, json={"access_token": "a", "expires_in": "soon"}),
                Permanent,
                "expires_in",
            ),
            (
                httpx.Response(400, json={"error": "temporarily_unavailable"}),
                Transient,
                "temporarily",
            ),
            (httpx.Response(400, json={"error": "invalid_request"}), Permanent, "refresh failed"),
            (httpx.Response(401, text="nope"), AuthExpired, "HTTP 401"),
        ]
        for answer, kind, message in cases:
            answers.append(answer)
            with pytest.raises(kind, match=message):
                await manager.refresh()
        answers.append(
            httpx.Response(400, json={"error": "invalid_request", "error_description": "?"})
        )
        with pytest.raises(OAuthFlowError, match="refused the code exchange"):
            # the call complete() makes, without a database
            await token_call(stub, spec, {"grant_type": "authorization_code"}, refreshing=False)


async def test_unknown_lifetime_tokens_are_used_until_refused() -> None:
    tokens = TokenSet.from_response({"access_token": "a", "refresh_token": "r", "id_token": "j"})
    assert tokens.expires_at is None and not tokens.expires_within(timedelta(hours=1))
    refreshed = TokenSet.from_response({"access_token": "b"}, previous=tokens)
    assert refreshed.refresh_token == "r" and refreshed.extra == {"id_token": "j"}
