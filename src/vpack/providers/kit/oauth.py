"""OAuth2 for providers: client specs, token sets, the token endpoint, refresh and
authorized requests. (Starting and finishing a sign-in, which needs the database,
is `vpack.oauth_signin`.)

Written on plain httpx rather than Authlib: the three flows (authorize URL,
code exchange, refresh) are three small form POSTs, and what matters here sits
around them and Authlib would not do for us: single-use, user-bound state rows
in our own database, a refresh shared by concurrent callers, a rotated refresh
token persisted before anything else can use it, and provider errors mapped to
the few typed errors the engine understands.

Standards: RFC 6749 (OAuth 2.0: §4.1 authorization code grant, §5.1/§5.2 token
responses and errors, §6 refresh), RFC 7636 (PKCE, S256 only), RFC 6750 (Bearer).
Client authentication is ``client_secret_post`` (RFC 6749 §2.3.1, secret in the
form body): it is the form Google, Microsoft and Dropbox all document first, and
public PKCE clients (Dropbox without a secret) simply leave it out.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from vpack.providers.errors import AuthExpired, BadConfig, Permanent, RateLimited, Transient
from vpack.providers.kit.http import retry_after_seconds
from vpack.settings import Settings

REFRESH_LEEWAY = timedelta(seconds=60)
TOKEN_TIMEOUT = httpx.Timeout(30.0)

# Refresh answers that mean "these credentials are dead": only the user can fix them.
_DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}


class OAuthFlowError(BadConfig):
    """The connect flow cannot finish; `error` says why, the user starts it again.

    `error` is a short code: state_unknown, state_used, state_expired,
    state_other_user, state_other_provider, access_denied, or an RFC 6749 §5.2
    code such as invalid_grant / invalid_client.
    """

    def __init__(self, message: str, *, error: str) -> None:
        super().__init__(message)
        self.error = error


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class OAuthDefaults:
    """What a provider module knows about its authorization server."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    extra_authorize_params: Mapping[str, str] = field(default_factory=dict)
    client_secret_required: bool = False  # Google web clients; Dropbox PKCE needs none
    refresh_with_scope: bool = False  # Microsoft wants `scope` on refresh requests too
    # The `{tenant}` segment of the URLs (Microsoft's common / organizations / consumers /
    # a tenant id), which the operator may set with VPACK_<PROVIDER>_TENANT.
    tenant: str | None = None
    # Scopes asked for only when the operator turns a switch on: env key -> scopes
    # (OneDrive's DOCUMENT_LIBRARIES -> Sites.Read.All).
    optional_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class OAuthSpec:
    """Everything needed to talk to one provider's authorization server."""

    provider: str
    authorize_url: str
    token_url: str
    client_id: str
    redirect_uri: str
    scopes: list[str] = field(default_factory=list)
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    client_secret: str | None = field(default=None, repr=False)
    refresh_with_scope: bool = False


def env_name(provider: str, key: str) -> str:
    """`google_drive`, `CLIENT_ID` -> `VPACK_GOOGLE_DRIVE_CLIENT_ID`."""
    return f"VPACK_{re.sub(r'[^A-Z0-9]+', '_', provider.upper())}_{key}"


def env_flag(environ: Mapping[str, str], name: str) -> bool:
    """An on/off environment switch: 1, true, yes or on (any case) is on."""
    return (environ.get(name) or "").strip().lower() in {"1", "true", "yes", "on"}


def spec_from_env(
    provider: str,
    defaults: OAuthDefaults,
    settings: Settings,
    environ: Mapping[str, str] | None = None,
) -> OAuthSpec:
    """The provider's spec with its client credentials and any URL overrides from env."""
    env = os.environ if environ is None else environ

    def get(key: str) -> str | None:
        return env.get(env_name(provider, key)) or None

    client_id = get("CLIENT_ID")
    if client_id is None:
        raise BadConfig(
            f"{provider} is not set up on this server: set {env_name(provider, 'CLIENT_ID')} "
            "to the OAuth client id registered with the provider"
        )
    client_secret = get("CLIENT_SECRET")
    if client_secret is None and defaults.client_secret_required:
        raise BadConfig(
            f"{provider} needs a client secret: set {env_name(provider, 'CLIENT_SECRET')}"
        )
    tenant = get("TENANT") or defaults.tenant

    def url(key: str, default: str) -> str:
        chosen = get(key) or default
        return chosen.replace("{tenant}", tenant) if tenant else chosen

    scopes = list(defaults.scopes)
    for switch, wanted in defaults.optional_scopes.items():
        if env_flag(env, env_name(provider, switch)):
            scopes += [s for s in wanted if s not in scopes]
    return OAuthSpec(
        provider=provider,
        authorize_url=url("AUTH_URL", defaults.authorize_url),
        token_url=url("TOKEN_URL", defaults.token_url),
        client_id=client_id,
        client_secret=client_secret,
        redirect_uri=f"{settings.public_url.rstrip('/')}/api/cloud/{provider}/oauth/callback",
        scopes=scopes,
        extra_authorize_params=dict(defaults.extra_authorize_params),
        refresh_with_scope=defaults.refresh_with_scope,
    )


# ---------------------------------------------------------------- tokens


@dataclass
class TokenSet:
    """The tokens of one connection, as kept in the vault."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None  # aware UTC; None: the server did not say
    scope: str | None = None
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # e.g. Dropbox account_id

    def expires_within(self, leeway: timedelta, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False  # unknown lifetime: a 401 will tell us
        return self.expires_at - leeway <= (now or datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "scope": self.scope,
            "token_type": self.token_type,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSet:
        expires = data.get("expires_at")
        expires_at = datetime.fromisoformat(expires) if expires else None
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_at=expires_at,
            scope=data.get("scope"),
            token_type=data.get("token_type") or "Bearer",
            extra=dict(data.get("extra") or {}),
        )

    @classmethod
    def from_response(
        cls, body: Mapping[str, Any], *, previous: TokenSet | None = None, requested: str = ""
    ) -> TokenSet:
        """Parse an RFC 6749 §5.1 answer; a missing refresh token or scope keeps the old one."""
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise Permanent("the token endpoint answered without an access_token")
        expires_at = None
        if body.get("expires_in") is not None:
            try:
                seconds = float(body["expires_in"])
            except (TypeError, ValueError):
                raise Permanent("the token endpoint sent an unreadable expires_in") from None
            expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        known = {"access_token", "refresh_token", "expires_in", "scope", "token_type"}
        before = previous or cls(access_token="")
        return cls(
            access_token=access,
            # §6: the server may keep the refresh token as is and not send it again
            refresh_token=body.get("refresh_token") or before.refresh_token,
            expires_at=expires_at,
            # §5.1: scope omitted = as requested (or as granted before)
            scope=body.get("scope") or before.scope or requested or None,
            token_type=body.get("token_type") or "Bearer",
            extra={**before.extra, **{k: v for k, v in body.items() if k not in known}},
        )


# ---------------------------------------------------------------- token endpoint


@asynccontextmanager
async def token_client(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=TOKEN_TIMEOUT) as own:
        yield own


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    """RFC 6749 §5.2 `error` and `error_description`, if the body has them."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return None, ""
    description = body.get("error_description")
    return body["error"], str(description)[:300] if description else ""


async def token_call(
    client: httpx.AsyncClient, spec: OAuthSpec, data: dict[str, str], *, refreshing: bool
) -> dict[str, Any]:
    """POST to the token endpoint; the answer's JSON, or a typed error."""
    form = {**data, "client_id": spec.client_id}
    if spec.client_secret:
        form["client_secret"] = spec.client_secret
    what = "refresh" if refreshing else "code exchange"
    try:
        response = await client.post(
            spec.token_url, data=form, headers={"Accept": "application/json"}
        )
    except httpx.TransportError as exc:
        raise Transient(
            f"{spec.provider} token endpoint unreachable during {what}: "
            f"{type(exc).__name__} {exc!s}"
        ) from exc
    if response.status_code == 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Permanent(f"{spec.provider} token endpoint answered 200 without a JSON object")
        return body
    if response.status_code == 429:
        raise RateLimited(
            f"{spec.provider} token endpoint is rate limiting ({what})",
            retry_after=retry_after_seconds(response),
        )
    if response.status_code >= 500:
        raise Transient(f"{spec.provider} token endpoint failed with {response.status_code}")
    code, description = _error_body(response)
    detail = f"{code or f'HTTP {response.status_code}'}" + (
        f": {description}" if description else ""
    )
    if code == "temporarily_unavailable":
        raise Transient(f"{spec.provider} token endpoint is temporarily unavailable ({detail})")
    if refreshing:
        if response.status_code == 401 or code in _DEAD_GRANT:
            raise AuthExpired(
                f"{spec.provider} rejected the stored refresh token ({detail}): "
                "reconnect the account"
            )
        raise Permanent(f"{spec.provider} token refresh failed ({detail})")
    if code == "invalid_grant":
        raise OAuthFlowError(
            f"{spec.provider} rejected the authorization code ({detail}); it may have "
            "expired or been used already: connect again",
            error=code,
        )
    if code in ("invalid_client", "unauthorized_client") or response.status_code == 401:
        raise OAuthFlowError(
            f"{spec.provider} rejected this server's OAuth client ({detail}): check "
            f"{env_name(spec.provider, 'CLIENT_ID')} and "
            f"{env_name(spec.provider, 'CLIENT_SECRET')}",
            error=code or "invalid_client",
        )
    raise OAuthFlowError(
        f"{spec.provider} refused the code exchange ({detail})", error=code or "invalid_request"
    )


# ---------------------------------------------------------------- using tokens

SaveTokens = Callable[[TokenSet], Awaitable[None]]


class TokenManager:
    """Hands out a valid access token, refreshing it once for all concurrent callers.

    `save` runs under the refresh lock, so it must not call back into the manager.
    """

    def __init__(
        self,
        spec: OAuthSpec,
        tokens: TokenSet,
        http: httpx.AsyncClient,
        save: SaveTokens,
        *,
        leeway: timedelta = REFRESH_LEEWAY,
    ) -> None:
        self.spec = spec
        self._tokens = tokens
        self._http = http
        self._save = save
        self._leeway = leeway
        self._lock = asyncio.Lock()
        self._generation = 0  # bumped by every refresh; lets waiters see theirs was done

    @property
    def tokens(self) -> TokenSet:
        return self._tokens

    async def access_token(self) -> str:
        """A token good for at least `leeway` more (refreshing first when it is not)."""
        if not self._tokens.expires_within(self._leeway):
            return self._tokens.access_token
        seen = self._generation
        async with self._lock:
            if self._generation == seen and self._tokens.expires_within(self._leeway):
                await self._refresh_locked()
            return self._tokens.access_token

    async def refresh(self) -> TokenSet:
        """Refresh now; callers arriving while one is running share its result."""
        return await self._refresh_unless_done(self._generation)

    async def _refresh_unless_done(self, seen: int) -> TokenSet:
        async with self._lock:
            if self._generation == seen:
                await self._refresh_locked()
            return self._tokens

    async def _refresh_locked(self) -> None:
        old = self._tokens
        if not old.refresh_token:
            raise AuthExpired(
                f"{self.spec.provider} gave no refresh token and the access token has "
                "expired: reconnect the account"
            )
        data = {"grant_type": "refresh_token", "refresh_token": old.refresh_token}
        if self.spec.refresh_with_scope and self.spec.scopes:
            data["scope"] = " ".join(self.spec.scopes)
        body = await token_call(self._http, self.spec, data, refreshing=True)
        new = TokenSet.from_response(body, previous=old)
        try:
            # Still under the lock: a rotated refresh token is stored before anyone
            # can use it, and the old one may already be dead at the server.
            await self._save(new)
        finally:
            self._tokens = new
            self._generation += 1

    async def authorized_request(
        self, method: str, url: str, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send with the Bearer token; on a 401 refresh once and retry (RFC 6750 §3.1).

        With `stream=True` the caller must close the response (`await r.aclose()`).
        Network failures become Transient; every other status is the caller's to read.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in (1, 2):
            token = await self.access_token()
            seen = self._generation  # no await since access_token(): matches `token`
            request = self._http.build_request(
                method, url, headers={**headers, "Authorization": f"Bearer {token}"}, **kwargs
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                target = request.url.copy_with(query=None, fragment=None)
                raise Transient(f"{method} {target} failed: {type(exc).__name__} {exc!s}") from exc
            if response.status_code != 401:
                return response
            await response.aclose()
            if attempt == 2:
                raise AuthExpired(
                    f"{self.spec.provider} still refuses the access token after a refresh: "
                    "reconnect the account"
                )
            await self._refresh_unless_done(seen)
        raise AssertionError("unreachable")
