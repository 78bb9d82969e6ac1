"""An OAuth 2.0 authorization server with PKCE, served by uvicorn, to test OAuth clients against.

Follows:
- RFC 6749 (OAuth 2.0): §2.3.1 client password (HTTP Basic or client_secret_post,
  never both, §2.3); §3.1.2.3 redirect URI matched by simple string comparison,
  never redirected to when wrong (§4.1.2.1); §3.2 token endpoint: POST, form
  encoded, no repeated parameters; §4.1.1/§4.1.2 authorization request and
  response (`code` + `state`), codes short-lived and single use, a replayed code
  revokes the tokens issued from it (§4.1.2, §10.5); §4.1.2.1 error redirects;
  §4.1.3/§4.1.4 code exchange (redirect_uri must match the authorization
  request's); §5.1 token response with Cache-Control: no-store; §5.2 error
  bodies {"error", "error_description"}, 400, or 401 for invalid_client;
  §6 refresh (scope may only narrow; rotation optional: a new refresh token
  per use, the old one dead — as Microsoft does).
- RFC 7636 (PKCE): §4.1 verifier of 43-128 unreserved characters; §4.2/§4.3 the
  challenge methods a server takes (`pkce_methods`, S256 only by default: `plain`
  refused) and a missing code_challenge_method meaning `plain`; §4.4.1
  invalid_request when the server requires PKCE (`pkce_required`, the default) and
  no challenge came; §4.5/§4.6 the verifier checked at /token against the
  challenge of the code's own authorization request, mismatch = invalid_grant.
- RFC 9700 (OAuth 2.0 Security BCP) §4.8.2: a code_verifier for a code whose
  authorization request had no code_challenge is refused (PKCE downgrade).
- RFC 6750 (Bearer): §2.1 Authorization header; §3 and §3.1 a 401 with
  `WWW-Authenticate: Bearer error="invalid_token"` for an expired or unknown token.

Fault knobs: revoke every refresh token, expire every access token, fail the next
N token calls with 503 or 429 + Retry-After, slow token answers down.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.emulators.serving import BackgroundServer, Emulator

_UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]{43,128}")  # RFC 7636 §4.1 / §4.2


@dataclass
class Client:
    client_id: str
    redirect_uris: list[str]
    secret: str | None = None  # None: a public client (PKCE only, like Dropbox)


@dataclass
class _Pending:
    """An authorization request waiting on the consent page."""

    client_id: str
    redirect_uri: str
    redirect_given: bool
    scope: str
    state: str | None
    challenge: str | None  # None: the request came without PKCE (where that is allowed)
    method: str  # the code_challenge_method: "S256" or "plain"
    params: dict[str, str]  # the authorization request's query, for vendor parameters


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    redirect_given: bool
    scope: str
    challenge: str | None
    method: str
    params: dict[str, str]
    expires: float
    used: bool = False
    issued: set[str] = field(default_factory=set)  # tokens to revoke on replay (§4.1.2)


@dataclass
class _Token:
    client_id: str
    scope: str
    expires: float  # access tokens only; refresh tokens live until revoked
    active: bool = True
    origin: str = ""  # the code it descends from


class OAuthEmulator(Emulator):
    """One authorization server; `with OAuthEmulator() as server:` runs it on a free port."""

    def __init__(
        self,
        *,
        clients: list[Client] | None = None,
        email: str = "owner@example.com",
        access_token_ttl: float = 3600,
        code_ttl: float = 60,
        rotate_refresh_tokens: bool = True,
        auto_approve: bool = False,
        allowed_scopes: set[str] | None = None,
        pkce_required: bool = True,
        pkce_methods: set[str] | frozenset[str] = frozenset({"S256"}),
    ) -> None:
        if not pkce_methods or not set(pkce_methods) <= {"S256", "plain"}:
            raise ValueError("pkce_methods: S256 and/or plain (RFC 7636 §4.2)")
        self.clients = {c.client_id: c for c in clients or []}
        self.email = email
        self.access_token_ttl = access_token_ttl
        self.code_ttl = code_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.auto_approve = auto_approve  # /authorize redirects at once, no consent page
        self.allowed_scopes = allowed_scopes
        self.pkce_required = pkce_required  # False: a request without code_challenge is served
        self.pkce_methods = frozenset(pkce_methods)
        self.token_delay = 0.0  # seconds each /token answer waits (widens races)
        self.calls: Counter[str] = Counter()  # "authorization_code", "refresh_token", "userinfo"
        self.token_requests: list[dict[str, str]] = []  # form bodies as received
        self._lock = threading.Lock()  # knobs run on the test's thread, handlers on uvicorn's
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._failures: list[tuple[int, float | None]] = []
        self.app = Starlette(
            routes=[
                Route("/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", self._userinfo, methods=["GET"]),
            ]
        )
        self._server = BackgroundServer(self.app, "oauth-emulator")
        self.base_url = ""  # set by start(), or by a resource server that mounts this app

    # ------------------------------------------------------------ knobs

    def add_client(self, client: Client) -> Client:
        with self._lock:
            self.clients[client.client_id] = client
        return client

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token dies (the user revoked the app, or a password reset)."""
        with self._lock:
            for token in self._refresh.values():
                token.active = False

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired, whatever the client thinks."""
        with self._lock:
            for token in self._access.values():
                token.expires = 0

    def fail_token_calls(
        self, count: int, status: int = 503, retry_after: float | None = None
    ) -> None:
        """The next `count` /token calls answer `status` (429 carries Retry-After)."""
        with self._lock:
            self._failures.extend([(status, retry_after)] * count)

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token minted so far (for leak checks)."""
        with self._lock:
            return [*self._access, *self._refresh]

    def refresh_token_is_active(self, token: str) -> bool:
        with self._lock:
            found = self._refresh.get(token)
            return bool(found and found.active)

    def authorization_request(self, code: str) -> dict[str, str]:
        """The query of the authorization request that `code` answered ({} when unknown).

        For resource servers that honour vendor parameters at the code exchange
        (Google's access_type and prompt): the flow is keyed by its code.
        """
        with self._lock:
            found = self._codes.get(code)
            return dict(found.params) if found is not None else {}

    def access_token_scope(self, token: str) -> str | None:
        """The scope of a live access token; None when unknown, expired or revoked.

        For resource servers sharing this authorization server (e.g. the Drive emulator).
        """
        with self._lock:
            found = self._access.get(token)
            if found is None or not found.active or found.expires <= time.time():
                return None
            return found.scope

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.base_url}/userinfo"

    # ------------------------------------------------------------ running

    def start(self) -> OAuthEmulator:
        self._server.start()
        self.base_url = self._server.base_url
        return self

    def stop(self) -> None:
        self._server.stop()

    # ------------------------------------------------------------ /authorize

    async def _authorize(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._consent(request)
        q = request.query_params
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            return _page("Unknown client", "client_id is missing or not registered.", 400)
        redirect_uri = q.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri, given = client.redirect_uris[0], False
        else:
            given = True
        if redirect_uri not in client.redirect_uris:
            # §4.1.2.1: never redirect to an unverified URI.
            return _page("Bad redirect_uri", "redirect_uri is not registered for this client.", 400)
        state = q.get("state")

        def fail(error: str, description: str) -> Response:
            return _redirect(redirect_uri, error=error, error_description=description, state=state)

        if q.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        challenge = q.get("code_challenge") or None
        method = q.get("code_challenge_method", "plain")  # RFC 7636 §4.3: plain if absent
        if not challenge:
            if "code_challenge_method" in q:
                return fail("invalid_request", "code_challenge_method without code_challenge")
            if self.pkce_required:
                return fail("invalid_request", "code challenge required")  # RFC 7636 §4.4.1
        elif method not in self.pkce_methods:
            methods = ", ".join(sorted(self.pkce_methods))
            return fail("invalid_request", f"transform algorithm not supported (use {methods})")
        elif not _UNRESERVED.fullmatch(challenge):
            return fail("invalid_request", "malformed code_challenge")
        scope = q.get("scope", "")
        if self.allowed_scopes is not None and not set(scope.split()) <= self.allowed_scopes:
            return fail("invalid_scope", "unknown scope requested")
        pending = _Pending(
            client.client_id, redirect_uri, given, scope, state, challenge, method, dict(q)
        )
        if self.auto_approve:
            return self._approve(pending)
        request_id = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[request_id] = pending
        return _consent_page(request_id, client.client_id, scope, self.email)

    async def _consent(self, request: Request) -> Response:
        form = _parse_form(await request.body())
        with self._lock:
            pending = self._pending.pop(form.get("request", ""), None)
        if pending is None:
            return _page("Expired", "This consent request is unknown or already answered.", 400)
        if form.get("decision") != "allow":
            return _redirect(
                pending.redirect_uri,
                error="access_denied",
                error_description="the user declined",
                state=pending.state,
            )
        return self._approve(pending)

    def _approve(self, pending: _Pending) -> Response:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                client_id=pending.client_id,
                redirect_uri=pending.redirect_uri,
                redirect_given=pending.redirect_given,
                scope=pending.scope,
                challenge=pending.challenge,
                method=pending.method,
                params=pending.params,
                expires=time.time() + self.code_ttl,
            )
        return _redirect(pending.redirect_uri, code=code, state=pending.state)

    # ------------------------------------------------------------ /token

    async def _token(self, request: Request) -> Response:
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
            return _error(
                "temporarily_unavailable" if status >= 500 else "slow_down",
                "injected failure",
                status,
                headers,
            )
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _error("invalid_request", "the body must be application/x-www-form-urlencoded")
        try:
            form = _parse_form(await request.body(), strict=True)
        except ValueError as exc:
            return _error("invalid_request", str(exc))
        self.token_requests.append(form)
        client, failed = self._authenticate(request, form)
        if failed is not None:
            return failed
        assert client is not None
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._grant_code(client, form)
        if grant == "refresh_token":
            return self._grant_refresh(client, form)
        return _error("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _authenticate(
        self, request: Request, form: dict[str, str]
    ) -> tuple[Client | None, Response | None]:
        """§2.3.1: HTTP Basic or client_secret_post (not both); public clients send client_id."""
        header = request.headers.get("authorization", "")
        secret: str | None
        if header.lower().startswith("basic "):
            if "client_secret" in form:
                return None, _error("invalid_request", "more than one client authentication")
            try:
                raw = base64.b64decode(header[6:], validate=True).decode()
                user, _, password = raw.partition(":")
            except ValueError:
                return None, _invalid_client("malformed Basic credentials", basic=True)
            client_id, secret = unquote_plus(user), unquote_plus(password)
            basic = True
        else:
            client_id, secret, basic = form.get("client_id", ""), form.get("client_secret"), False
        if "client_id" in form and form["client_id"] != client_id:
            return None, _error("invalid_request", "client_id does not match the authentication")
        client = self.clients.get(client_id)
        if client is None:
            return None, _invalid_client("unknown client", basic=basic)
        if client.secret is not None and not (
            secret is not None and secrets.compare_digest(secret, client.secret)
        ):
            return None, _invalid_client("client authentication failed", basic=basic)
        return client, None

    def _grant_code(self, client: Client, form: dict[str, str]) -> Response:
        code_value = form.get("code")
        if not code_value:
            return _error("invalid_request", "code is required")
        now = time.time()
        with self._lock:
            code = self._codes.get(code_value)
            if code is None or code.client_id != client.client_id:
                return _error("invalid_grant", "unknown authorization code")
            if code.used:
                # §4.1.2: a replayed code may be stolen; take back what it bought.
                for token in code.issued:
                    for table in (self._access, self._refresh):
                        if token in table:
                            table[token].active = False
                return _error("invalid_grant", "authorization code already used")
            code.used = True
            if code.expires <= now:
                return _error("invalid_grant", "authorization code expired")
            given = form.get("redirect_uri")
            if (code.redirect_given or given is not None) and given != code.redirect_uri:
                return _error("invalid_grant", "redirect_uri does not match the authorization")
            refused = _check_verifier(code, form.get("code_verifier"))
            if refused is not None:
                return refused
            body = self._issue(client.client_id, code.scope, origin=code_value, with_refresh=True)
            code.issued.update({body["access_token"], body["refresh_token"]})
        self.calls["authorization_code"] += 1
        return _tokens(body)

    def _grant_refresh(self, client: Client, form: dict[str, str]) -> Response:
        value = form.get("refresh_token")
        if not value:
            return _error("invalid_request", "refresh_token is required")
        with self._lock:
            old = self._refresh.get(value)
            if old is None or old.client_id != client.client_id:
                return _error("invalid_grant", "unknown refresh token")
            if not old.active:
                return _error("invalid_grant", "refresh token expired or revoked")
            scope = form.get("scope", old.scope)
            if not set(scope.split()) <= set(old.scope.split()):
                return _error("invalid_scope", "scope exceeds what was granted")  # §6
            if self.rotate_refresh_tokens:
                old.active = False
            body = self._issue(
                client.client_id, scope, origin=old.origin, with_refresh=self.rotate_refresh_tokens
            )
        self.calls["refresh_token"] += 1
        return _tokens(body)

    def _issue(
        self, client_id: str, scope: str, *, origin: str, with_refresh: bool
    ) -> dict[str, Any]:
        """Mint tokens (caller holds the lock)."""
        access = secrets.token_urlsafe(32)
        expires = time.time() + self.access_token_ttl
        self._access[access] = _Token(client_id, scope, expires, origin=origin)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(self.access_token_ttl),
            "scope": scope,
        }
        if with_refresh:
            refresh = secrets.token_urlsafe(32)
            self._refresh[refresh] = _Token(client_id, scope, float("inf"), origin=origin)
            body["refresh_token"] = refresh
        return body

    # ------------------------------------------------------------ /userinfo

    async def _userinfo(self, request: Request) -> Response:
        self.calls["userinfo"] += 1
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return _bearer_challenge()  # RFC 6750 §3.1: no error code when no token was sent
        with self._lock:
            token = self._access.get(header[7:].strip())
            valid = token is not None and token.active and token.expires > time.time()
        if not valid:
            return _bearer_challenge("invalid_token", "The access token expired or is unknown")
        return JSONResponse({"email": self.email, "sub": "emulated-user"})


# ---------------------------------------------------------------- helpers


def _check_verifier(code: _Code, verifier: str | None) -> Response | None:
    """RFC 7636 §4.6 against the code's own challenge; RFC 9700 §4.8.2 without one."""
    if code.challenge is None:
        if verifier is None:
            return None
        return _error("invalid_grant", "code_verifier given but the authorization had no PKCE")
    if verifier is None:
        return _error("invalid_request", "code_verifier is required (PKCE)")
    if not _UNRESERVED.fullmatch(verifier):
        return _error("invalid_grant", "malformed code_verifier")
    derived = _s256(verifier) if code.method == "S256" else verifier
    if not secrets.compare_digest(derived, code.challenge):
        return _error("invalid_grant", "PKCE verification failed")
    return None


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _parse_form(body: bytes, *, strict: bool = False) -> dict[str, str]:
    # Parsed by hand: Starlette's form parser needs python-multipart, not installed here.
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    if strict:
        repeated = [k for k, v in parsed.items() if len(v) > 1]
        if repeated:
            raise ValueError(f"parameter {repeated[0]} repeated")  # §3.2
    # §3.2: a parameter sent without a value is as if omitted.
    return {k: v[0] for k, v in parsed.items() if v[0] != ""}


def _redirect(uri: str, **params: str | None) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{query}", status_code=302)


def _error(
    error: str, description: str, status: int = 400, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


def _invalid_client(description: str, *, basic: bool) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="oauth-emulator"'} if basic else None
    return _error("invalid_client", description, 401, headers)


def _tokens(body: dict[str, Any]) -> Response:
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _bearer_challenge(error: str | None = None, description: str | None = None) -> Response:
    value = 'Bearer realm="oauth-emulator"'
    if error:
        value += f', error="{error}", error_description="{description}"'
    return JSONResponse({"error": error or "unauthorized"}, 401, {"WWW-Authenticate": value})


def _page(title: str, message: str, status: int = 200) -> Response:
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>",
        status_code=status,
    )


def _consent_page(request_id: str, client_id: str, scope: str, email: str) -> Response:
    esc = html.escape
    return HTMLResponse(
        "<!doctype html><title>Authorize</title>"
        f"<h1>Allow {esc(client_id)} to access {esc(email)}?</h1>"
        f"<p>Scopes: {esc(scope) or '(none)'}</p>"
        '<form method="post" action="/authorize">'
        f'<input type="hidden" name="request" value="{esc(request_id)}">'
        '<button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button>'
        "</form>"
    )
