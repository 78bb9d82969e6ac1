"""A Dropbox API v2 emulator (files, users, Dropbox's OAuth 2) served over TLS, for tests.

One uvicorn server answers the paths of every Dropbox host: api (RPC and /oauth2/token),
content (download), notify (longpoll) and www (/oauth2/authorize). A request whose Host
header names one of the stand-in host names (`HOSTS`) must use a path of that host; any
other Host (127.0.0.1:port) may use every path, so one base URL serves a client that is
given its endpoints. The official `dropbox` SDK always speaks https and reads its host
names once, at import, from DROPBOX_API_HOST, DROPBOX_API_CONTENT_HOST,
DROPBOX_API_NOTIFY_HOST and DROPBOX_WEB_HOST (dropbox/session.py in
github.com/dropbox/dropbox-sdk-python): `SDK_ENVIRONMENT` names hosts under the reserved
.test domain, `requests_session()` routes them to this server's port and trusts the
throwaway `trustme` CA that signed its certificate.

Written from Dropbox's documents:
- HTTP reference, www.dropbox.com/developers/documentation/http/documentation: RPC
  endpoints take JSON bodies (Content-Type application/json, or text/plain;
  charset=dropbox-cors-hack) and answer JSON; content-download endpoints take their
  argument as JSON in the Dropbox-API-Arg header or the `arg` URL parameter, answer
  the result as JSON in the Dropbox-API-Result header, accept GET as well as POST and
  HTTP Range; `authorization` may come as a URL parameter. Header JSON is ASCII with
  \\uXXXX escapes (JSON encoding page). Routes and their arguments, defaults and bounds
  as the same reference and the API spec the SDK is generated from state them
  (dropbox/files.py validators): list_folder `path` "" for the root (a "/" is refused),
  `recursive` false, `include_deleted` false, `limit` 1..2000 ("approximate"; no
  documented default: the maximum is used); list_folder/continue {cursor};
  list_folder/get_latest_cursor takes list_folder's arguments and answers {cursor};
  list_folder/longpoll {cursor, timeout 30..480 default 30} needs no authorization,
  blocks until a change or the timeout ("plus up to 90 seconds of random jitter": not
  added here) and answers {changes, backoff?}; get_metadata and download take a path,
  an id ("id:..."), a namespace-relative path ("ns:<id>/...") or for download a rev.
  Metadata are tagged `.tag` file / folder / deleted: name, path_lower, path_display,
  id (files and folders), rev (9+ hex digits), size, client_modified, server_modified
  ("%Y-%m-%dT%H:%M:%SZ"), is_downloadable, content_hash.
- The list_folder description: entries in an order a client can apply one by one (a
  folder before what is in it), DeletedMetadata meaning "remove it and all its
  children", the same file possibly listed more than once. Detecting changes (the data
  ingress / "detecting changes" guide): a cursor is the folder at a point in time,
  continue gives what changed since, deletions included; an expired cursor is a 409
  `reset`; a cursor whose folder was deleted is a 409 `path` error. A recursive listing
  of a folder lists that folder first (observed behaviour, not in the reference).
- Content hash, www.dropbox.com/developers/reference/content-hash: SHA-256 of each
  4,194,304-byte block, the raw digests concatenated, SHA-256 of that, hex; no block for
  an empty file. Checked in the self-tests against the SDK's DropboxContentHasher
  (dropbox/content_hash.py, Dropbox's reference hasher).
- Errors (HTTP reference "Errors" and developers.dropbox.com/error-handling-guide): 400
  plain text for bad input ('Error in call to API function "files/list_folder": ...');
  401 JSON AuthError ({"error_summary": "expired_access_token/.", "error": {".tag":
  "expired_access_token"}}, invalid_access_token, missing_scope); 409 JSON with
  error_summary and the route's error union ({"error_summary": "path/not_found/..",
  "error": {".tag": "path", "path": {".tag": "not_found"}}}); 422 PathRootError; 429
  RateLimitError {"reason": {".tag": "too_many_requests"}, "retry_after"} with a
  Retry-After header. The error_summary ends in a varying run of dots (bodies quoted in
  froemken/dropbox#23, owncloud/files_external_dropbox#140, twcloud/tw5-dropbox#17,
  rclone/rclone#1807 and the 429 in dropbox/dropbox-sdk-go-unofficial#33): clients
  must not compare it whole.
- Path roots, www.dropbox.com/developers/reference/path-root-header-modes and
  /namespace-guide: Dropbox-API-Path-Root {".tag": "home"} (the default), {".tag":
  "root", "root": <root_namespace_id>} (a 422 invalid_root carrying the user's
  root_info when it is not the root) and {".tag": "namespace_id", ...} (422
  no_permission for a namespace the user cannot see). A team account with a team space
  has a root namespace (the team space) above its home namespace (the member folder,
  root_info.home_path); users/get_current_account answers FullAccount with root_info
  tagged team or user.
- OAuth, www.dropbox.com/developers/documentation/http/documentation#oauth2-authorize
  and #oauth2-token, developers.dropbox.com/oauth-guide and dropbox.tech "Using OAuth
  2.0 with offline access": code flow on www/oauth2/authorize; PKCE (S256 or plain)
  lets a client exchange the code and refresh without the app secret, otherwise the
  secret is required; token_access_type=offline adds a refresh token, online (or none)
  does not; access tokens are short-lived ("sl." prefix, expires_in 14400 by default);
  a refresh answers {access_token, token_type "bearer", expires_in} and no new refresh
  token; errors {"error", "error_description"} with status 400 — "refresh token is
  invalid or revoked" quoted in nextcloud/integration_dropbox#34, "No auth function
  available for given request" when neither secret nor PKCE came. auth/token/revoke
  disables the token and its refresh token. The RFC mechanics come from OAuthEmulator
  (tests/emulators/oauth_server.py), mounted on the same port.

Wordings not found in Dropbox's documents are the emulator's own (the wrong-host 400,
the detail after "request body:" in a 400, invalid_client's description).

Not modelled: uploads and every write route, search, shared links, media info, ETag and
If-None-Match, the no-redirect OAuth flow (code shown on a page), legacy long-lived
tokens, team (business-admin) routes and Dropbox-API-Select-User, app folders.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

import requests
import trustme
from requests.adapters import HTTPAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from tests.emulators.oauth_server import Client, OAuthEmulator
from tests.emulators.serving import BackgroundServer, Emulator, FileBody

BLOCK = 4 * 1024 * 1024  # content-hash block size
API, CONTENT, NOTIFY, WWW = "api", "content", "notify", "www"
# Stand-ins for api.dropboxapi.com, content.dropboxapi.com, notify.dropboxapi.com and
# www.dropbox.com: the reserved .test domain never resolves, so nothing reaches Dropbox.
HOSTS = {
    API: "api.dropboxapi.test",
    CONTENT: "content.dropboxapi.test",
    NOTIFY: "notify.dropboxapi.test",
    WWW: "www.dropbox.test",
}
SDK_ENVIRONMENT = {
    "DROPBOX_API_HOST": HOSTS[API],
    "DROPBOX_API_CONTENT_HOST": HOSTS[CONTENT],
    "DROPBOX_API_NOTIFY_HOST": HOSTS[NOTIFY],
    "DROPBOX_WEB_HOST": HOSTS[WWW],
}
SCOPES = frozenset({"account_info.read", "files.metadata.read", "files.content.read"})
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=-]+")
_PATH = re.compile(r"/(.|[\r\n])*", re.S)
_LIST_PATH = re.compile(r"(/(.|[\r\n])*)?|id:.*|(ns:[0-9]+(/(.|[\r\n])*)?)", re.S)
_READ_PATH = re.compile(r"(/(.|[\r\n])*|id:.*)|(rev:[0-9a-f]{9,})|(ns:[0-9]+(/(.|[\r\n])*)?)", re.S)
_REV = re.compile(r"[0-9a-f]{9,}")
_DEFAULT_LIMIT = 2000


def content_hash(data: bytes) -> str:
    """Dropbox's content_hash of `data` (the content-hash reference page's algorithm)."""
    blocks = b"".join(
        hashlib.sha256(data[i : i + BLOCK]).digest() for i in range(0, len(data), BLOCK)
    )
    return hashlib.sha256(blocks).hexdigest()


# ---------------------------------------------------------------- the stored tree


@dataclass(frozen=True, slots=True)
class _Content:
    data: bytes
    content_hash: str

    @classmethod
    def of(cls, data: bytes) -> _Content:
        return cls(data, content_hash(data))


@dataclass(slots=True)
class _Revision:
    rev: str
    content: _Content
    client_modified: float
    server_modified: float


@dataclass(slots=True)
class _Node:
    """A file or folder; `full` is its display path from the root namespace ("" = root)."""

    id: str
    full: str
    folder: bool
    seq: int  # number of its latest change
    revisions: list[_Revision] = field(default_factory=list)  # files: oldest first

    @property
    def name(self) -> str:
        return self.full.rsplit("/", 1)[-1]

    @property
    def current(self) -> _Revision:
        return self.revisions[-1]


@dataclass(slots=True)
class _Tombstone:
    full: str
    seq: int


@dataclass(slots=True)
class _View:
    """Where paths are rooted for one request (the Dropbox-API-Path-Root outcome)."""

    prefix: str  # display path of the namespace's folder from the root namespace
    namespace_id: str


@dataclass(slots=True)
class _Access:
    inner: str  # the OAuthEmulator's token behind the "sl." one
    scope: frozenset[str]
    expires: float
    refresh: str | None
    active: bool = True


@dataclass
class RecordedRequest:
    """One request as received (no Authorization value is kept)."""

    method: str
    host: str
    path: str
    headers: dict[str, str]
    arg: Any = None  # the parsed JSON argument, when it parsed


@dataclass
class _Fault:
    retry_after: int
    reason: str


class _Error(Exception):
    """An answer other than success, raised anywhere under a handler."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


# ---------------------------------------------------------------- the emulator


class DropboxEmulator(Emulator):
    """One Dropbox account; `with DropboxEmulator(...) as dbx:` serves it over TLS."""

    def __init__(
        self,
        *,
        app_key: str,
        app_secret: str,
        redirect_uris: list[str],
        email: str = "owner@example.com",
        display_name: str = "Emulated Owner",
        team: bool = False,
        access_token_ttl: int = 14400,
        app_scopes: frozenset[str] = SCOPES,
    ) -> None:
        self.app_key, self.app_secret = app_key, app_secret
        self.email, self.display_name, self.team = email, display_name, team
        self.access_token_ttl = access_token_ttl
        self.app_scopes = frozenset(app_scopes)
        self.account_id = "dbid:" + _b64(secrets.token_bytes(27))[:35]
        self.uid = str(secrets.randbelow(10**9) + 10**9)
        self.home_namespace_id = str(secrets.randbelow(10**10) + 10**10)
        self.root_namespace_id = (
            str(secrets.randbelow(10**10) + 10**10) if team else self.home_namespace_id
        )
        # A team account's home (its member folder) sits under the team space's root.
        self.home_path = f"/{display_name}" if team else ""
        self.oauth = OAuthEmulator(
            clients=[Client(app_key, list(redirect_uris), secret=None)],
            email=email,
            access_token_ttl=access_token_ttl,
            auto_approve=True,
            rotate_refresh_tokens=False,  # Dropbox refresh tokens live until revoked
            allowed_scopes=set(self.app_scopes),
            pkce_required=False,  # the app secret works instead
            pkce_methods={"S256", "plain"},
        )
        oauth_routes = {
            route.path: cast(Callable[[Request], Awaitable[Response]], route.endpoint)
            for route in self.oauth.app.routes
            if isinstance(route, Route)
        }
        self._oauth_authorize = oauth_routes["/authorize"]
        self._oauth_token = oauth_routes["/token"]
        self.requests: list[RecordedRequest] = []
        self.longpoll_wait: float | None = None  # seconds a longpoll waits (None: its timeout)
        self.longpoll_backoff: int | None = None  # added to every longpoll answer while set
        self._lock = threading.RLock()  # knobs run on the test's thread, handlers on uvicorn's
        self._nodes: dict[str, _Node] = {}  # lower-cased full path -> node
        self._ids: dict[str, str] = {}  # id -> lower-cased full path
        self._deleted: dict[str, _Tombstone] = {}
        self._seq = 0
        self._generation = 1  # in every cursor; raising it resets them all
        self._access: dict[str, _Access] = {}
        self._pkce_refresh: set[str] = set()  # refresh tokens from PKCE flows (no secret needed)
        self._dead_refresh: set[str] = set()
        self._faults: list[_Fault] = []
        self._cut_after: int | None = None
        self._corrupt = False
        self._summaries = 0
        self._stopping = False
        self._tmp: Path | None = None
        self.ca = trustme.CA()
        self.ca_file = Path()
        if team:
            self._mkdirs(self.home_path)
        self.app = Starlette(
            routes=[
                Route("/oauth2/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/oauth2/token", self._token, methods=["POST"]),
                Route(
                    "/2/auth/token/revoke",
                    self._rpc(API, self._revoke, scope=None),
                    methods=["POST"],
                ),
                Route(
                    "/2/users/get_current_account",
                    self._rpc(API, self._current_account, scope="account_info.read"),
                    methods=["POST"],
                ),
                Route("/2/files/list_folder", self._rpc(API, self._list_folder), methods=["POST"]),
                Route(
                    "/2/files/list_folder/continue",
                    self._rpc(API, self._continue),
                    methods=["POST"],
                ),
                Route(
                    "/2/files/list_folder/get_latest_cursor",
                    self._rpc(API, self._latest_cursor),
                    methods=["POST"],
                ),
                Route(
                    "/2/files/list_folder/longpoll",
                    self._rpc(NOTIFY, self._longpoll, auth=False),
                    methods=["POST"],
                ),
                Route(
                    "/2/files/get_metadata", self._rpc(API, self._get_metadata), methods=["POST"]
                ),
                Route(
                    "/2/files/download",
                    self._rpc(CONTENT, self._download, scope="files.content.read"),
                    methods=["GET", "POST"],
                ),
            ]
        )
        self._server = BackgroundServer(self.app, "dropbox-emulator")

    # ------------------------------------------------------------ running

    @property
    def base_url(self) -> str:
        """https://127.0.0.1:<port>: every host's paths."""
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> DropboxEmulator:
        self._tmp = Path(tempfile.mkdtemp(prefix="dropbox-emulator-"))
        cert = self.ca.issue_cert("127.0.0.1", "localhost", *HOSTS.values())
        pem = self._tmp / "server.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
        self.ca_file = self._tmp / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self._stopping = False
        self._server.start(certfile=pem, keyfile=pem)
        self.oauth.base_url = self._server.base_url
        return self

    def stop(self) -> None:
        self._stopping = True  # waiting longpolls answer at once
        self._drop_connections()
        self._server.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _drop_connections(self) -> None:
        """Abort every open connection: a kept-alive TLS connection (a client's pool, a
        response an exception still holds) keeps uvicorn's shutdown waiting until its
        close_notify times out, well past BackgroundServer's ten seconds."""
        server = self._server._server  # the uvicorn.Server while running
        if server is None:
            return
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                connection.loop.call_soon_threadsafe(transport.abort)
        deadline = time.monotonic() + 2
        while server.server_state.connections and time.monotonic() < deadline:
            time.sleep(0.01)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this emulator's CA (for httpx)."""
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=str(self.ca_file))
        return context

    def requests_session(self) -> requests.Session:
        """A requests session for the SDK: the stand-in hosts reach this server, verified
        against its CA; any other host is refused, so nothing leaks to the network."""
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment
        session.verify = str(self.ca_file)
        adapter = _ToEmulator(self._server.port)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    # ------------------------------------------------------------ content knobs
    # Paths are as the user sees them by default (the home namespace); team_space=True
    # takes them from the team space's root instead.

    def add_folder(self, path: str, *, team_space: bool = False) -> str:
        with self._lock:
            return self._mkdirs(self._full(path, team_space)).id

    def add_file(
        self,
        path: str,
        data: bytes,
        *,
        client_modified: datetime | None = None,
        team_space: bool = False,
    ) -> str:
        """A new file, or a new revision of the file at `path`; parents are created."""
        return self._put(self._full(path, team_space), _Content.of(data), client_modified)

    def add_many(
        self, folder: str, count: int, size: int = 0, *, name_format: str = "clip-{:06d}.mp4"
    ) -> list[str]:
        """`count` files sharing one content (scale tests: memory stays flat)."""
        content = _Content.of(os.urandom(size))
        base = self._full(folder, False)
        return [self._put(f"{base}/{name_format.format(i)}", content, None) for i in range(count)]

    def move(self, path: str, new_path: str, *, team_space: bool = False) -> None:
        """Rename or move a file or folder (with all under it)."""
        old, new = self._full(path, team_space), self._full(new_path, team_space)
        with self._lock:
            node = self._node(old)
            if new.lower() in self._nodes:
                raise ValueError(f"{new_path!r} exists")
            if (new.lower() + "/").startswith(old.lower() + "/"):
                raise ValueError("cannot move a folder into itself")
            parent = self._mkdirs(new.rsplit("/", 1)[0])
            assert parent.folder
            moved = [n for n in self._nodes.values() if _under(n.full, old)]
            moved.sort(key=lambda n: n.full.count("/"))
            for item in moved:
                del self._nodes[item.full.lower()]
                self._bury(item.full)
            assert node in moved
            for item in moved:
                item.full = new + item.full[len(old) :]
                self._place(item)

    def delete(self, path: str, *, team_space: bool = False) -> None:
        """Delete a file or a folder with all under it."""
        full = self._full(path, team_space)
        with self._lock:
            self._node(full)
            gone = [n for n in self._nodes.values() if _under(n.full, full)]
            for item in sorted(gone, key=lambda n: n.full.count("/")):
                del self._nodes[item.full.lower()]
                del self._ids[item.id]
                self._bury(item.full)

    def file_id(self, path: str, *, team_space: bool = False) -> str:
        with self._lock:
            return self._node(self._full(path, team_space)).id

    # ------------------------------------------------------------ fault knobs

    def rate_limit_next(
        self, count: int, *, retry_after: int = 1, reason: str = "too_many_requests"
    ) -> None:
        """The next `count` /2/ requests answer 429 (reason too_many_requests or
        too_many_write_operations) with Retry-After."""
        with self._lock:
            self._faults.extend(_Fault(retry_after, reason) for _ in range(count))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired (401 expired_access_token)."""
        with self._lock:
            for access in self._access.values():
                access.expires = 0

    def revoke_refresh_tokens(self) -> None:
        """Refreshing fails with invalid_grant; live access tokens keep working."""
        self.oauth.revoke_refresh_tokens()

    def revoke_access(self) -> None:
        """The user unlinked the app: every access token is invalid, every refresh dead."""
        with self._lock:
            for access in self._access.values():
                access.active = False
        self.oauth.revoke_refresh_tokens()

    def reset_cursors(self) -> None:
        """Every cursor handed out so far is expired: continue and longpoll answer 409 reset."""
        with self._lock:
            self._generation += 1

    def cut_next_download(self, after_bytes: int) -> None:
        """The next download announces its full length, sends `after_bytes`, hangs up."""
        with self._lock:
            self._cut_after = after_bytes

    def corrupt_next_download(self) -> None:
        """The next download has one byte flipped; size and content_hash stay the true ones."""
        with self._lock:
            self._corrupt = True

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------ store helpers

    def _full(self, path: str, team_space: bool) -> str:
        if path in ("", "/"):
            return "" if team_space else self.home_path
        if not path.startswith("/") or path.endswith("/") or "//" in path:
            raise ValueError(f"bad path {path!r}: /a/b expected")
        return path if team_space else self.home_path + path

    def _node(self, full: str) -> _Node:
        node = self._nodes.get(full.lower())
        if node is None:
            raise KeyError(f"nothing at {full!r}")
        return node

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _place(self, node: _Node) -> None:
        """Store `node` at its path as a new change (lock held)."""
        node.seq = self._next()
        self._nodes[node.full.lower()] = node
        self._ids[node.id] = node.full.lower()
        self._deleted.pop(node.full.lower(), None)

    def _bury(self, full: str) -> None:
        self._deleted[full.lower()] = _Tombstone(full, self._next())

    def _mkdirs(self, full: str) -> _Node:
        """The folder at `full`, made with its parents where missing (lock held)."""
        with self._lock:
            if full == "":
                return _Node("", "", True, 0)
            found = self._nodes.get(full.lower())
            if found is not None:
                if not found.folder:
                    raise ValueError(f"{full!r} is a file")
                return found
            self._mkdirs(full.rsplit("/", 1)[0])
            node = _Node(_new_id(), full, True, 0)
            self._place(node)
            return node

    def _put(self, full: str, content: _Content, client_modified: datetime | None) -> str:
        with self._lock:
            self._mkdirs(full.rsplit("/", 1)[0])
            now = time.time()
            stamp = client_modified.timestamp() if client_modified is not None else now
            node = self._nodes.get(full.lower())
            if node is not None and node.folder:
                raise ValueError(f"{full!r} is a folder")
            if node is None:
                node = _Node(_new_id(), full, False, 0)
            node.revisions.append(_Revision(_new_rev(self._seq + 1), content, stamp, now))
            self._place(node)
            return node.id

    # ------------------------------------------------------------ request plumbing

    def _rpc(
        self,
        host: str,
        handler: Callable[[Request, _View, dict[str, Any]], Awaitable[Response]],
        *,
        auth: bool = True,
        scope: str | None = "files.metadata.read",
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            route = request.url.path.removeprefix("/2/")
            headers = {k: v for k, v in request.headers.items() if k != "authorization"}
            recorded = RecordedRequest(
                request.method, request.headers.get("host", ""), request.url.path, headers
            )
            with self._lock:
                self.requests.append(recorded)
            try:
                self._check_host(request, host)
                with self._lock:
                    fault = self._faults.pop(0) if self._faults else None
                if fault is not None:
                    raise _Error(self._rate_limited(fault))
                if host == CONTENT:
                    arg = _header_arg(request, route)
                else:
                    arg = _body_arg(
                        route, request.headers.get("content-type"), await request.body()
                    )
                recorded.arg = arg
                if auth:
                    request.state.access = self._authorize_call(request, route, scope)
                view = self._path_root(request, route)
                return await handler(request, view, arg)
            except _Error as error:
                return error.response

        return endpoint

    def _check_host(self, request: Request, host: str) -> None:
        name = request.headers.get("host", "").rsplit(":", 1)[0].lower()
        if name in HOSTS.values() and name != HOSTS[host]:
            raise _Error(
                _bad_input(
                    request.url.path.removeprefix("/2/"),
                    f"this function is served by {HOSTS[host]}, not {name}",
                )
            )

    def _summary(self, *tags: str) -> str:
        """An error_summary: the tags, then a varying run of dots as Dropbox sends."""
        with self._lock:
            self._summaries += 1
            dots = "." * (self._summaries % 4)
        return "/".join(tags) + "/" + dots

    def _rate_limited(self, fault: _Fault) -> Response:
        return JSONResponse(
            {
                "error_summary": self._summary(fault.reason),
                "error": {"reason": {".tag": fault.reason}, "retry_after": fault.retry_after},
            },
            429,
            headers={"Retry-After": str(fault.retry_after)},
        )

    def _route_error(self, error: dict[str, Any], *tags: str) -> _Error:
        """409: the route's own error union."""
        return _Error(JSONResponse({"error_summary": self._summary(*tags), "error": error}, 409))

    def _auth_error(self, tag: str, **members: Any) -> _Error:
        return _Error(
            JSONResponse(
                {"error_summary": self._summary(tag), "error": {".tag": tag, **members}}, 401
            )
        )

    def _authorize_call(self, request: Request, route: str, scope: str | None) -> _Access:
        header = request.headers.get("authorization")
        token = request.query_params.get("authorization") if header is None else header
        if token is None:
            raise _Error(
                _bad_input(
                    route,
                    'Must provide HTTP header "Authorization" or URL parameter "authorization".',
                )
            )
        if not token.startswith("Bearer "):
            raise _Error(
                _bad_input(
                    route,
                    f'Invalid authorization value in HTTP header "Authorization": {token[:20]!r}.'
                    '  Expecting "Bearer <oauth2-access-token>".',
                )
            )
        value = token[7:].strip()
        if not _TOKEN_CHARS.fullmatch(value):
            raise _Error(_bad_input(route, "The given OAuth 2 access token is malformed."))
        with self._lock:
            access = self._access.get(value)
        if access is None or not access.active:
            raise self._auth_error("invalid_access_token")
        if access.expires <= time.time():
            raise self._auth_error("expired_access_token")
        if self.oauth.access_token_scope(access.inner) is None:
            # OAuthEmulator took it back (a replayed code); it expires after ours (_token).
            raise self._auth_error("invalid_access_token")
        if scope is not None and scope not in access.scope:
            raise self._auth_error("missing_scope", required_scope=scope)
        return access

    def _path_root(self, request: Request, route: str) -> _View:
        home = _View(self.home_path, self.home_namespace_id)
        raw = request.headers.get("dropbox-api-path-root")
        if raw is None:
            return home
        try:
            root = json.loads(raw)
            tag = root[".tag"]
        except (ValueError, KeyError, TypeError):
            raise _Error(
                _bad_input(route, f'Invalid value for "Dropbox-API-Path-Root" header: {raw!r}')
            ) from None
        namespaces = {
            self.root_namespace_id: _View("", self.root_namespace_id),
            self.home_namespace_id: home,
        }
        if tag == "home":
            return home
        if tag == "root":
            if root.get("root") != self.root_namespace_id:
                raise _Error(
                    JSONResponse(
                        {
                            "error_summary": self._summary("invalid_root"),
                            "error": {".tag": "invalid_root", "invalid_root": self._root_info()},
                        },
                        422,
                    )
                )
            return namespaces[self.root_namespace_id]
        if tag == "namespace_id":
            view = namespaces.get(str(root.get("namespace_id")))
            if view is None:
                raise _Error(
                    JSONResponse(
                        {
                            "error_summary": self._summary("no_permission"),
                            "error": {".tag": "no_permission"},
                        },
                        422,
                    )
                )
            return view
        raise _Error(
            _bad_input(route, f'Invalid value for "Dropbox-API-Path-Root" header: {raw!r}')
        )

    def _root_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            ".tag": "team" if self.team else "user",
            "root_namespace_id": self.root_namespace_id,
            "home_namespace_id": self.home_namespace_id,
        }
        if self.team:
            info["home_path"] = self.home_path
        return info

    # ------------------------------------------------------------ OAuth (Dropbox's rules on top)

    async def _authorize(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method, request.headers.get("host", ""), "/oauth2/authorize", {}
                )
            )
        try:
            self._check_host_oauth(request, WWW)
        except _Error as error:
            return error.response
        if request.method == "GET" and "redirect_uri" not in request.query_params:
            return HTMLResponse(
                "<!doctype html><h1>Not modelled</h1><p>The no-redirect flow (the code shown"
                " on a page) is not emulated: pass a redirect_uri.</p>",
                400,
            )
        return await self._oauth_authorize(request)

    def _check_host_oauth(self, request: Request, host: str) -> None:
        name = request.headers.get("host", "").rsplit(":", 1)[0].lower()
        if name in HOSTS.values() and name != HOSTS[host]:
            raise _Error(PlainTextResponse(f"{request.url.path} is served by {HOSTS[host]}", 400))

    async def _token(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(
                RecordedRequest(
                    request.method, request.headers.get("host", ""), "/oauth2/token", {}
                )
            )
        try:
            self._check_host_oauth(request, API)
        except _Error as error:
            return error.response
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        secret = form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (ValueError, binascii.Error):
                return _oauth_error("invalid_client", "Invalid client_id or client_secret", 400)
            form.setdefault("client_id", user)
        if form.get("client_id") != self.app_key:
            return _oauth_error("invalid_client", "Invalid client_id or client_secret", 400)
        if secret is not None and not secrets.compare_digest(secret, self.app_secret):
            return _oauth_error("invalid_client", "Invalid client_id or client_secret", 400)
        grant = form.get("grant_type")
        refresh = form.get("refresh_token")
        if secret is None:
            pkce = (
                "code_verifier" in form
                if grant == "authorization_code"
                else refresh in self._pkce_refresh
            )
            if grant in ("authorization_code", "refresh_token") and not pkce:
                return _oauth_error(
                    "invalid_request", "No auth function available for given request"
                )
        if grant == "refresh_token" and refresh in self._dead_refresh:
            return _oauth_error("invalid_grant", "refresh token is invalid or revoked")
        asked = (
            self.oauth.authorization_request(form.get("code", ""))
            if grant == "authorization_code"
            else {}
        )
        answer = await self._oauth_token(request)  # the body is cached: it reads it again
        tokens = json.loads(bytes(answer.body))
        if answer.status_code != 200:
            if tokens.get("error") == "invalid_grant":
                tokens["error_description"] = (
                    "refresh token is invalid or revoked"
                    if grant == "refresh_token"
                    else "code doesn't exist or has expired"
                )
            return JSONResponse(tokens, answer.status_code, headers=_NO_STORE)
        scope = frozenset(tokens.get("scope", "").split()) or self.app_scopes
        access = "sl." + tokens["access_token"]
        out: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.access_token_ttl,
            "scope": " ".join(sorted(scope)),
            "uid": self.uid,
            "account_id": self.account_id,
        }
        origin = refresh
        if grant == "authorization_code":
            if asked.get("token_access_type") == "offline":
                out["refresh_token"] = origin = tokens["refresh_token"]
                if "code_verifier" in form:
                    with self._lock:
                        self._pkce_refresh.add(origin)
            else:
                origin = None
        else:
            out.pop("uid")
            out.pop("account_id")
        with self._lock:
            # A second early: ours expires before the OAuthEmulator's (issued just now).
            expires = time.time() + self.access_token_ttl - 1
            self._access[access] = _Access(tokens["access_token"], scope, expires, origin)
        return JSONResponse(out, headers=_NO_STORE)

    async def _revoke(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        access: _Access = request.state.access
        with self._lock:
            family = access.refresh
            for other in self._access.values():
                if other is access or (family is not None and other.refresh == family):
                    other.active = False
            if family is not None:
                self._dead_refresh.add(family)
        return JSONResponse(None)

    # ------------------------------------------------------------ users

    async def _current_account(self, request: Request, view: _View, arg: Any) -> Response:
        given, _, surname = self.display_name.partition(" ")
        account: dict[str, Any] = {
            "account_id": self.account_id,
            "name": {
                "given_name": given,
                "surname": surname,
                "familiar_name": given,
                "display_name": self.display_name,
                "abbreviated_name": "".join(p[0] for p in self.display_name.split() if p),
            },
            "email": self.email,
            "email_verified": True,
            "disabled": False,
            "country": "FR",
            "locale": "en",
            "referral_link": "https://www.dropbox.test/referrals/emulated",
            "is_paired": False,
            "account_type": {".tag": "business" if self.team else "basic"},
            "root_info": self._root_info(),
        }
        if self.team:
            account["team"] = {
                "id": "dbtid:" + self.root_namespace_id,
                "name": "Emulated Team",
                "sharing_policies": {
                    "shared_folder_member_policy": {".tag": "team"},
                    "shared_folder_join_policy": {".tag": "from_anyone"},
                    "shared_link_create_policy": {".tag": "default_team_only"},
                    "group_creation_policy": {".tag": "admins_only"},
                    "shared_folder_link_restriction_policy": {".tag": "anyone"},
                    "enforce_link_password_policy": {".tag": "optional"},
                    "default_link_expiration_days_policy": {".tag": "none"},
                    "shared_link_default_permissions_policy": {".tag": "default"},
                },
                "office_addin_policy": {".tag": "disabled"},
                "top_level_content_policy": {".tag": "admin_only"},
            }
            account["team_member_id"] = "dbmid:" + _b64(secrets.token_bytes(24))[:32]
        return JSONResponse(account)

    # ------------------------------------------------------------ metadata

    def _resolve(self, route: str, view: _View, path: str, field_name: str = "path") -> str:
        """The lower-cased full path an argument names ("" = the view's root); lock held."""
        if path.startswith("id:"):
            full = self._ids.get(path)
            if full is None or not _under(full, view.prefix):
                raise self._route_error(
                    {".tag": field_name, field_name: {".tag": "not_found"}}, field_name, "not_found"
                )
            return full
        if path.startswith("ns:"):
            ns, _, rest = path[3:].partition("/")
            base = {self.root_namespace_id: "", self.home_namespace_id: self.home_path}.get(ns)
            if base is None:
                raise self._route_error(
                    {".tag": field_name, field_name: {".tag": "not_found"}}, field_name, "not_found"
                )
            return (base + ("/" + rest if rest else "")).lower()
        return (view.prefix + path).lower()

    def _metadata(self, node: _Node, view: _View) -> dict[str, Any]:
        shown = node.full[len(view.prefix) :]
        entry: dict[str, Any] = {
            ".tag": "folder" if node.folder else "file",
            "name": node.name,
            "path_lower": shown.lower(),
            "path_display": shown,
            "id": node.id,
        }
        if not node.folder:
            revision = node.current
            entry |= _file_fields(revision)
        return entry

    def _deleted_metadata(self, stone: _Tombstone, view: _View) -> dict[str, Any]:
        shown = stone.full[len(view.prefix) :]
        return {
            ".tag": "deleted",
            "name": stone.full.rsplit("/", 1)[-1],
            "path_lower": shown.lower(),
            "path_display": shown,
        }

    async def _get_metadata(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        route = "files/get_metadata"
        path = _field(route, arg, "path", str, required=True)
        include_deleted = _field(route, arg, "include_deleted", bool, default=False)
        for name in ("include_media_info", "include_has_explicit_shared_members"):
            _field(route, arg, name, bool, default=False)
        if not _READ_PATH.fullmatch(path):
            raise _Error(_pattern_error(route, "path", path, _READ_PATH))
        with self._lock:
            if path.startswith("rev:"):
                found = self._by_rev(path[4:])
                if found is None:
                    raise self._not_found()
                node, revision = found
                entry = self._metadata(node, view) | _file_fields(revision)
                return JSONResponse(entry)
            full = self._resolve(route, view, path)
            if full == view.prefix.lower():
                raise _Error(
                    _bad_input(route, "request body: path: The root folder is unsupported.")
                )
            live = self._nodes.get(full)
            if live is not None and _under(live.full, view.prefix):
                return JSONResponse(self._metadata(live, view))
            stone = self._deleted.get(full)
            if include_deleted and stone is not None and _under(stone.full, view.prefix):
                return JSONResponse(self._deleted_metadata(stone, view))
        raise self._not_found()

    def _not_found(self) -> _Error:
        return self._route_error(
            {".tag": "path", "path": {".tag": "not_found"}}, "path", "not_found"
        )

    def _by_rev(self, rev: str) -> tuple[_Node, _Revision] | None:
        for node in self._nodes.values():
            for revision in node.revisions:
                if revision.rev == rev:
                    return node, revision
        return None

    # ------------------------------------------------------------ listing

    def _list_args(self, route: str, view: _View, arg: dict[str, Any]) -> dict[str, Any]:
        path = _field(route, arg, "path", str, required=True)
        recursive = _field(route, arg, "recursive", bool, default=False)
        include_deleted = _field(route, arg, "include_deleted", bool, default=False)
        for name in (
            "include_media_info",
            "include_has_explicit_shared_members",
            "include_restorable_info",
        ):
            _field(route, arg, name, bool, default=False)
        for name in ("include_mounted_folders", "include_non_downloadable_files"):
            _field(route, arg, name, bool, default=True)
        limit = _field(route, arg, "limit", int, default=None)
        if limit is not None and not 1 <= limit <= 2000:
            raise _Error(
                _bad_input(route, f"request body: limit: {limit} is not within range [1, 2000]")
            )
        if path == "/":
            raise _Error(
                _bad_input(
                    route,
                    "request body: path: Specify the root folder as an empty string"
                    ' rather than as "/".',
                )
            )
        if not _LIST_PATH.fullmatch(path):
            raise _Error(_pattern_error(route, "path", path, _LIST_PATH))
        with self._lock:
            full = self._resolve(route, view, path)
            if full != view.prefix.lower() and full != "":
                node = self._nodes.get(full)
                if node is None or not _under(node.full, view.prefix):
                    raise self._not_found()
                if not node.folder:
                    raise self._route_error(
                        {".tag": "path", "path": {".tag": "not_folder"}}, "path", "not_folder"
                    )
            return {
                "g": self._generation,
                "v": view.prefix,
                "p": full,
                "r": recursive,
                "d": include_deleted,
                "l": limit or _DEFAULT_LIMIT,
                "t": self._seq,  # when the listing began
                "s": 0,  # changes up to here were handed out
            }

    def _in_scope(self, cursor: dict[str, Any], full: str) -> bool:
        lower, base = full.lower(), str(cursor["p"])
        if not _under(full, cursor["v"]):
            return False
        if cursor["r"]:
            itself = lower == base and base != cursor["v"].lower()  # a folder lists itself first
            return itself or _under(lower, base, strict=True)
        return lower.rsplit("/", 1)[0] == base and lower != base

    def _page(self, cursor: dict[str, Any]) -> dict[str, Any]:
        """Everything in scope changed after the cursor, oldest change first (lock held)."""
        view = _View(cursor["v"], "")
        picked: list[tuple[int, dict[str, Any]]] = []
        for node in self._nodes.values():
            if node.seq > cursor["s"] and self._in_scope(cursor, node.full):
                picked.append((node.seq, self._metadata(node, view)))
        for stone in self._deleted.values():
            wanted = stone.seq > cursor["t"] or cursor["d"]  # old deletions: include_deleted
            if stone.seq > cursor["s"] and wanted and self._in_scope(cursor, stone.full):
                picked.append((stone.seq, self._deleted_metadata(stone, view)))
        picked.sort(key=lambda pair: pair[0])
        page = picked[: cursor["l"]]
        has_more = len(picked) > len(page)
        position = page[-1][0] if has_more else max(self._seq, cursor["s"])
        return {
            "entries": [entry for _, entry in page],
            "cursor": _encode_cursor(cursor | {"s": position}),
            "has_more": has_more,
        }

    def _cursor(self, route: str, arg: dict[str, Any], *, folder: bool = True) -> dict[str, Any]:
        """The decoded cursor; 409 reset once expired, 409 path when its folder is gone
        (`folder`: longpoll's error union has no path member, it reports the change)."""
        raw = _field(route, arg, "cursor", str, required=True)
        try:
            cursor = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
            if not isinstance(cursor, dict) or set(cursor) != set("gvprdlts"):
                raise ValueError(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise _Error(_bad_input(route, f'Invalid "cursor" parameter: {raw[:40]!r}')) from None
        with self._lock:
            if cursor["g"] != self._generation:
                raise self._route_error({".tag": "reset"}, "reset")
            base = cursor["p"]
            gone = base not in self._nodes and base not in ("", cursor["v"].lower())
            if folder and gone:
                raise self._not_found()  # the cursor's folder was deleted
        return cast(dict[str, Any], cursor)

    async def _list_folder(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        cursor = self._list_args("files/list_folder", view, arg)
        with self._lock:
            return JSONResponse(self._page(cursor))

    async def _continue(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        cursor = self._cursor("files/list_folder/continue", arg)
        with self._lock:
            return JSONResponse(self._page(cursor))

    async def _latest_cursor(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        cursor = self._list_args("files/list_folder/get_latest_cursor", view, arg)
        with self._lock:
            cursor |= {"s": self._seq, "t": self._seq}
        return JSONResponse({"cursor": _encode_cursor(cursor)})

    async def _longpoll(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        route = "files/list_folder/longpoll"
        timeout = _field(route, arg, "timeout", int, default=30)
        if not 30 <= timeout <= 480:
            raise _Error(
                _bad_input(route, f"request body: timeout: {timeout} is not within range [30, 480]")
            )
        cursor = self._cursor(route, arg, folder=False)
        wait = timeout if self.longpoll_wait is None else self.longpoll_wait
        deadline = time.monotonic() + wait
        changes = False
        while True:
            with self._lock:
                if cursor["g"] != self._generation:
                    raise self._route_error({".tag": "reset"}, "reset")
                if self._seq > cursor["s"]:
                    changes = bool(self._page(cursor | {"l": 1})["entries"])
            if changes or self._stopping or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.02)
        body: dict[str, Any] = {"changes": changes}
        if self.longpoll_backoff is not None:
            body["backoff"] = self.longpoll_backoff
        return JSONResponse(body)

    # ------------------------------------------------------------ download

    async def _download(self, request: Request, view: _View, arg: dict[str, Any]) -> Response:
        route = "files/download"
        path = _field(route, arg, "path", str, required=True)
        rev = _field(route, arg, "rev", str, default=None)
        if not _READ_PATH.fullmatch(path):
            raise _Error(_pattern_error(route, "path", path, _READ_PATH))
        if rev is not None and not _REV.fullmatch(rev):
            raise _Error(_pattern_error(route, "rev", rev, _REV))
        with self._lock:
            if path.startswith("rev:"):
                rev = path[4:]
                found = self._by_rev(rev)
                if found is None:
                    raise self._not_found()
                node = found[0]
            else:
                full = self._resolve(route, view, path)
                node_or_none = self._nodes.get(full)
                if node_or_none is None or not _under(node_or_none.full, view.prefix):
                    raise self._not_found()
                node = node_or_none
            if node.folder:
                raise self._route_error(
                    {".tag": "path", "path": {".tag": "not_file"}}, "path", "not_file"
                )
            revision = node.current
            if rev is not None:
                old = [r for r in node.revisions if r.rev == rev]
                if not old:
                    raise self._not_found()
                revision = old[0]
            result = self._metadata(node, view) | _file_fields(revision)
            cut, self._cut_after = self._cut_after, None
            corrupt, self._corrupt = self._corrupt, False
        data = revision.content.data
        size = len(data)
        span = _byte_range(request.headers.get("range"), size)
        if isinstance(span, str):  # "unsatisfiable"
            return PlainTextResponse(
                "Requested Range Not Satisfiable", 416, headers={"Content-Range": f"bytes */{size}"}
            )
        start, end = span or (0, size)
        headers = {
            "Dropbox-API-Result": json.dumps(result, ensure_ascii=True),
            "Content-Length": str(end - start),
            "Accept-Ranges": "bytes",
        }
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        flip = (start + end) // 2 if corrupt and end > start else None
        return FileBody(
            data,
            start,
            end,
            cut_after=cut,
            flip_at=flip,
            status_code=206 if span is not None else 200,
            headers=headers,
        )


# ---------------------------------------------------------------- the SDK's way in


class _ToEmulator(HTTPAdapter):
    """Sends requests for the stand-in hosts to 127.0.0.1:<port> with their Host header;
    refuses every other host."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self._port = port

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(request.url or "")
        host = parts.hostname or ""
        if host in HOSTS.values():
            request.url = urlunsplit(
                (parts.scheme, f"127.0.0.1:{self._port}", parts.path, parts.query, "")
            )
            request.headers["Host"] = host
        elif parts.netloc != f"127.0.0.1:{self._port}":
            raise requests.ConnectionError(f"the Dropbox emulator's session refuses {host!r}")
        return super().send(request, *args, **kwargs)


# ---------------------------------------------------------------- downloads


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) of one `bytes=` range, None for the whole file, or "unsatisfiable"."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if match is None or match.group(1) == match.group(2) == "":
        return None  # RFC 9110 §14.2: a range the server does not take is ignored
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        return (max(0, size - suffix), size) if suffix and size else "unsatisfiable"
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(int(last) + 1, size) if last else size


# ---------------------------------------------------------------- helpers

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _under(path: str, base: str, *, strict: bool = False) -> bool:
    """Whether `path` is `base` or below it (case-insensitive); "" is the top."""
    lower, top = path.lower(), base.lower()
    if top == "":
        return lower != "" if strict else True
    return (lower == top and not strict) or lower.startswith(top + "/")


def _file_fields(revision: _Revision) -> dict[str, Any]:
    return {
        "client_modified": _stamp(revision.client_modified),
        "server_modified": _stamp(revision.server_modified),
        "rev": revision.rev,
        "size": len(revision.content.data),
        "is_downloadable": True,
        "content_hash": revision.content.content_hash,
    }


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _new_id() -> str:
    return "id:" + _b64(secrets.token_bytes(16))[:22]


def _new_rev(seq: int) -> str:
    return f"{seq:06x}{secrets.token_hex(3)}"  # 12 hex digits, unique by the change number


def _encode_cursor(cursor: dict[str, Any]) -> str:
    return _b64(json.dumps(cursor, separators=(",", ":")).encode())


def _bad_input(route: str, detail: str) -> Response:
    """400: Dropbox's plain-text answer to a request it cannot take."""
    return PlainTextResponse(f'Error in call to API function "{route}": {detail}', 400)


def _pattern_error(route: str, name: str, value: str, pattern: re.Pattern[str]) -> Response:
    return _bad_input(
        route, f"request body: {name}: {value!r} did not match pattern '{pattern.pattern}'"
    )


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status, _NO_STORE)


_JSON_TYPES = ("application/json", "text/plain; charset=dropbox-cors-hack")


def _body_arg(route: str, content_type: str | None, body: bytes) -> Any:
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind != "application/json" and (content_type or "").lower() != _JSON_TYPES[1]:
        expected = ", ".join(
            f'"{t}"'
            for t in ("application/json", "application/json; charset=utf-8", _JSON_TYPES[1])
        )
        raise _Error(
            _bad_input(
                route,
                f'Bad HTTP "Content-Type" header: "{content_type or ""}".'
                f"  Expecting one of {expected}.",
            )
        )
    text = body.decode("utf-8", "replace").strip()
    if text in ("", "null"):
        return {}
    try:
        arg = json.loads(text)
    except ValueError:
        raise _Error(_bad_input(route, "request body: could not decode input as JSON")) from None
    if not isinstance(arg, dict):
        raise _Error(_bad_input(route, "request body: expected object"))
    return arg


def _header_arg(request: Request, route: str) -> dict[str, Any]:
    raw = request.headers.get("dropbox-api-arg") or request.query_params.get("arg")
    if raw is None:
        raise _Error(
            _bad_input(route, 'Must provide HTTP header "Dropbox-API-Arg" or URL parameter "arg".')
        )
    try:
        arg = json.loads(raw)
    except ValueError:
        raise _Error(
            _bad_input(route, 'HTTP header "Dropbox-API-Arg": could not decode input as JSON')
        ) from None
    if not isinstance(arg, dict):
        raise _Error(_bad_input(route, 'HTTP header "Dropbox-API-Arg": expected object'))
    return arg


def _field(
    route: str,
    arg: dict[str, Any],
    name: str,
    kind: type,
    *,
    required: bool = False,
    default: Any = None,
) -> Any:
    if name not in arg or arg[name] is None:
        if required:
            raise _Error(_bad_input(route, f"request body: missing required field '{name}'"))
        return default
    value = arg[name]
    wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    if wrong:
        raise _Error(
            _bad_input(route, f"request body: {name}: expected {kind.__name__}, got {value!r}")
        )
    return value
