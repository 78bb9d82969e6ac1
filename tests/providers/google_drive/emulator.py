"""A Google Drive v3 emulator (files, changes, shared drives, about + Google's OAuth) for tests.

Written from Google's documents (developers.google.com/workspace/drive/api/...):
- reference/rest/v3: files/list, files/get, changes/list, changes/getStartPageToken,
  drives/list, about/get, and the same API's discovery document (drive.v3.json) for the
  parameter defaults and bounds (files.list and changes.list pageSize 1..1000, default
  100; changes.list pageToken required, includeRemoved default true; drives.list
  pageSize 1..100, default 10) and the File, FileList, Change, ChangeList, Drive,
  DriveList, About and User schemas (int64 members such as size and version are strings,
  times are RFC 3339).
- guides/search-files and guides/ref-search-terms: the q language, `query_term operator
  values`; name and mimeType take contains, =, !=; trashed (and starred) = and !=;
  `'<id>' in parents`; modifiedTime/createdTime compare RFC 3339 dates; clauses joined by
  and/or, negated by not, grouped by parentheses; strings in single quotes, \\' escapes
  a quote. `contains` on name is prefix matching (taken here per word, case-insensitive).
- guides/fields-parameter: partial responses (`a,b`, `a/b`, `a(b,c)`, `*`); without
  fields, files.list and files.get give kind, id, name, mimeType per file; about needs
  fields; an invalid selection is a 400.
- guides/manage-downloads: `GET /files/{id}?alt=media`, `Range: bytes=...` (206 with
  Content-Range), acknowledgeAbuse; only blobs download (fileNotDownloadable otherwise).
- guides/handle-errors: error bodies {"error": {"code", "message", "errors": [{"domain",
  "reason", "message", "location"?, "locationType"?}]}}: 400 invalid / required, 401
  authError (location Authorization, header), 403 userRateLimitExceeded and
  rateLimitExceeded (domain usageLimits), downloadQuotaExceeded, fileNotDownloadable,
  insufficientPermissions, 404 notFound (location fileId), 429 rateLimitExceeded. The
  "status" member follows Google's API error model (cloud.google.com/apis/design/errors:
  401 UNAUTHENTICATED, 403 PERMISSION_DENIED, ...); 416 has no canonical code there
  and carries none.
- The bearer errors as Google's front end words them (bodies quoted in public issue
  threads, e.g. enupal/backup#44, ivanvermeyen/laravel-google-drive-demo#118,
  GoogleCloudPlatform/genai-for-marketing#45): the top-level message is the long
  one ("Request is missing required authentication credential. ...", "Request had
  invalid authentication credentials. ...", "Request had insufficient authentication
  scopes."), errors[0].message the short one ("Login Required.", "Invalid
  Credentials", "Insufficient Permission"). A 416 names no location (a body of 225
  bytes in plexdrive/plexdrive#226: domain, reason and message only).
- guides/about-changes and guides/manage-changes: a start page token, then
  nextPageToken pages until newStartPageToken; each changed file once, in its current
  state; permanent deletion is a change with removed=true and no file.
- guides/enable-shareddrives: supportsAllDrives, includeItemsFromAllDrives, corpora
  (user, drive, allDrives, domain), driveId; shared-drive items are left out of lists
  without the flags and are not found by files.get without supportsAllDrives.
- identity/protocols/oauth2/web-server: authorization code flow; a refresh token only
  with access_type=offline, on the first code exchange or again with prompt=consent;
  refreshing gives no new refresh token. These parameters belong to the authorization
  request the exchanged code answered (the flow is keyed by its code).
- identity/protocols/oauth2/native-app ("OAuth 2.0 for iOS & Desktop Apps"), step 1
  and the authorization parameters: PKCE is recommended, not required
  (code_challenge and code_challenge_method are "Recommended"); code_challenge_method
  defaults to plain when a code_challenge comes without it, and "the only supported
  values for this parameter are S256 or plain". A wrong verifier is invalid_grant.
  The RFC mechanics come from OAuthEmulator (tests/emulators/oauth_server.py), served
  on the same port, configured so.

Not modelled: uploads and writes through the API, shared-drive changes
(changeType "drive"), fullText search, content-hint fields, exports.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.oauth_server import Client, OAuthEmulator
from tests.emulators.serving import BackgroundServer, Emulator, FileBody

FOLDER = "application/vnd.google-apps.folder"
GOOGLE_DOC = "application/vnd.google-apps.document"
_GOOGLE_APPS = "application/vnd.google-apps."

_AUTH = "https://www.googleapis.com/auth/"
DRIVE_READONLY = _AUTH + "drive.readonly"
# Scopes per method, from the reference pages' "Authorization scopes".
_METADATA_SCOPES = frozenset(
    _AUTH + s
    for s in (
        "drive",
        "drive.appdata",
        "drive.file",
        "drive.metadata",
        "drive.metadata.readonly",
        "drive.photos.readonly",
        "drive.readonly",
    )
)
_CONTENT_SCOPES = frozenset(
    _AUTH + s for s in ("drive", "drive.appdata", "drive.file", "drive.readonly")
)
_DRIVES_SCOPES = frozenset(_AUTH + s for s in ("drive", "drive.readonly"))
_GOOGLE_SCOPES = {*_METADATA_SCOPES, "openid", "email", "profile", _AUTH + "userinfo.email"}

_MAX_PAGE_TOKENS = 2000  # remembered files.list / drives.list continuations (oldest dropped)
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_EXPECTED_CREDENTIAL = (
    " Expected OAuth 2 access token, login cookie or other valid authentication credential."
    " See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_ORDER_KEYS = {
    "createdTime",
    "folder",
    "modifiedByMeTime",
    "modifiedTime",
    "name",
    "name_natural",
    "quotaBytesUsed",
    "recency",
    "sharedWithMeTime",
    "starred",
    "viewedByMeTime",
}


# ---------------------------------------------------------------- the stored drive


@dataclass(frozen=True, slots=True)
class _Content:
    """File bytes and their digests; many files may share one (add_many)."""

    data: bytes
    md5: str
    sha1: str
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> _Content:
        return cls(
            data,
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
            hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            hashlib.sha256(data).hexdigest(),
        )


@dataclass(slots=True)
class _Item:
    id: str
    name: str
    mime_type: str
    parent: str | None  # None for My Drive's root and shared drives' roots
    drive_id: str | None  # the shared drive holding it; None in My Drive
    seq: int  # creation order, the default listing order
    created: float
    modified: float
    content: _Content | None = None
    version: int = 1
    trashed: bool = False
    explicitly_trashed: bool = False

    @property
    def is_folder(self) -> bool:
        return self.mime_type == FOLDER

    @property
    def is_blob(self) -> bool:
        return self.content is not None and not self.mime_type.startswith(_GOOGLE_APPS)


@dataclass(slots=True)
class _Change:
    file_id: str
    time: float
    removed: bool
    drive_id: str | None


@dataclass(slots=True)
class _SharedDrive:
    id: str
    name: str
    created: float


@dataclass
class RecordedRequest:
    """One API request as received (the Authorization value is not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    authorized: bool = False  # the bearer token was live and had a fitting scope


@dataclass
class _Fault:
    status: int
    reason: str
    retry_after: float | None


@dataclass
class _Listing:
    """A files.list / drives.list continuation: the matching ids, fixed at page one."""

    signature: str
    ids: list[str]
    offset: int


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        detail: str | None = None,  # errors[0].message where Google words it apart
        domain: str = "global",
        location: str | None = None,
        location_type: str = "parameter",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.detail = message if detail is None else detail
        self.domain, self.location, self.location_type = domain, location, location_type
        self.headers = headers or {}

    def response(self) -> Response:
        detail: dict[str, str] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.detail,
        }
        if self.location is not None:
            detail |= {"locationType": self.location_type, "location": self.location}
        error: dict[str, Any] = {"code": self.status, "message": self.message, "errors": [detail]}
        if self.status in _STATUS:
            error["status"] = _STATUS[self.status]
        return JSONResponse({"error": error}, self.status, headers=self.headers)


def _invalid(location: str, message: str = "Invalid Value") -> _ApiError:
    return _ApiError(400, "invalid", message, location=location)


def _not_found(file_id: str) -> _ApiError:
    return _ApiError(404, "notFound", f"File not found: {file_id}.", location="fileId")


# ---------------------------------------------------------------- the emulator


class DriveEmulator(Emulator):
    """Google Drive for one user; `with DriveEmulator(...) as drive:` serves it on a free port."""

    ROOT = "0AEmulatedMyDriveRootUk9PVA"  # My Drive's root folder id; the API also takes "root"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uris: list[str],
        email: str = "owner@example.com",
        access_token_ttl: float = 3600,
        auto_approve: bool = True,
        display_name: str = "Emulated Owner",
    ) -> None:
        self.client_id = client_id
        self.email = email
        self.display_name = display_name
        # Google keeps a refresh token valid across refreshes (no rotation).
        self.oauth = OAuthEmulator(
            clients=[Client(client_id, list(redirect_uris), secret=client_secret)],
            email=email,
            access_token_ttl=access_token_ttl,
            auto_approve=auto_approve,
            rotate_refresh_tokens=False,
            allowed_scopes=set(_GOOGLE_SCOPES),
            pkce_required=False,  # native-app guide: code_challenge is "Recommended"
            pkce_methods={"S256", "plain"},
        )
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()  # knobs run on the test's thread, handlers on uvicorn's
        self._items: dict[str, _Item] = {}
        self._children: dict[str, dict[str, None]] = {}  # parent id -> ordered child ids
        self._drives: dict[str, _SharedDrive] = {}
        self._log: list[_Change] = []  # change n is self._log[n - 1]
        self._newest: dict[str, int] = {}  # file id -> number of its newest change
        # A page token is a change number plus this; raising it voids every token handed out.
        self._token_shift = 0
        self._listings: OrderedDict[str, _Listing] = OrderedDict()
        self._faults: list[_Fault] = []
        self._cut_after: int | None = None
        self._corrupt = False
        self._quota: set[str] = set()
        self._refresh_granted = False
        self._seq = 0
        now = time.time()
        self._add_item(self.ROOT, "My Drive", FOLDER, None, None, now, now, record=False)
        oauth_routes = {
            route.path: cast(Callable[[Request], Awaitable[Response]], route.endpoint)
            for route in self.oauth.app.routes
            if isinstance(route, Route)
        }
        self._oauth_token = oauth_routes["/token"]
        api = "/drive/v3"
        self.app = Starlette(
            routes=[
                Route("/authorize", oauth_routes["/authorize"], methods=["GET", "POST"]),
                Route("/token", self._token, methods=["POST"]),
                Route("/userinfo", oauth_routes["/userinfo"], methods=["GET"]),
                Route(f"{api}/about", self._api(self._about, _METADATA_SCOPES)),
                Route(f"{api}/files", self._api(self._files_list, _METADATA_SCOPES)),
                Route(f"{api}/files/{{file_id}}", self._api(self._files_get, _METADATA_SCOPES)),
                Route(
                    f"{api}/changes/startPageToken",
                    self._api(self._start_page_token, _METADATA_SCOPES),
                ),
                Route(f"{api}/changes", self._api(self._changes_list, _METADATA_SCOPES)),
                Route(f"{api}/drives", self._api(self._drives_list, _DRIVES_SCOPES)),
            ]
        )
        # One server, one port: the OAuth routes are served next to the API.
        self._server = BackgroundServer(self.app, "drive-emulator")

    # ------------------------------------------------------------ running

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def api_url(self) -> str:
        """Stands in for https://www.googleapis.com."""
        return self.base_url

    def start(self) -> DriveEmulator:
        self._server.start()
        self.oauth.base_url = self._server.base_url  # its authorize_url/token_url point here
        return self

    def stop(self) -> None:
        self._server.stop()

    # ------------------------------------------------------------ content

    def add_folder(self, name: str, parent: str = "root") -> str:
        with self._lock:
            container = self._container(parent)
            now = time.time()
            return self._add_item(
                _new_id(), name, FOLDER, container.id, container.drive_id, now, now
            )

    def add_file(
        self,
        name: str,
        parent: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        modified: datetime | None = None,
    ) -> str:
        mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        content = _Content.of(data)
        with self._lock:
            container = self._container(parent)
            now = time.time()
            stamp = modified.timestamp() if modified is not None else now
            return self._add_item(
                _new_id(),
                name,
                mime,
                container.id,
                container.drive_id,
                min(stamp, now),
                stamp,
                content=content,
            )

    def add_many(
        self, parent: str, count: int, size: int = 0, *, name_format: str = "clip-{:06d}.mp4"
    ) -> list[str]:
        """`count` files sharing one content of `size` bytes (scale tests: memory stays flat)."""
        content = _Content.of(os.urandom(size))
        mime = mimetypes.guess_type(name_format.format(0))[0] or "application/octet-stream"
        with self._lock:
            container = self._container(parent)
            now = time.time()
            return [
                self._add_item(
                    _new_id(),
                    name_format.format(i),
                    mime,
                    container.id,
                    container.drive_id,
                    now,
                    now,
                    content=content,
                )
                for i in range(count)
            ]

    def add_shared_drive(self, name: str) -> str:
        """A shared drive the user belongs to; its id is also its root folder's id."""
        drive_id = "0A" + secrets.token_urlsafe(12) + "Uk9PVA"
        with self._lock:
            now = time.time()
            self._drives[drive_id] = _SharedDrive(drive_id, name, now)
            self._add_item(drive_id, name, FOLDER, None, drive_id, now, now, record=False)
        return drive_id

    def update_file(self, file_id: str, data: bytes) -> None:
        content = _Content.of(data)
        with self._lock:
            item = self._file(file_id)
            item.content, item.modified = content, time.time()
            self._touch(item)

    def rename(self, file_id: str, name: str) -> None:
        with self._lock:
            item = self._file(file_id)
            item.name = name
            self._touch(item)

    def move(self, file_id: str, new_parent: str) -> None:
        with self._lock:
            item = self._file(file_id)
            container = self._container(new_parent)
            if container.id in self._subtree(file_id):
                raise ValueError("cannot move a folder into itself")
            assert item.parent is not None
            self._children[item.parent].pop(file_id, None)
            item.parent = container.id
            self._children.setdefault(container.id, {})[file_id] = None
            changes_drive = item.drive_id != container.drive_id
            for descendant in self._subtree(file_id):
                moved = self._items[descendant]
                moved.drive_id = container.drive_id
                if descendant == file_id or changes_drive:
                    self._touch(moved)

    def trash(self, file_id: str) -> None:
        """Into the trash with all under it (trashed=true; its changes keep removed=false)."""
        with self._lock:
            item = self._file(file_id)
            item.explicitly_trashed = True
            for descendant in self._subtree(file_id):
                trashed = self._items[descendant]
                trashed.trashed = True
                self._touch(trashed)

    def delete(self, file_id: str) -> None:
        """Gone for good, with everything under it: changes with removed=true and no file."""
        with self._lock:
            item = self._file(file_id)
            gone = self._subtree(file_id)
            assert item.parent is not None
            self._children[item.parent].pop(file_id, None)
            for descendant in gone:
                removed = self._items.pop(descendant)
                self._children.pop(descendant, None)
                self._quota.discard(descendant)
                self._record(removed.id, removed.drive_id, removed=True)

    # ------------------------------------------------------------ fault knobs

    def rate_limit_next(
        self,
        count: int,
        *,
        status: int = 403,
        reason: str = "userRateLimitExceeded",
        retry_after: float | None = None,
    ) -> None:
        """The next `count` API requests (not OAuth ones) answer this error.

        429 always carries reason rateLimitExceeded, as Google's error guide shows; a 5xx
        status answers backendError.
        """
        if status == 429:
            reason = "rateLimitExceeded"
        elif status >= 500:
            reason = "backendError"
        with self._lock:
            self._faults.extend(_Fault(status, reason, retry_after) for _ in range(count))

    def expire_access_tokens(self) -> None:
        self.oauth.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        self.oauth.revoke_refresh_tokens()

    def forget_change_tokens(self) -> None:
        """Every page token handed out so far is refused from now on (400 Invalid Value,
        as Drive answers a pageToken it does not know); new ones work."""
        with self._lock:
            self._token_shift += 1_000_000

    def cut_next_download(self, after_bytes: int) -> None:
        """The next alt=media answer announces the full length, sends `after_bytes`, hangs up."""
        with self._lock:
            self._cut_after = after_bytes

    def corrupt_next_download(self) -> None:
        """The next alt=media answer has one byte flipped (md5Checksum stays the true one)."""
        with self._lock:
            self._corrupt = True

    def quota_exceeded(self, file_id: str, on: bool = True) -> None:
        """alt=media for this file answers 403 downloadQuotaExceeded while on."""
        with self._lock:
            if on:
                self._quota.add(file_id)
            else:
                self._quota.discard(file_id)

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------ store helpers (lock held)

    def _add_item(
        self,
        item_id: str,
        name: str,
        mime: str,
        parent: str | None,
        drive_id: str | None,
        created: float,
        modified: float,
        *,
        content: _Content | None = None,
        record: bool = True,
    ) -> str:
        self._seq += 1
        item = _Item(item_id, name, mime, parent, drive_id, self._seq, created, modified, content)
        self._items[item_id] = item
        if parent is not None:
            self._children.setdefault(parent, {})[item_id] = None
        if record:
            self._record(item_id, drive_id, removed=False)
        return item_id

    def _resolve(self, file_id: str) -> str:
        return self.ROOT if file_id == "root" else file_id

    def _container(self, parent: str) -> _Item:
        item = self._items.get(self._resolve(parent))
        if item is None or not item.is_folder:
            raise KeyError(f"no folder or shared drive {parent!r}")
        return item

    def _file(self, file_id: str) -> _Item:
        item = self._items.get(self._resolve(file_id))
        if item is None or item.parent is None:
            raise KeyError(f"no file {file_id!r} (roots cannot be changed)")
        return item

    def _subtree(self, item_id: str) -> list[str]:
        found, stack = [], [item_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(self._children.get(current, ()))
        return found

    def _touch(self, item: _Item) -> None:
        item.version += 1  # Drive: "reflects every change made to the file on the server"
        self._record(item.id, item.drive_id, removed=False)

    def _record(self, file_id: str, drive_id: str | None, *, removed: bool) -> None:
        self._log.append(_Change(file_id, time.time(), removed, drive_id))
        self._newest[file_id] = len(self._log)

    # ------------------------------------------------------------ OAuth (Google's rules on top)

    async def _token(self, request: Request) -> Response:
        form = {
            k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()
        }
        answer = await self._oauth_token(request)  # the body is cached: it reads it again
        if form.get("grant_type") != "authorization_code" or answer.status_code != 200:
            return answer
        # The code's own authorization request says what it asked for (keyed by the code).
        asked = self.oauth.authorization_request(form.get("code", ""))
        prompt = set(asked.get("prompt", "").split())
        with self._lock:
            # web-server guide: offline access gives a refresh token on the first exchange,
            # and again only when the user was asked to consent again.
            offline = asked.get("access_type", "online") == "offline"
            keep = offline and (not self._refresh_granted or "consent" in prompt)
            self._refresh_granted |= keep
        if keep:
            return answer
        body = json.loads(bytes(answer.body))
        body.pop("refresh_token", None)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    # ------------------------------------------------------------ API plumbing

    def _api(
        self,
        handler: Callable[[Request], Awaitable[Response]],
        scopes: frozenset[str],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            headers = {k: v for k, v in request.headers.items() if k != "authorization"}
            recorded = RecordedRequest(
                request.method, request.url.path, dict(request.query_params), headers
            )
            with self._lock:
                self.requests.append(recorded)
                fault = self._faults.pop(0) if self._faults else None
            try:
                if fault is not None:
                    raise _rate_error(fault)
                granted = self._bearer_scopes(request)
                wanted = _CONTENT_SCOPES if request.query_params.get("alt") == "media" else scopes
                if not granted & wanted:
                    raise _ApiError(
                        403,
                        "insufficientPermissions",
                        "Request had insufficient authentication scopes.",
                        detail="Insufficient Permission",
                        headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
                    )
                recorded.authorized = True
                return await handler(request)
            except _ApiError as error:
                return error.response()

        return endpoint

    def _bearer_scopes(self, request: Request) -> set[str]:
        header = request.headers.get("authorization", "")
        realm = 'Bearer realm="https://accounts.google.com/"'
        if not header.lower().startswith("bearer "):
            raise _ApiError(
                401,
                "required",
                "Request is missing required authentication credential." + _EXPECTED_CREDENTIAL,
                detail="Login Required.",
                location="Authorization",
                location_type="header",
                headers={"WWW-Authenticate": realm},
            )
        scope = self.oauth.access_token_scope(header[7:].strip())
        if scope is None:
            raise _ApiError(
                401,
                "authError",
                "Request had invalid authentication credentials." + _EXPECTED_CREDENTIAL,
                detail="Invalid Credentials",
                location="Authorization",
                location_type="header",
                headers={"WWW-Authenticate": f'{realm}, error="invalid_token"'},
            )
        return set(scope.split())

    # ------------------------------------------------------------ about

    async def _about(self, request: Request) -> Response:
        q = request.query_params
        if not q.get("fields"):
            raise _ApiError(
                400,
                "required",
                "The 'fields' parameter is required for this method.",
                location="fields",
            )
        mask = _mask(q, _ABOUT, None)
        with self._lock:
            mine = [i for i in self._items.values() if i.drive_id is None and i.is_blob]
        used = sum(len(i.content.data) for i in mine if i.content is not None)
        in_trash = sum(len(i.content.data) for i in mine if i.content is not None and i.trashed)
        about = {
            "kind": "drive#about",
            "user": self._user(),
            "storageQuota": {
                "limit": str(15 * 1024**3),
                "usage": str(used),
                "usageInDrive": str(used),
                "usageInDriveTrash": str(in_trash),
            },
            "maxUploadSize": str(5 * 1024**4),
            "appInstalled": False,
            "canCreateDrives": True,
        }
        return JSONResponse(_select(about, mask))

    def _user(self) -> dict[str, Any]:
        return {
            "kind": "drive#user",
            "displayName": self.display_name,
            "emailAddress": self.email,
            "me": True,
            "permissionId": "0"
            + str(int(hashlib.sha256(self.email.encode()).hexdigest()[:15], 16)),
        }

    # ------------------------------------------------------------ files.list

    async def _files_list(self, request: Request) -> Response:
        q = request.query_params
        mask = _mask(q, _FILE_LIST, _DEFAULT_FILE_LIST)
        page_size = _int(q, "pageSize", 100, 1, 1000)
        all_drives = _bool(q, "supportsAllDrives") or _bool(q, "supportsTeamDrives")
        include_shared = all_drives and (
            _bool(q, "includeItemsFromAllDrives") or _bool(q, "includeTeamDriveItems")
        )
        corpora = q.get("corpora") or q.get("corpus") or "user"
        if corpora not in {"user", "drive", "allDrives", "domain"}:
            raise _invalid("corpora")
        drive_id = q.get("driveId") or q.get("teamDriveId")
        if (corpora == "drive") != (drive_id is not None):
            raise _invalid(
                "driveId",
                "The driveId parameter must be specified if and only if corpora is set to drive.",
            )
        if corpora in {"drive", "allDrives"} and not include_shared:
            raise _invalid(
                "includeItemsFromAllDrives",
                "includeItemsFromAllDrives must be set to true when corpora is drive or allDrives.",
            )
        spaces = set((q.get("spaces") or "drive").split(","))
        if not spaces <= {"drive", "appDataFolder", "photos"}:
            raise _invalid("spaces")
        order = _order_keys(q.get("orderBy"))
        query = _Query(q.get("q") or "", self.ROOT, self.email)
        signature = json.dumps(
            [q.get("q"), q.get("orderBy"), corpora, drive_id, include_shared, sorted(spaces)]
        )
        with self._lock:
            if drive_id is not None and drive_id not in self._drives:
                raise _ApiError(
                    404, "notFound", f"Shared drive not found: {drive_id}", location="driveId"
                )
            token = q.get("pageToken")
            if token:
                listing = self._listings.get(token)
                if listing is None or listing.signature != signature:
                    raise _invalid("pageToken")
            else:
                ids = self._matching(query, order, include_shared, corpora, drive_id, spaces)
                listing = _Listing(signature, ids, 0)
            page = [
                self._items[i]
                for i in listing.ids[listing.offset : listing.offset + page_size]
                if i in self._items
            ]
            body: dict[str, Any] = {
                "kind": "drive#fileList",
                "incompleteSearch": False,
                "files": [self._file_json(item) for item in page],
            }
            end = listing.offset + page_size
            if end < len(listing.ids):
                body["nextPageToken"] = self._remember(_Listing(signature, listing.ids, end))
        return JSONResponse(_select(body, mask))

    def _matching(
        self,
        query: _Query,
        order: list[tuple[str, bool]],
        include_shared: bool,
        corpora: str,
        drive_id: str | None,
        spaces: set[str],
    ) -> list[str]:
        if "drive" not in spaces or corpora == "domain":
            return []  # nothing in appDataFolder/photos, nothing shared to a domain here
        if query.parents is not None:  # `'x' in parents and ...`: look at x's children only
            candidates: Iterable[_Item] = (
                self._items[c] for p in query.parents for c in self._children.get(p, ())
            )
        else:
            candidates = self._items.values()
        found = [
            item
            for item in candidates
            if item.parent is not None
            and (
                item.drive_id == drive_id
                if corpora == "drive"
                else item.drive_id is None or include_shared
            )
            and query.matches(item)
        ]
        found.sort(key=lambda item: item.seq)
        for key, descending in reversed(order):
            found.sort(key=_sort_key(key), reverse=descending)
        return [item.id for item in found]

    def _remember(self, listing: _Listing) -> str:
        token = secrets.token_urlsafe(24)
        self._listings[token] = listing
        while len(self._listings) > _MAX_PAGE_TOKENS:
            self._listings.popitem(last=False)
        return token

    def _file_json(self, item: _Item) -> dict[str, Any]:
        """The full File resource (callers cut it down with the fields mask)."""
        blob = item.is_blob
        resource: dict[str, Any] = {
            "kind": "drive#file",
            "id": item.id,
            "name": item.name,
            "mimeType": item.mime_type,
            "starred": False,
            "trashed": item.trashed,
            "explicitlyTrashed": item.explicitly_trashed,
            "spaces": ["drive"],
            "version": str(item.version),
            "createdTime": _rfc3339(item.created),
            "modifiedTime": _rfc3339(item.modified),
            "viewedByMe": False,
            "shared": False,
            "ownedByMe": item.drive_id is None,
            "capabilities": {
                "canDownload": blob,
                "canListChildren": item.is_folder,
                "canEdit": True,
                "canTrash": True,
            },
        }
        if item.parent is not None:
            resource["parents"] = [item.parent]
        if item.drive_id is not None:
            resource["driveId"] = item.drive_id
            resource["teamDriveId"] = item.drive_id
        else:
            resource["owners"] = [self._user()]
        if item.content is not None:
            size = str(len(item.content.data))
            resource |= {"size": size, "quotaBytesUsed": size if blob else "0"}
        if blob:
            assert item.content is not None
            extension = item.name.rpartition(".")[2] if "." in item.name else ""
            resource |= {
                "md5Checksum": item.content.md5,
                "sha1Checksum": item.content.sha1,
                "sha256Checksum": item.content.sha256,
                "originalFilename": item.name,
                "headRevisionId": f"rev{item.version}",
            }
            if extension:
                resource |= {"fileExtension": extension, "fullFileExtension": extension}
        return resource

    # ------------------------------------------------------------ files.get

    async def _files_get(self, request: Request) -> Response:
        q = request.query_params
        alt = q.get("alt", "json")
        if alt not in {"json", "media"}:
            raise _invalid("alt")
        file_id = self._resolve(request.path_params["file_id"])
        all_drives = _bool(q, "supportsAllDrives") or _bool(q, "supportsTeamDrives")
        _bool(q, "acknowledgeAbuse")  # validated; no file here is flagged as abusive
        with self._lock:
            item = self._items.get(file_id)
            if item is None or (item.drive_id is not None and not all_drives):
                raise _not_found(request.path_params["file_id"])
            if alt == "json":
                return JSONResponse(_select(self._file_json(item), _mask(q, _FILE, _DEFAULT_FILE)))
            return self._download(item, request.headers.get("range"))

    def _download(self, item: _Item, range_header: str | None) -> Response:
        if not item.is_blob:
            raise _ApiError(
                403,
                "fileNotDownloadable",
                "Only files with binary content can be downloaded."
                " Use Export with Docs Editors files.",
                location="alt",
            )
        if item.id in self._quota:
            raise _ApiError(
                403,
                "downloadQuotaExceeded",
                "The download quota for this file has been exceeded.",
                domain="usageLimits",
            )
        assert item.content is not None
        data = item.content.data
        size = len(data)
        span = _byte_range(range_header, size)
        start, end = span or (0, size)
        headers = {"Content-Length": str(end - start), "Accept-Ranges": "bytes"}
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        cut, self._cut_after = self._cut_after, None
        flip = None
        if self._corrupt and end > start:
            self._corrupt, flip = False, (start + end) // 2
        return FileBody(
            data,
            start,
            end,
            cut_after=cut,
            flip_at=flip,
            status_code=206 if span is not None else 200,
            headers=headers,
            media_type=item.mime_type,
        )

    # ------------------------------------------------------------ changes

    async def _start_page_token(self, request: Request) -> Response:
        q = request.query_params
        mask = _mask(q, _START_PAGE_TOKEN, None)
        drive_id = q.get("driveId") or q.get("teamDriveId")
        with self._lock:
            if drive_id is not None and drive_id not in self._drives:
                raise _ApiError(
                    404, "notFound", f"Shared drive not found: {drive_id}", location="driveId"
                )
            token = str(len(self._log) + 1 + self._token_shift)
        return JSONResponse(
            _select({"kind": "drive#startPageToken", "startPageToken": token}, mask)
        )

    async def _changes_list(self, request: Request) -> Response:
        q = request.query_params
        mask = _mask(q, _CHANGE_LIST, _DEFAULT_CHANGE_LIST)
        raw = q.get("pageToken")
        if not raw:
            raise _ApiError(400, "required", "Required parameter: pageToken", location="pageToken")
        page_size = _int(q, "pageSize", 100, 1, 1000)
        include_removed = _bool(q, "includeRemoved", default=True)
        all_drives = _bool(q, "supportsAllDrives") or _bool(q, "supportsTeamDrives")
        include_shared = all_drives and (
            _bool(q, "includeItemsFromAllDrives") or _bool(q, "includeTeamDriveItems")
        )
        my_drive_only = _bool(q, "restrictToMyDrive")
        _bool(q, "includeCorpusRemovals")
        drive_id = q.get("driveId") or q.get("teamDriveId")
        spaces = set((q.get("spaces") or "drive").split(","))
        if not spaces <= {"drive", "appDataFolder", "photos"}:
            raise _invalid("spaces")
        with self._lock:
            end = len(self._log)
            if not raw.isdigit() or not 1 <= int(raw) - self._token_shift <= end + 1:
                raise _invalid("pageToken")
            if drive_id is not None and drive_id not in self._drives:
                raise _ApiError(
                    404, "notFound", f"Shared drive not found: {drive_id}", location="driveId"
                )

            def wanted(seq: int) -> bool:
                entry = self._log[seq - 1]
                if self._newest[entry.file_id] != seq or "drive" not in spaces:
                    return False  # only each file's newest change is listed
                if entry.removed and not include_removed:
                    return False
                if drive_id is not None:
                    return entry.drive_id == drive_id
                return entry.drive_id is None or (include_shared and not my_drive_only)

            picked: list[int] = []
            seq = int(raw) - self._token_shift
            while seq <= end and len(picked) < page_size:
                if wanted(seq):
                    picked.append(seq)
                seq += 1
            while seq <= end and not wanted(seq):
                seq += 1
            body: dict[str, Any] = {
                "kind": "drive#changeList",
                "changes": [self._change_json(self._log[n - 1]) for n in picked],
            }
            if seq <= end:
                body["nextPageToken"] = str(seq + self._token_shift)
            else:
                body["newStartPageToken"] = str(end + 1 + self._token_shift)
        return JSONResponse(_select(body, mask))

    def _change_json(self, entry: _Change) -> dict[str, Any]:
        change: dict[str, Any] = {
            "kind": "drive#change",
            "changeType": "file",
            "type": "file",
            "time": _rfc3339(entry.time),
            "removed": entry.removed,
            "fileId": entry.file_id,
        }
        if entry.drive_id is not None:
            change["driveId"] = entry.drive_id
        item = self._items.get(entry.file_id)
        if not entry.removed and item is not None:
            change["file"] = self._file_json(item)  # the file's current state
        return change

    # ------------------------------------------------------------ drives.list

    async def _drives_list(self, request: Request) -> Response:
        q = request.query_params
        mask = _mask(q, _DRIVE_LIST, _DEFAULT_DRIVE_LIST)
        page_size = _int(q, "pageSize", 10, 1, 100)
        _bool(q, "useDomainAdminAccess")
        if q.get("q"):
            raise _invalid("q", "This emulator does not search shared drives (q is not modelled).")
        with self._lock:
            token = q.get("pageToken")
            if token:
                listing = self._listings.get(token)
                if listing is None or listing.signature != "drives":
                    raise _invalid("pageToken")
            else:
                listing = _Listing("drives", list(self._drives), 0)
            page = [
                self._drives[d]
                for d in listing.ids[listing.offset : listing.offset + page_size]
                if d in self._drives
            ]
            body: dict[str, Any] = {
                "kind": "drive#driveList",
                "drives": [
                    {
                        "kind": "drive#drive",
                        "id": d.id,
                        "name": d.name,
                        "createdTime": _rfc3339(d.created),
                        "hidden": False,
                        "capabilities": {"canDownload": True, "canListChildren": True},
                    }
                    for d in page
                ],
            }
            end = listing.offset + page_size
            if end < len(listing.ids):
                body["nextPageToken"] = self._remember(_Listing("drives", listing.ids, end))
        return JSONResponse(_select(body, mask))


# ---------------------------------------------------------------- downloads


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) of one `bytes=` range, or None to send the whole file; 416 if unsatisfiable.

    RFC 9110 §14: a range the server does not understand (other units, several ranges, a
    last position before the first) is ignored.
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        suffix = int(last)
        if suffix and size:
            return max(0, size - suffix), size
        raise _unsatisfiable(size)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _unsatisfiable(size)
    return start, min(int(last) + 1, size) if last else size


def _unsatisfiable(size: int) -> _ApiError:
    return _ApiError(
        416,
        "requestedRangeNotSatisfiable",
        "Request range not satisfiable",
        headers={"Content-Range": f"bytes */{size}"},
    )


# ---------------------------------------------------------------- the q language


class _QueryError(ValueError):
    pass


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^'\\]|\\.)*')|(?P<op>!=|<=|>=|=|<|>|\(|\))|(?P<word>[A-Za-z_][\w.]*))"
)
_Node = tuple[Any, ...]
_STRING_TERMS = {"name", "mimeType"}
_BOOL_TERMS = {"trashed", "starred", "sharedWithMe"}
_TIME_TERMS = {"modifiedTime", "createdTime"}
_COLLECTIONS = {"parents", "owners", "writers", "readers"}


class _Query:
    """A parsed q: `matches(item)`, plus the parent ids an and-chain pins the result to."""

    def __init__(self, text: str, root_id: str, email: str) -> None:
        self._root, self._email = root_id, email
        try:
            self._tokens = _tokenize(text)
            self._pos = 0
            self._tree: _Node | None = None
            if self._tokens:
                self._tree = self._or()
                if self._pos != len(self._tokens):
                    raise _QueryError("trailing input")
        except _QueryError as exc:
            raise _invalid("q") from exc  # Google says only "Invalid Value"
        self.parents = self._pinned(self._tree)

    def matches(self, item: _Item) -> bool:
        return self._tree is None or self._eval(self._tree, item)

    # recursive descent: or < and < not < (group | term)

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._pos] if self._pos < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _QueryError("unexpected end")
        self._pos += 1
        return token

    def _keyword(self, word: str) -> bool:
        token = self._peek()
        if token is not None and token[0] == "word" and token[1].lower() == word:
            self._pos += 1
            return True
        return False

    def _or(self) -> _Node:
        node = self._and()
        while self._keyword("or"):
            node = ("or", node, self._and())
        return node

    def _and(self) -> _Node:
        node = self._not()
        while self._keyword("and"):
            node = ("and", node, self._not())
        return node

    def _not(self) -> _Node:
        if self._keyword("not"):
            return ("not", self._not())
        if self._peek() == ("op", "("):
            self._pos += 1
            node = self._or()
            if self._take() != ("op", ")"):
                raise _QueryError("missing )")
            return node
        return self._term()

    def _term(self) -> _Node:
        kind, value = self._take()
        if kind == "string":  # '<value>' in <collection>
            if not self._keyword("in"):
                raise _QueryError("expected in")
            collection = self._take()
            if collection[0] != "word" or collection[1] not in _COLLECTIONS:
                raise _QueryError("unknown collection")
            return ("in", collection[1], _unquote(value))
        if kind != "word":
            raise _QueryError(f"unexpected {value!r}")
        op_kind, op = self._take()
        if op_kind == "word" and op.lower() == "contains":
            op = "contains"
        elif op_kind != "op" or op in {"(", ")"}:
            raise _QueryError(f"expected an operator after {value}")
        operand_kind, operand = self._take()
        if value in _STRING_TERMS and op in {"contains", "=", "!="} and operand_kind == "string":
            return ("cmp", value, op, _unquote(operand))
        if value in _BOOL_TERMS and op in {"=", "!="} and operand in {"true", "false"}:
            return ("cmp", value, op, operand == "true")
        if (
            value in _TIME_TERMS
            and op in {"<", "<=", "=", "!=", ">", ">="}
            and operand_kind == "string"
        ):
            return ("cmp", value, op, _parse_time(_unquote(operand)))
        raise _QueryError(f"unsupported term {value} {op} {operand}")

    def _pinned(self, node: _Node | None) -> set[str] | None:
        if node is None:
            return None
        if node[0] == "in" and node[1] == "parents":
            return {self._root if node[2] == "root" else node[2]}
        if node[0] == "and":
            return self._pinned(node[1]) or self._pinned(node[2])
        return None

    def _eval(self, node: _Node, item: _Item) -> bool:
        match node:
            case ("or", left, right):
                return self._eval(left, item) or self._eval(right, item)
            case ("and", left, right):
                return self._eval(left, item) and self._eval(right, item)
            case ("not", inner):
                return not self._eval(inner, item)
            case ("in", "parents", wanted):
                return item.parent == (self._root if wanted == "root" else wanted)
            case ("in", _, who):  # owners/writers/readers: the user owns all of My Drive
                return item.drive_id is None and who in {"me", self._email}
            case ("cmp", "name", "contains", wanted):  # prefix matching, per word
                name = item.name.lower()
                return any(w.startswith(wanted.lower()) for w in [name, *name.split()])
            case ("cmp", term, op, wanted):
                return _compare(_term_value(term, item), op, wanted)
        raise AssertionError(node)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise _QueryError(f"cannot read at {position}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def _parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _QueryError(f"bad date {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # ref-search-terms: the default time zone is UTC
    return moment.timestamp()


def _term_value(term: str, item: _Item) -> Any:
    return {
        "name": item.name,
        "mimeType": item.mime_type,
        "trashed": item.trashed,
        "starred": False,
        "sharedWithMe": False,
        "modifiedTime": item.modified,
        "createdTime": item.created,
    }[term]


def _compare(actual: Any, op: str, wanted: Any) -> bool:
    if op == "contains":  # mimeType
        return str(wanted) in str(actual)
    return bool(
        {
            "=": lambda: actual == wanted,
            "!=": lambda: actual != wanted,
            "<": lambda: actual < wanted,
            "<=": lambda: actual <= wanted,
            ">": lambda: actual > wanted,
            ">=": lambda: actual >= wanted,
        }[op]()
    )


def _order_keys(text: str | None) -> list[tuple[str, bool]]:
    keys = []
    for part in (text or "").split(","):
        words = part.split()
        if not words:
            continue
        if words[0] not in _ORDER_KEYS or words[1:] not in ([], ["desc"], ["asc"]):
            raise _invalid("orderBy", f"Invalid sorting: {part.strip()}")
        keys.append((words[0], words[1:] == ["desc"]))
    return keys


def _sort_key(key: str) -> Callable[[_Item], Any]:
    return {
        "folder": lambda i: not i.is_folder,  # folders first when ascending
        "name": lambda i: i.name,
        "name_natural": lambda i: [
            int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", i.name)
        ],
        "createdTime": lambda i: i.created,
        "modifiedTime": lambda i: i.modified,
        "recency": lambda i: i.modified,
        "modifiedByMeTime": lambda i: i.modified,
        "quotaBytesUsed": lambda i: len(i.content.data) if i.content is not None else 0,
    }.get(key, lambda i: 0)


# ---------------------------------------------------------------- fields (partial responses)

_Mask = dict[str, "_Mask | None"]  # None: the whole value
_Schema = dict[str, Any]  # member -> None (scalar) | _OPEN (free-form object) | nested _Schema
_OPEN: _Schema = {}


def _members(names: str, schema: _Schema | None = None) -> _Schema:
    return dict.fromkeys(names.split(), schema)


_USER = _members("kind displayName emailAddress me permissionId photoLink")
_FILE = (
    _members(
        "kind id name mimeType description starred trashed explicitlyTrashed trashedTime "
        "parents properties appProperties spaces version webContentLink webViewLink iconLink "
        "hasThumbnail thumbnailLink thumbnailVersion viewedByMe viewedByMeTime createdTime "
        "modifiedTime modifiedByMeTime modifiedByMe sharedWithMeTime shared ownedByMe driveId "
        "teamDriveId viewersCanCopyContent copyRequiresWriterPermission writersCanShare "
        "permissionIds hasAugmentedPermissions folderColorRgb originalFilename "
        "fullFileExtension fileExtension md5Checksum sha1Checksum sha256Checksum size "
        "quotaBytesUsed headRevisionId isAppAuthorized resourceKey"
    )
    | _members("owners lastModifyingUser sharingUser trashingUser", _USER)
    | _members(
        "capabilities contentHints imageMediaMetadata videoMediaMetadata exportLinks "
        "shortcutDetails contentRestrictions linkShareMetadata labelInfo permissions",
        _OPEN,
    )
)
_DRIVE = _members(
    "kind id name themeId colorRgb backgroundImageLink createdTime hidden orgUnitId"
) | _members("capabilities restrictions backgroundImageFile", _OPEN)
_FILE_LIST = _members("kind nextPageToken incompleteSearch") | {"files": _FILE}
_CHANGE = _members("kind changeType type time removed fileId driveId teamDriveId") | {
    "file": _FILE,
    "drive": _DRIVE,
    "teamDrive": _DRIVE,
}
_CHANGE_LIST = _members("kind nextPageToken newStartPageToken") | {"changes": _CHANGE}
_DRIVE_LIST = _members("kind nextPageToken") | {"drives": _DRIVE}
_START_PAGE_TOKEN = _members("kind startPageToken")
_ABOUT = (
    _members("kind maxUploadSize appInstalled canCreateDrives canCreateTeamDrives")
    | _members("folderColorPalette")
    | {"user": _USER}
    | _members(
        "storageQuota exportFormats importFormats maxImportSizes driveThemes teamDriveThemes",
        _OPEN,
    )
)
# Without `fields`: what guides/fields-parameter says files.list gives, and the like.
_DEFAULT_FILE = "kind,id,name,mimeType"
_DEFAULT_FILE_LIST = f"kind,nextPageToken,incompleteSearch,files({_DEFAULT_FILE})"
_DEFAULT_CHANGE_LIST = (
    "kind,nextPageToken,newStartPageToken,"
    f"changes(kind,changeType,time,removed,fileId,driveId,file({_DEFAULT_FILE}))"
)
_DEFAULT_DRIVE_LIST = "kind,nextPageToken,drives(kind,id,name)"


def _mask(params: QueryParams, schema: _Schema, default: str | None) -> _Mask | None:
    text = params.get("fields") or default
    if text is None:
        return None
    try:
        mask = _parse_mask(text)
        _check_mask(mask, schema)
    except _QueryError as exc:
        raise _ApiError(
            400, "invalidParameter", f"Invalid field selection {exc}", location="fields"
        ) from None
    return mask


def _parse_mask(text: str) -> _Mask:
    text = re.sub(r"\s+", "", text)  # the guide writes "name, mimeType" with a space
    position = 0

    def selection(closing: str | None) -> _Mask:
        nonlocal position
        mask: _Mask = {}
        while True:
            match = re.compile(r"([\w*]+(?:/[\w*]+)*)").match(text, position)
            if match is None:
                raise _QueryError(text[position:] or "(empty)")
            path = match.group(1).split("/")
            position = match.end()
            sub: _Mask | None = None
            if text.startswith("(", position):
                position += 1
                sub = selection(")")
            for name in reversed(path[1:]):
                sub = {name: sub}
            _merge(mask, path[0], sub)
            if position < len(text) and text[position] == ",":
                position += 1
                continue
            if closing is not None:
                if not text.startswith(closing, position):
                    raise _QueryError(text[position:] or "(unclosed)")
                position += 1
            elif position != len(text):
                raise _QueryError(text[position:])
            return mask

    return selection(None)


def _merge(mask: _Mask, name: str, sub: _Mask | None) -> None:
    if name in mask and (mask[name] is None or sub is None):
        mask[name] = None
    elif name in mask:
        existing = mask[name]
        assert existing is not None and sub is not None
        for key, value in sub.items():
            _merge(existing, key, value)
    else:
        mask[name] = sub


def _check_mask(mask: _Mask, schema: _Schema) -> None:
    if schema is _OPEN:
        return
    for name, sub in mask.items():
        if name == "*":
            continue
        if name not in schema:
            raise _QueryError(name)
        inner = schema[name]
        if sub is not None:
            if inner is None:
                raise _QueryError(f"{name}/{next(iter(sub))}")
            _check_mask(sub, inner)


def _select(value: Any, mask: _Mask | None) -> Any:
    if mask is None or "*" in mask:
        return value
    if isinstance(value, list):
        return [_select(v, mask) for v in value]
    if not isinstance(value, dict):
        return value
    return {name: _select(value[name], sub) for name, sub in mask.items() if name in value}


# ---------------------------------------------------------------- small helpers


def _new_id() -> str:
    return "1" + secrets.token_urlsafe(24)  # 33 characters, like Drive's file ids


def _rfc3339(stamp: float) -> str:
    moment = datetime.fromtimestamp(stamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _bool(params: QueryParams, name: str, *, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() not in {"true", "false"}:
        raise _invalid(name, f"Invalid value '{raw}'. Values must be true or false.")
    return raw.lower() == "true"


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d+", raw) or not low <= int(raw) <= high:
        raise _invalid(
            name, f"Invalid value '{raw}'. Values must be within the range: [{low}, {high}]"
        )
    return int(raw)


def _rate_error(fault: _Fault) -> _ApiError:
    messages = {
        "userRateLimitExceeded": "User Rate Limit Exceeded",
        "rateLimitExceeded": "Rate Limit Exceeded",
        "backendError": "Backend Error",
    }
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    return _ApiError(
        fault.status,
        fault.reason,
        messages.get(fault.reason, fault.reason),
        domain="global" if fault.reason == "backendError" else "usageLimits",
        headers=headers,
    )
