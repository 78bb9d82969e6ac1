"""A Microsoft Graph v1.0 (OneDrive, read side) and identity platform v2.0 emulator for tests.

Written from Microsoft's documents (learn.microsoft.com; the Graph pages' source is
github.com/microsoftgraph/microsoft-graph-docs-contrib, the older OneDrive pages'
github.com/OneDrive/onedrive-api-docs):

Identity platform (entra/identity-platform/...):
- v2-oauth2-auth-code-flow: `/{tenant}/oauth2/v2.0/authorize` and `/token`; tenant is
  `common`, `organizations`, `consumers` or a tenant id / domain; code_challenge_method
  S256 or plain ("if excluded, code_challenge is assumed to be plaintext"); codes are
  short-lived (about 10 minutes) and single use; a refresh token only when
  `offline_access` is in the scope; the token response (token_type, scope, expires_in,
  ext_expires_in, access_token, refresh_token, id_token); the error body (error,
  error_description, error_codes, timestamp, trace_id, correlation_id, error_uri).
- refresh-tokens: "Refresh tokens replace themselves with a fresh token upon every
  use"; 90 days' lifetime (24 hours for SPAs). Microsoft does not say the old one stops
  working: this emulator kills it on use (`revoke_used_refresh_tokens`, on by default),
  so a client that sends a refresh token twice is caught.
- access-tokens: lifetimes of 60-90 minutes (here a knob, 3600 s by default) and no
  revoking them before they expire: revoking a user's sessions kills refresh tokens only.
- reference-error-codes (and bodies quoted on Microsoft Q&A / devblogs): AADSTS54005
  code already redeemed, AADSTS70008 code or refresh token expired, AADSTS50148 PKCE
  verifier mismatch, AADSTS700082 refresh token expired by inactivity, AADSTS50173 grant
  revoked (password reset), AADSTS9002313 malformed request, AADSTS900144 missing
  parameter, AADSTS700016 unknown application, AADSTS50011 redirect URI mismatch,
  AADSTS7000218 / AADSTS7000215 missing / wrong client secret, AADSTS90002 tenant not
  found, AADSTS50020 account not in tenant, AADSTS65001 no consent for a scope.
- v2-protocols-oidc: `/{tenant}/v2.0/.well-known/openid-configuration` (issuer keeps the
  literal `{tenantid}` for the multi-tenant segments) and the signing keys (jwks_uri);
  id-token-claims-reference: v2.0 id_token claims (iss, sub, aud, exp, iat, nbf, nonce,
  name, preferred_username, oid, tid; personal accounts' tid is
  9188040d-6c67-4c5b-b112-36a304b66dad). MSAL's `client_info` (uid, utid) is returned
  when the token request asks `client_info=1`, as MSAL expects.

Graph (graph/api/..., graph/...):
- resources/driveitem, resources/drive, resources/hashes, resources/deleted,
  resources/itemreference: the driveItem shape (id, name, size, eTag, cTag,
  createdDateTime, lastModifiedDateTime, parentReference {driveId, driveType, id, path},
  file {mimeType, hashes {quickXorHash}}, folder {childCount}, root, deleted,
  fileSystemInfo, @microsoft.graph.downloadUrl); cTag changes with content only and is
  not returned for folders; eTag changes with metadata too; the download URL is
  short-lived ("1 hour") and needs no authentication.
- api/driveitem-list-children, api/driveitem-get, api/drive-get, api/user-get,
  api/site-get, api/site-search, api/drive-list (`/sites/{id}/drives`), query-parameters
  and paging: `$top`, `$select` (an unknown property is a 400), `@odata.nextLink` to
  follow verbatim. The default page size (200) and the largest `$top` (1000) are not
  documented figures; they are what community clients use.
- api/driveitem-delta: `root/delta` pages of `@odata.nextLink` then `@odata.deltaLink`;
  `token=latest` answers no items and the current deltaLink; deleted items carry the
  `deleted` facet (personal: without cTag and size; business: without cTag and name);
  each item once in its newest state; renaming or moving a folder returns the folder,
  not its descendants; parents come with the changed items unless the request has the
  `deltaExcludeParent` header; parentReference has no path in delta; business delta
  omits cTag, createdBy, lastModifiedBy; a token the service no longer knows answers
  410 Gone with a Location header that starts a fresh enumeration (code resyncRequired,
  inner code resyncChangesApplyDifferences; graph/errors lists both).
  OneDrive release notes (onedrive-api-docs getting-started/release-notes): on OneDrive
  for Business and SharePoint "the delta action is only available on the root item";
  `items/{id}/delta` on a folder is therefore served for personal drives only, and a
  business drive answers 400 invalidRequest (the exact business answer is not
  documented).
- api/driveitem-get-content: `/content` answers 302 to the pre-authenticated URL (the
  `@microsoft.graph.downloadUrl`); the Range header goes to that URL and answers 206
  with Content-Range; `if-none-match` with the current eTag or cTag answers 304.
- graph/errors: `{"error": {"code", "message", "innerError": {"date", "request-id",
  "client-request-id"}}}`; codes accessDenied, activityLimitReached, invalidRange,
  invalidRequest, itemNotFound, resyncRequired, serviceNotAvailable, unauthenticated;
  401 InvalidAuthenticationToken (as Graph answers a bad bearer token).
- graph/throttling: 429 with Retry-After; a body observed on OneDrive (Microsoft Q&A
  648796: activityLimitReached / throttledRequest, Retry-After 41 then 315); 503
  serviceNotAvailable "may be specified in a Retry-After header".
- onedrive/developer/code-snippets/quickxorhash: the hash (quickxor.py beside this file).
  The current hashes page says quickXorHash is the one hash on both kinds of drive; older
  revisions said personal drives had sha1 instead. The emulator gives quickXorHash on
  both.

Not documented, chosen here (the provider should not rely on the exact answer): an
expired or unknown download URL answers 401 `unauthenticated`; the order of children
(by name) and of a full delta enumeration (parents before children).

Not modelled: uploads and writes through the API, search, thumbnails, permissions and
sharing, `$expand`, `$filter`/`$orderby`, timestamp delta tokens, shared folders
(remoteItem), national clouds, the device code and client credentials grants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import mimetypes
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from tests.emulators.serving import BackgroundServer, Emulator, FileBody
from tests.providers.onedrive.quickxor import quickxorhash

AccountKind = Literal["personal", "business"]

MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # personal accounts' tid
GRAPH = "https://graph.microsoft.com/"
_OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}
_OWN_FILES = {"files.read", "files.readwrite", "files.read.all", "files.readwrite.all"}
_ALL_FILES = {"files.read.all", "files.readwrite.all", "sites.read.all", "sites.readwrite.all"}
_SITES = {"sites.read.all", "sites.readwrite.all"}
_USER = {"user.read", "user.readbasic.all", "user.read.all"}
_DEFAULT_PAGE = 200
_MAX_PAGE = 1000
_MAX_PAGES_KEPT = 2000
# resources/driveitem: its properties, relationships and the downloadUrl annotation.
_ITEM_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "size",
        "eTag",
        "cTag",
        "createdDateTime",
        "lastModifiedDateTime",
        "parentReference",
        "file",
        "folder",
        "root",
        "deleted",
        "fileSystemInfo",
        "webUrl",
        "createdBy",
        "lastModifiedBy",
        "description",
        "image",
        "photo",
        "video",
        "audio",
        "package",
        "shared",
        "remoteItem",
        "specialFolder",
        "searchResult",
        "sharepointIds",
        "webDavUrl",
        "malware",
        "bundle",
        "location",
        "pendingOperations",
        "publication",
        "content",
        "children",
        "thumbnails",
        "permissions",
        "versions",
        "listItem",
        "analytics",
        "@microsoft.graph.downloadUrl",
    }
)


# ---------------------------------------------------------------- stored state


@dataclass(frozen=True, slots=True)
class _Content:
    data: bytes
    quick_xor: str

    @classmethod
    def of(cls, data: bytes) -> _Content:
        return cls(data, quickxorhash(data))


@dataclass(slots=True)
class _Item:
    id: str
    name: str
    drive_id: str
    parent: str | None  # None: the drive's root
    created: float
    modified: float
    changed: int  # sequence number of its newest change (the delta feed's order)
    content: _Content | None = None  # None: a folder
    mime: str = "application/octet-stream"
    etag_version: int = 1
    ctag_version: int = 1
    etag_key: str = field(default_factory=lambda: str(uuid.uuid4()).upper())

    @property
    def is_folder(self) -> bool:
        return self.content is None


@dataclass(slots=True)
class _Tombstone:
    id: str
    name: str
    drive_id: str
    parent: str
    ancestors: tuple[str, ...]
    was_folder: bool
    changed: int
    when: float


@dataclass(slots=True)
class _Drive:
    id: str
    name: str
    drive_type: str  # personal | business | documentLibrary
    root: str
    site: str | None = None
    created: float = field(default_factory=time.time)


@dataclass(slots=True)
class _Site:
    id: str
    name: str
    display_name: str
    drives: list[str] = field(default_factory=list)


@dataclass
class Client:
    """An app registration: public (no secret, PKCE) or confidential (with a secret)."""

    client_id: str
    redirect_uris: list[str]
    secret: str | None = None


@dataclass
class _Pending:
    client_id: str
    redirect_uri: str
    scope: list[str]
    state: str | None
    nonce: str | None
    challenge: str | None
    method: str
    tenant: str


@dataclass
class _Code:
    pending: _Pending
    expires: float
    used: bool = False


@dataclass
class _Grant:
    """What an access or refresh token stands for."""

    client_id: str
    scope: list[str]
    tenant: str
    issued: float
    expires: float
    active: bool = True
    revoked: bool = False  # by the user or an admin, not by rotation


@dataclass
class RecordedRequest:
    """One Graph or download request as received (the Authorization value is not kept)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    status: int = 0


@dataclass
class _Fault:
    status: int
    retry_after: float | None


@dataclass
class _DeltaPage:
    """A delta continuation: what is left to hand out, then the deltaLink's anchor."""

    drive_id: str
    scope_root: str | None
    entries: list[str]  # item or tombstone ids, in feed order
    offset: int
    anchor: int  # the sequence number the final deltaLink starts from
    epoch: int


class _GraphError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.inner = inner or {}
        self.headers = headers or {}


class _TokenError(Exception):
    def __init__(self, error: str, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error, self.code, self.message, self.status = error, code, message, status


# ---------------------------------------------------------------- the emulator


class OneDriveEmulator(Emulator):
    """One Microsoft account with its OneDrive (and, for business, SharePoint sites).

    `with OneDriveEmulator(client_id=..., redirect_uris=[...]) as od:` serves the login
    endpoints and Graph on one free port; `tls=(certfile, keyfile)` serves https (MSAL
    takes only https authorities).
    """

    def __init__(
        self,
        *,
        client_id: str,
        redirect_uris: list[str],
        client_secret: str | None = None,
        account: AccountKind = "personal",
        email: str = "owner@example.com",
        display_name: str = "Emulated Owner",
        tenant_domain: str = "contoso.onmicrosoft.com",
        access_token_ttl: float = 3600,
        refresh_token_ttl: float = 90 * 86400,
        code_ttl: float = 600,
        download_url_ttl: float = 3600,
        delta_token_ttl: float | None = None,
        auto_approve: bool = True,
        pkce_required: bool = True,
        revoke_used_refresh_tokens: bool = True,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.account: AccountKind = account
        self.email = email
        self.display_name = display_name
        self.tenant_domain = tenant_domain
        self.tenant_id = MSA_TENANT if account == "personal" else str(uuid.uuid4())
        if account == "personal":
            self.user_id = secrets.token_hex(8)
            # A personal account's oid: its 16-hex-digit id behind zeros.
            self.object_id = f"00000000-0000-0000-{self.user_id[:4]}-{self.user_id[4:]}"
        else:
            self.user_id = self.object_id = str(uuid.uuid4())
        self.clients = {client_id: Client(client_id, list(redirect_uris), client_secret)}
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.code_ttl = code_ttl
        self.download_url_ttl = download_url_ttl
        self.delta_token_ttl = delta_token_ttl
        self.auto_approve = auto_approve
        self.pkce_required = pkce_required
        self.revoke_used_refresh_tokens = revoke_used_refresh_tokens
        self.default_page_size = _DEFAULT_PAGE
        self.max_page_size = _MAX_PAGE
        self.requests: list[RecordedRequest] = []
        self.token_requests: list[dict[str, str]] = []
        self._tls = tls
        self._lock = threading.RLock()  # knobs run on the test's thread, handlers on uvicorn's
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._kid = secrets.token_hex(8)
        self._pending: dict[str, _Pending] = {}
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._items: dict[str, _Item] = {}
        self._children: dict[str, dict[str, None]] = {}
        self._tombstones: dict[str, _Tombstone] = {}
        self._drives: dict[str, _Drive] = {}
        self._sites: dict[str, _Site] = {}
        self._seq = 0
        self._counter = 100
        self._epoch = 0  # raising it voids every delta token handed out
        self._pages: OrderedDict[str, _DeltaPage] = OrderedDict()
        self._url_key = secrets.token_bytes(32)
        self._url_epoch = 0
        self._dead_urls: set[str] = set()
        self._faults: list[_Fault] = []
        self._token_faults: list[_Fault] = []
        self._cut: tuple[int, bool] | None = None  # (after bytes, the URL dies with it)
        self._corrupt = False
        self._wrong_hash: set[str] = set()
        drive_type = "personal" if account == "personal" else "business"
        self.drive_id = self._new_drive("OneDrive", drive_type)
        self.app = Starlette(
            routes=[
                Route(
                    "/{tenant}/v2.0/.well-known/openid-configuration",
                    self._openid_configuration,
                ),
                Route("/{tenant}/discovery/v2.0/keys", self._keys),
                Route("/{tenant}/oauth2/v2.0/authorize", self._authorize, methods=["GET", "POST"]),
                Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
                Route("/v1.0/{path:path}", self._graph, methods=["GET"]),
                Route("/download/{token}", self._download, methods=["GET", "HEAD"]),
            ]
        )
        self._server = BackgroundServer(self.app, "onedrive-emulator")

    # ------------------------------------------------------------ running

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def graph_url(self) -> str:
        """Stands in for https://graph.microsoft.com/v1.0."""
        return f"{self.base_url}/v1.0"

    def authority(self, tenant: str = "common") -> str:
        """Stands in for https://login.microsoftonline.com/{tenant}."""
        return f"{self.base_url}/{tenant}"

    def authorize_url(self, tenant: str = "common") -> str:
        return f"{self.authority(tenant)}/oauth2/v2.0/authorize"

    def token_url(self, tenant: str = "common") -> str:
        return f"{self.authority(tenant)}/oauth2/v2.0/token"

    def start(self) -> OneDriveEmulator:
        if self._tls is not None:
            self._server.start(certfile=self._tls[0], keyfile=self._tls[1])
        else:
            self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    # ------------------------------------------------------------ content

    @property
    def root_id(self) -> str:
        return self._drives[self.drive_id].root

    def drive_root(self, drive_id: str) -> str:
        return self._drives[drive_id].root

    def add_folder(self, name: str, parent: str = "root") -> str:
        with self._lock:
            container = self._folder(parent)
            return self._add(name, container, None, time.time())

    def add_file(
        self,
        name: str,
        parent: str,
        data: bytes,
        *,
        mime_type: str | None = None,
        modified: datetime | None = None,
    ) -> str:
        content = _Content.of(data)
        mime = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        with self._lock:
            container = self._folder(parent)
            stamp = modified.timestamp() if modified is not None else time.time()
            return self._add(name, container, content, stamp, mime)

    def add_many(
        self, parent: str, count: int, size: int = 0, *, name_format: str = "clip-{:06d}.mp4"
    ) -> list[str]:
        """`count` files sharing one content of `size` bytes (scale tests: memory stays flat)."""
        content = _Content.of(secrets.token_bytes(size))
        mime = mimetypes.guess_type(name_format.format(0))[0] or "application/octet-stream"
        with self._lock:
            container = self._folder(parent)
            now = time.time()
            return [
                self._add(name_format.format(i), container, content, now, mime)
                for i in range(count)
            ]

    def update_file(self, item_id: str, data: bytes) -> None:
        content = _Content.of(data)
        with self._lock:
            item = self._file(item_id)
            item.content, item.modified = content, time.time()
            item.ctag_version += 1
            self._touch(item)

    def rename(self, item_id: str, name: str) -> None:
        with self._lock:
            item = self._movable(item_id)
            item.name = name
            self._touch(item)

    def move(self, item_id: str, new_parent: str) -> None:
        with self._lock:
            item = self._movable(item_id)
            container = self._folder(new_parent)
            if container.drive_id != item.drive_id:
                raise ValueError("moves between drives are not modelled")
            if container.id in self._subtree(item.id):
                raise ValueError("cannot move a folder into itself")
            assert item.parent is not None
            self._children[item.parent].pop(item.id, None)
            item.parent = container.id
            self._children.setdefault(container.id, {})[item.id] = None
            self._touch(item)  # delta: the moved item only, not its descendants

    def delete(self, item_id: str) -> None:
        """Gone, with everything under it: each comes back from delta with `deleted`."""
        with self._lock:
            item = self._movable(item_id)
            assert item.parent is not None
            self._children[item.parent].pop(item.id, None)
            now = time.time()
            for gone_id in reversed(self._subtree(item.id)):  # children before parents
                gone = self._items.pop(gone_id)
                self._children.pop(gone_id, None)
                self._seq += 1
                assert gone.parent is not None
                self._tombstones[gone_id] = _Tombstone(
                    gone.id,
                    gone.name,
                    gone.drive_id,
                    gone.parent,
                    self._ancestors_of(gone.parent),
                    gone.is_folder,
                    self._seq,
                    now,
                )

    def add_site(self, display_name: str) -> str:
        """A SharePoint site the (business) user can reach; returns its id."""
        with self._lock:
            site_id = f"contoso.sharepoint.com,{uuid.uuid4()},{uuid.uuid4()}"
            name = re.sub(r"\W+", "", display_name) or "site"
            self._sites[site_id] = _Site(site_id, name, display_name)
            return site_id

    def add_library(self, site_id: str, name: str = "Documents") -> str:
        """A document library (a drive of type documentLibrary) in a site; returns its id."""
        with self._lock:
            site = self._sites[site_id]
            drive_id = self._new_drive(name, "documentLibrary", site=site_id)
            site.drives.append(drive_id)
            return drive_id

    def item(self, item_id: str) -> dict[str, Any]:
        """The driveItem as Graph would answer it (for assertions)."""
        with self._lock:
            return self._item_json(self._items[self._resolve(item_id)])

    # ------------------------------------------------------------ fault knobs

    def throttle_next(
        self, count: int, *, status: int = 429, retry_after: float | None = 1
    ) -> None:
        """The next `count` Graph requests answer 429 (or 503) with Retry-After if given."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(count))

    def fail_token_calls(self, count: int, *, status: int = 503) -> None:
        with self._lock:
            self._token_faults.extend(_Fault(status, None) for _ in range(count))

    def expire_access_tokens(self) -> None:
        with self._lock:
            for grant in self._access.values():
                grant.expires = 0

    def expire_refresh_tokens(self) -> None:
        """Every refresh token is past its lifetime (AADSTS700082 on use)."""
        with self._lock:
            for grant in self._refresh.values():
                grant.expires = 0

    def revoke_refresh_tokens(self) -> None:
        """The user revoked the app's sessions or reset the password (AADSTS50173).

        Access tokens already issued stay valid until they expire, as Microsoft's
        access-tokens page says they cannot be revoked.
        """
        with self._lock:
            for grant in self._refresh.values():
                grant.revoked = True

    def refresh_token_is_active(self, token: str) -> bool:
        with self._lock:
            grant = self._refresh.get(token)
            return bool(grant and grant.active and not grant.revoked)

    def expire_delta_tokens(self) -> None:
        """Every delta token and nextLink handed out answers 410 resyncRequired from now on."""
        with self._lock:
            self._epoch += 1
            self._pages.clear()

    def expire_download_urls(self) -> None:
        """Every download URL handed out so far is refused from now on."""
        with self._lock:
            self._url_epoch += 1

    def cut_next_download(self, after_bytes: int, *, expire_url: bool = False) -> None:
        """The next download announces its full length, sends `after_bytes`, hangs up;
        with `expire_url` its URL dies too (it expired mid-file)."""
        with self._lock:
            self._cut = (after_bytes, expire_url)

    def corrupt_next_download(self) -> None:
        """The next download has one byte flipped (quickXorHash stays the true one)."""
        with self._lock:
            self._corrupt = True

    def report_wrong_hash(self, item_id: str, on: bool = True) -> None:
        """The item's metadata carries a quickXorHash that is not its content's."""
        with self._lock:
            (self._wrong_hash.add if on else self._wrong_hash.discard)(self._resolve(item_id))

    def count(self, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.startswith(path))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------ store helpers (lock held)

    def _new_drive(self, name: str, drive_type: str, *, site: str | None = None) -> str:
        personal = drive_type == "personal"
        drive_id = self.user_id if personal else "b!" + secrets.token_urlsafe(48)
        root = self._new_item_id(drive_id)
        self._drives[drive_id] = _Drive(drive_id, name, drive_type, root, site)
        now = time.time()
        self._seq += 1
        self._items[root] = _Item(root, "root", drive_id, None, now, now, self._seq)
        return drive_id

    def _new_item_id(self, drive_id: str) -> str:
        """Personal ids are the drive id, '!', a number; business ids 34 base32 characters."""
        self._counter += 1
        if drive_id == self.user_id and self.account == "personal":
            return f"{drive_id.upper()}!{self._counter}"
        return "01" + base64.b32encode(secrets.token_bytes(20)).decode()[:32]

    def _add(
        self,
        name: str,
        container: _Item,
        content: _Content | None,
        stamp: float,
        mime: str = "application/octet-stream",
    ) -> str:
        item_id = self._new_item_id(container.drive_id)
        self._seq += 1
        now = time.time()
        self._items[item_id] = _Item(
            item_id,
            name,
            container.drive_id,
            container.id,
            min(stamp, now),
            stamp,
            self._seq,
            content,
            mime,
        )
        self._children.setdefault(container.id, {})[item_id] = None
        return item_id

    def _resolve(self, item_id: str, drive_id: str | None = None) -> str:
        if item_id == "root":
            return self._drives[drive_id or self.drive_id].root
        return item_id

    def _folder(self, parent: str) -> _Item:
        item = self._items.get(self._resolve(parent))
        if item is None or not item.is_folder:
            raise KeyError(f"no folder {parent!r}")
        return item

    def _file(self, item_id: str) -> _Item:
        item = self._items.get(self._resolve(item_id))
        if item is None or item.is_folder:
            raise KeyError(f"no file {item_id!r}")
        return item

    def _movable(self, item_id: str) -> _Item:
        item = self._items.get(self._resolve(item_id))
        if item is None or item.parent is None:
            raise KeyError(f"no item {item_id!r} (a drive's root cannot change)")
        return item

    def _touch(self, item: _Item) -> None:
        item.etag_version += 1
        self._seq += 1
        item.changed = self._seq

    def _subtree(self, item_id: str) -> list[str]:
        found, stack = [], [item_id]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(list(self._children.get(current, ()))))
        return found

    def _ancestors_of(self, item_id: str | None) -> tuple[str, ...]:
        """item_id and the folders above it, nearest first."""
        chain: list[str] = []
        while item_id is not None:
            chain.append(item_id)
            item_id = self._items[item_id].parent
        return tuple(chain)

    # ------------------------------------------------------------ identity platform

    def _tenant_allowed(self, tenant: str) -> _TokenError | None:
        lowered = tenant.lower()
        if self.account == "personal":
            allowed = {"common", "consumers", MSA_TENANT}
            mismatch = {"organizations"}
        else:
            allowed = {"common", "organizations", self.tenant_id, self.tenant_domain.lower()}
            mismatch = {"consumers", MSA_TENANT}
        if lowered in allowed:
            return None
        if lowered in mismatch:
            return _TokenError(
                "invalid_request",
                50020,
                f"User account '{self.email}' from identity provider does not exist in"
                f" tenant '{tenant}' and cannot access the application in that tenant.",
            )
        return _TokenError(
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID"
            " and are signing into the correct cloud.",
        )

    async def _openid_configuration(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        refused = self._tenant_allowed(tenant)
        if refused is not None and refused.code == 90002:
            return self._token_error(refused)
        shown = (
            "{tenantid}"
            if tenant.lower() in {"common", "organizations", "consumers"}
            else self.tenant_id
        )
        base = self.authority(tenant)
        return JSONResponse(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{self.base_url}/{shown}/v2.0",
                "request_uri_parameter_supported": False,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "oid",
                ],
                "tenant_region_scope": None,
                "cloud_instance_name": "microsoftonline.com",
            }
        )

    async def _keys(self, request: Request) -> Response:
        public = self._key.public_key().public_numbers()

        def b64(number: int) -> str:
            raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        key = {"kty": "RSA", "use": "sig", "kid": self._kid, "n": b64(public.n), "e": b64(public.e)}
        return JSONResponse({"keys": [key]})

    async def _authorize(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if request.method == "POST":
            return await self._consent(request)
        q = request.query_params
        client = self.clients.get(q.get("client_id", ""))
        if client is None:
            return _page(
                "Sign in",
                f"AADSTS700016: Application with identifier '{q.get('client_id', '')}' was"
                " not found in the directory.",
                400,
            )
        redirect_uri = q.get("redirect_uri") or client.redirect_uris[0]
        if redirect_uri not in client.redirect_uris:
            return _page(
                "Sign in",
                "AADSTS50011: The redirect URI specified in the request does not match the"
                f" redirect URIs configured for the application '{client.client_id}'.",
                400,
            )
        state = q.get("state")

        def fail(error: str, code: int, message: str) -> Response:
            return _redirect(
                redirect_uri,
                error=error,
                error_description=f"AADSTS{code}: {message}",
                state=state,
            )

        refused = self._tenant_allowed(tenant)
        if refused is not None:
            if refused.code == 90002:
                return _page("Sign in", f"AADSTS90002: {refused.message}", 400)
            return fail(refused.error, refused.code, refused.message)
        if q.get("response_type") != "code":
            return fail(
                "unsupported_response_type",
                700054,
                "response_type 'code' is the only one this client may use here.",
            )
        scope = _scopes(q.get("scope", ""))
        if not scope:
            return fail(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        challenge = q.get("code_challenge") or None
        method = q.get("code_challenge_method", "plain")
        if challenge is None and self.pkce_required and client.secret is None:
            return fail(
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization"
                " code redemption.",
            )
        if challenge is not None and method not in {"S256", "plain"}:
            return fail(
                "invalid_request",
                50149,
                f"The code_challenge_method '{method}' is not supported (S256 or plain).",
            )
        pending = _Pending(
            client.client_id,
            redirect_uri,
            scope,
            state,
            q.get("nonce"),
            challenge,
            method,
            tenant,
        )
        if self.auto_approve:
            return self._approve(pending)
        request_id = secrets.token_urlsafe(16)
        with self._lock:
            self._pending[request_id] = pending
        return _consent_page(
            self.authorize_url(tenant), request_id, client.client_id, scope, self.email
        )

    async def _consent(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        with self._lock:
            pending = self._pending.pop(form.get("request", ""), None)
        if pending is None:
            return _page("Sign in", "This sign-in request is unknown or already answered.", 400)
        if form.get("decision") != "allow":
            return _redirect(
                pending.redirect_uri,
                error="access_denied",
                error_description="AADSTS65004: User declined to consent to access the app.",
                state=pending.state,
            )
        return self._approve(pending)

    def _approve(self, pending: _Pending) -> Response:
        code = "M." + secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = _Code(pending, time.time() + self.code_ttl)
        return _redirect(pending.redirect_uri, code=code, state=pending.state)

    async def _token(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        with self._lock:
            fault = self._token_faults.pop(0) if self._token_faults else None
        try:
            if fault is not None:
                raise _TokenError(
                    "temporarily_unavailable",
                    90033,
                    "A transient error has occurred. Please try again.",
                    fault.status,
                )
            refused = self._tenant_allowed(tenant)
            if refused is not None:
                raise refused
            form = {
                k: v[0]
                for k, v in parse_qs(
                    (await request.body()).decode("utf-8", "replace"), keep_blank_values=True
                ).items()
            }
            self.token_requests.append(form)
            client = self._client(request, form)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise _missing("grant_type")
            if grant_type == "authorization_code":
                body = self._grant_code(client, form, tenant)
            elif grant_type == "refresh_token":
                body = self._grant_refresh(client, form, tenant)
            else:
                raise _TokenError(
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
        except _TokenError as error:
            return self._token_error(error)
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _client(self, request: Request, form: dict[str, str]) -> Client:
        header = request.headers.get("authorization", "")
        secret = form.get("client_secret")
        client_id = form.get("client_id", "")
        if header.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                raise _TokenError(
                    "invalid_client", 7000215, "Invalid client secret provided.", 401
                ) from None
            client_id, secret = client_id or user, password
        if not client_id:
            raise _missing("client_id")
        client = self.clients.get(client_id)
        if client is None:
            raise _TokenError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory"
                f" '{self.tenant_domain}'.",
            )
        if client.secret is not None:
            if not secret:
                raise _TokenError(
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion'"
                    " or 'client_secret'.",
                    401,
                )
            if not secrets.compare_digest(secret, client.secret):
                raise _TokenError(
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the"
                    " request is the client secret value, not the client secret ID.",
                    401,
                )
        return client

    def _grant_code(self, client: Client, form: dict[str, str], tenant: str) -> dict[str, Any]:
        value = form.get("code")
        if not value:
            raise _missing("code")
        with self._lock:
            code = self._codes.get(value)
            if code is None or code.pending.client_id != client.client_id:
                raise _TokenError(
                    "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
                )
            if code.used:
                raise _TokenError(
                    "invalid_grant",
                    54005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new"
                    " valid code or use an existing refresh token.",
                )
            code.used = True
            if code.expires <= time.time():
                raise _TokenError(
                    "invalid_grant",
                    70008,
                    "The provided authorization code or refresh token has expired due to"
                    " inactivity. Send a new interactive authorization request for this user"
                    " and resource.",
                )
            pending = code.pending
            if form.get("redirect_uri", pending.redirect_uri) != pending.redirect_uri:
                raise _TokenError(
                    "invalid_grant",
                    50011,
                    "The redirect URI specified in the request does not match the redirect"
                    " URI the authorization code was issued to.",
                )
            verifier = form.get("code_verifier")
            if pending.challenge is not None:
                if not verifier:
                    raise _missing("code_verifier")
                derived = _s256(verifier) if pending.method == "S256" else verifier
                if not secrets.compare_digest(derived, pending.challenge):
                    raise _TokenError(
                        "invalid_grant",
                        50148,
                        "The code_verifier does not match the code_challenge supplied in the"
                        " authorization request for PKCE.",
                    )
            return self._issue(client.client_id, pending.scope, tenant, pending.nonce, form)

    def _grant_refresh(self, client: Client, form: dict[str, str], tenant: str) -> dict[str, Any]:
        value = form.get("refresh_token")
        if not value:
            raise _missing("refresh_token")
        now = time.time()
        with self._lock:
            grant = self._refresh.get(value)
            if grant is None or grant.client_id != client.client_id:
                raise _TokenError(
                    "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
                )
            if grant.revoked:
                raise _TokenError(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth"
                    " token is needed. The user might have changed or reset their password."
                    f" The grant was issued on '{_aad_time(grant.issued)}'.",
                )
            if not grant.active:
                # Microsoft says to discard a refresh token once it has been used; this
                # emulator refuses it, so that a client sending one twice is seen.
                raise _TokenError(
                    "invalid_grant",
                    70000,
                    "The provided grant is invalid or malformed: this refresh token was"
                    " already used and replaced.",
                )
            if grant.expires <= now:
                raise _TokenError(
                    "invalid_grant",
                    700082,
                    "The refresh token has expired due to inactivity. The token was issued on"
                    f" {_aad_time(grant.issued)} and was inactive for 90.00:00:00.",
                )
            asked = _scopes(form.get("scope", "")) or grant.scope
            granted = {_short(s) for s in grant.scope}
            beyond = [s for s in asked if _short(s) not in granted | _OIDC_SCOPES]
            if beyond:
                raise _TokenError(
                    "invalid_grant",
                    65001,
                    "The user or administrator has not consented to use the application with"
                    f" ID '{client.client_id}'. Send an interactive authorization request for"
                    f" this user and resource ({' '.join(beyond)}).",
                )
            if self.revoke_used_refresh_tokens:
                grant.active = False
            # offline_access stays part of the grant when a refresh asks less.
            scope = list(
                dict.fromkeys([*asked, *(s for s in grant.scope if _short(s) == "offline_access")])
            )
            return self._issue(client.client_id, scope, tenant, None, form)

    def _issue(
        self,
        client_id: str,
        scope: list[str],
        tenant: str,
        nonce: str | None,
        form: dict[str, str],
    ) -> dict[str, Any]:
        """Mint tokens (lock held)."""
        now = time.time()
        short = {_short(s) for s in scope}
        access = "EwB" + secrets.token_urlsafe(60)
        self._access[access] = _Grant(client_id, scope, tenant, now, now + self.access_token_ttl)
        resource = [s for s in scope if _short(s) not in _OIDC_SCOPES]
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(resource or scope),
            "expires_in": int(self.access_token_ttl),
            "ext_expires_in": int(self.access_token_ttl),
            "access_token": access,
        }
        if "offline_access" in short:
            refresh = "M.C" + secrets.token_urlsafe(90)
            self._refresh[refresh] = _Grant(
                client_id, scope, tenant, now, now + self.refresh_token_ttl
            )
            body["refresh_token"] = refresh
        if "openid" in short:
            body["id_token"] = self._id_token(client_id, nonce, short, now)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": self.object_id, "utid": self.tenant_id}).encode()
            body["client_info"] = base64.urlsafe_b64encode(info).rstrip(b"=").decode()
        return body

    def _id_token(self, client_id: str, nonce: str | None, short: set[str], now: float) -> str:
        claims: dict[str, Any] = {
            "ver": "2.0",
            "iss": f"{self.base_url}/{self.tenant_id}/v2.0",
            "sub": hashlib.sha256(f"{self.object_id}:{client_id}".encode()).hexdigest()[:43],
            "aud": client_id,
            "exp": int(now) + 3600,
            "iat": int(now),
            "nbf": int(now),
            "oid": self.object_id,
            "tid": self.tenant_id,
        }
        if nonce:
            claims["nonce"] = nonce
        if "profile" in short:
            claims |= {"name": self.display_name, "preferred_username": self.email}
        if "email" in short:
            claims["email"] = self.email
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self._kid})

    def _token_error(self, error: _TokenError) -> Response:
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = _aad_time(time.time())
        return JSONResponse(
            {
                "error": error.error,
                "error_description": f"AADSTS{error.code}: {error.message} Trace ID: {trace}"
                f" Correlation ID: {correlation} Timestamp: {stamp}",
                "error_codes": [error.code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"{self.base_url}/error?code={error.code}",
            },
            status_code=error.status,
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    # ------------------------------------------------------------ Graph plumbing

    async def _graph(self, request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        recorded = RecordedRequest(
            request.method, request.url.path, dict(request.query_params), headers
        )
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id", request_id)
        ids = {"request-id": request_id, "client-request-id": client_request_id}
        with self._lock:
            self.requests.append(recorded)
            fault = self._faults.pop(0) if self._faults else None
        try:
            if fault is not None:
                raise _throttled(fault)
            grant = self._bearer(request)
            with self._lock:
                answer = self._route(request, grant)
        except _GraphError as error:
            answer = self._graph_error(error, ids)
        answer.headers.update(ids)
        recorded.status = answer.status_code
        return answer

    def _graph_error(self, error: _GraphError, ids: dict[str, str]) -> Response:
        inner = {
            **error.inner,
            "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            **ids,
        }
        return JSONResponse(
            {"error": {"code": error.code, "message": error.message, "innerError": inner}},
            status_code=error.status,
            headers=error.headers,
        )

    def _bearer(self, request: Request) -> _Grant:
        header = request.headers.get("authorization", "")
        challenge = {
            "WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.authorize_url()}",'
            ' client_id="00000003-0000-0000-c000-000000000000"'
        }
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            raise _GraphError(
                401, "InvalidAuthenticationToken", "Access token is empty.", headers=challenge
            )
        with self._lock:
            grant = self._access.get(header[7:].strip())
            if grant is None or not grant.active:
                raise _GraphError(
                    401,
                    "InvalidAuthenticationToken",
                    "Access token validation failure.",
                    headers=challenge,
                )
            if grant.expires <= time.time():
                raise _GraphError(
                    401,
                    "InvalidAuthenticationToken",
                    "Lifetime validation failed, the token is expired.",
                    headers=challenge,
                )
            return grant

    def _route(self, request: Request, grant: _Grant) -> Response:
        """Dispatch a Graph path (lock held)."""
        segments = [s for s in request.path_params["path"].split("/") if s]
        base = self.graph_url
        scopes = {_short(s) for s in grant.scope}
        if segments == ["me"]:
            _need(scopes, _USER)
            return JSONResponse(self._me())
        if segments[:1] == ["sites"]:
            _need(scopes, _SITES)
            if len(segments) == 1:
                return self._site_search(request)
            site = self._sites.get(segments[1])
            if site is None:
                raise _GraphError(404, "itemNotFound", "Requested site could not be found")
            if len(segments) == 2:
                return JSONResponse(self._site_json(site))
            if segments[2:] == ["drives"]:
                return JSONResponse(
                    {
                        "@odata.context": f"{base}/$metadata#drives",
                        "value": [self._drive_json(self._drives[d]) for d in site.drives],
                    }
                )
            if segments[2] == "drive" and site.drives:
                return self._drive_route(
                    request, self._drives[site.drives[0]], segments[3:], scopes
                )
            raise _segment(segments[2])
        if segments[:2] == ["me", "drive"]:
            return self._drive_route(request, self._drives[self.drive_id], segments[2:], scopes)
        if segments[:2] == ["me", "drives"] and len(segments) == 2:
            _need(scopes, _OWN_FILES | _ALL_FILES)
            mine = [self._drive_json(self._drives[self.drive_id])]
            return JSONResponse({"@odata.context": f"{base}/$metadata#drives", "value": mine})
        if segments[:1] == ["drives"] and len(segments) >= 2:
            drive = self._drives.get(segments[1])
            if drive is None:
                raise _GraphError(404, "itemNotFound", "The resource could not be found.")
            return self._drive_route(request, drive, segments[2:], scopes)
        raise _segment(segments[0] if segments else "v1.0")

    def _drive_route(
        self, request: Request, drive: _Drive, rest: list[str], scopes: set[str]
    ) -> Response:
        _need(
            scopes, _ALL_FILES if drive.drive_type == "documentLibrary" else _OWN_FILES | _ALL_FILES
        )
        prefix = self._prefix(request, drive)
        if not rest:
            return JSONResponse(self._drive_json(drive))
        if rest[0] == "root":
            item_id, action = drive.root, rest[1:]
        elif rest[0] == "items" and len(rest) >= 2:
            item_id, action = self._resolve(rest[1], drive.id), rest[2:]
        else:
            raise _segment(rest[0])
        item = self._items.get(item_id)
        if item is None or item.drive_id != drive.id:
            raise _GraphError(404, "itemNotFound", "Item not found")
        if not action:
            return JSONResponse(self._select(request, self._item_json(item)))
        if len(action) > 1:
            raise _segment(action[1])
        verb = action[0]
        if verb == "children":
            return self._children_page(request, item, prefix)
        if verb == "content":
            return self._content(request, item)
        match = re.fullmatch(r"delta(?:\((?:token=)?'?([^')]*)'?\))?", verb)
        if match is not None:
            return self._delta(request, drive, item, prefix, match.group(1))
        raise _segment(verb)

    def _prefix(self, request: Request, drive: _Drive) -> str:
        """The path clients used for this drive, so next links keep its shape."""
        path = request.path_params["path"]
        for start in ("me/drive", f"drives/{drive.id}"):
            if path.startswith(start):
                return f"{self.graph_url}/{start}"
        return f"{self.graph_url}/drives/{drive.id}"

    # ------------------------------------------------------------ resources

    def _me(self) -> dict[str, Any]:
        given, _, surname = self.display_name.partition(" ")
        return {
            "@odata.context": f"{self.graph_url}/$metadata#users/$entity",
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": given,
            "jobTitle": None,
            "mail": self.email,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": surname or None,
            "userPrincipalName": self.email,
            "id": self.user_id,
        }

    def _drive_json(self, drive: _Drive) -> dict[str, Any]:
        used = sum(
            len(i.content.data)
            for i in self._items.values()
            if i.drive_id == drive.id and i.content is not None
        )
        total = 5 * 1024**3 if drive.drive_type == "personal" else 1024**4
        body: dict[str, Any] = {
            "id": drive.id,
            "driveType": drive.drive_type,
            "name": drive.name,
            "createdDateTime": _graph_time(drive.created),
            "lastModifiedDateTime": _graph_time(drive.created),
            "webUrl": self._web_url(drive),
            "owner": {"user": {"displayName": self.display_name, "id": self.user_id}},
            "quota": {
                "deleted": 0,
                "remaining": total - used,
                "state": "normal",
                "total": total,
                "used": used,
            },
        }
        if drive.drive_type != "personal":
            body["owner"]["user"]["email"] = self.email
        return body

    def _site_json(self, site: _Site) -> dict[str, Any]:
        return {
            "id": site.id,
            "name": site.name,
            "displayName": site.display_name,
            "webUrl": f"https://contoso.sharepoint.com/sites/{site.name}",
            "siteCollection": {"hostname": "contoso.sharepoint.com"},
        }

    def _site_search(self, request: Request) -> Response:
        query = request.query_params.get("search")
        if query is None:
            raise _GraphError(400, "invalidRequest", "A search query is required here.")
        wanted = query.strip().strip("*").lower()
        found = [
            self._site_json(s)
            for s in self._sites.values()
            if not wanted or wanted in s.display_name.lower() or wanted in s.name.lower()
        ]
        return JSONResponse({"@odata.context": f"{self.graph_url}/$metadata#sites", "value": found})

    def _web_url(self, drive: _Drive) -> str:
        if drive.drive_type == "personal":
            return f"https://onedrive.live.com/?cid={drive.id}"
        return f"https://contoso.sharepoint.com/personal/{drive.id[2:10]}/Documents"

    def _item_json(self, item: _Item, *, in_delta: bool = False) -> dict[str, Any]:
        drive = self._drives[item.drive_id]
        business = drive.drive_type != "personal"
        body: dict[str, Any] = {
            "createdDateTime": _graph_time(item.created),
            "eTag": f'"{{{item.etag_key}}},{item.etag_version}"',
            "id": item.id,
            "lastModifiedDateTime": _graph_time(item.modified),
            "name": item.name,
            "webUrl": f"{self._web_url(drive)}/{quote(item.name)}",
            "fileSystemInfo": {
                "createdDateTime": _graph_time(item.created),
                "lastModifiedDateTime": _graph_time(item.modified),
            },
        }
        if not (business and in_delta):
            who = {"user": {"displayName": self.display_name, "id": self.user_id}}
            body |= {"createdBy": who, "lastModifiedBy": who}
        reference: dict[str, Any] = {"driveId": drive.id, "driveType": drive.drive_type}
        if item.parent is not None:
            reference["id"] = item.parent
            if not in_delta:
                reference["path"] = self._path_of(item.parent)
        body["parentReference"] = reference
        if item.is_folder:
            body["folder"] = {"childCount": len(self._children.get(item.id, ()))}
            body["size"] = self._folder_size(item.id)
            if item.parent is None:
                body["root"] = {}
                body["name"] = "root"
        else:
            assert item.content is not None
            digest = item.content.quick_xor
            if item.id in self._wrong_hash:
                digest = quickxorhash(item.content.data + b"!")
            body["size"] = len(item.content.data)
            body["file"] = {"mimeType": item.mime, "hashes": {"quickXorHash": digest}}
            if not (business and in_delta):
                body["cTag"] = f'"c:{{{item.etag_key}}},{item.ctag_version}"'
            body["@microsoft.graph.downloadUrl"] = self._download_url(item)
        return body

    def _tombstone_json(self, tomb: _Tombstone) -> dict[str, Any]:
        drive = self._drives[tomb.drive_id]
        body: dict[str, Any] = {
            "id": tomb.id,
            "lastModifiedDateTime": _graph_time(tomb.when),
            "parentReference": {
                "driveId": drive.id,
                "driveType": drive.drive_type,
                "id": tomb.parent,
            },
            "deleted": {},
        }
        if drive.drive_type == "personal":
            body["name"] = tomb.name  # business delta leaves the name out of deletions
        body["folder" if tomb.was_folder else "file"] = {}
        return body

    def _path_of(self, folder_id: str) -> str:
        names = []
        current: str | None = folder_id
        while current is not None:
            item = self._items[current]
            if item.parent is not None:
                names.append(item.name)
            current = item.parent
        return "/drive/root:" + "".join("/" + quote(n) for n in reversed(names))

    def _folder_size(self, folder_id: str) -> int:
        total = 0
        for item_id in self._subtree(folder_id):
            content = self._items[item_id].content
            if content is not None:
                total += len(content.data)
        return total

    def _select(self, request: Request, body: dict[str, Any]) -> dict[str, Any]:
        raw = request.query_params.get("$select") or request.query_params.get("select")
        if not raw:
            return body
        wanted = [s.strip() for s in raw.split(",") if s.strip()]
        for name in wanted:
            if name not in _ITEM_PROPERTIES:
                raise _GraphError(
                    400,
                    "invalidRequest",
                    "Parsing OData Select and Expand failed: Could not find a property named"
                    f" '{name}' on type 'microsoft.graph.driveItem'.",
                )
        return {k: v for k, v in body.items() if k in wanted or k.startswith("@odata")}

    def _page_size(self, request: Request) -> int:
        raw = request.query_params.get("$top") or request.query_params.get("top")
        if raw is None:
            return self.default_page_size
        if not raw.isdigit() or int(raw) < 1:
            raise _GraphError(400, "invalidRequest", f"Invalid page size specified: '{raw}'.")
        return min(int(raw), self.max_page_size)

    # ------------------------------------------------------------ children

    def _children_page(self, request: Request, folder: _Item, prefix: str) -> Response:
        if not folder.is_folder:
            raise _GraphError(400, "invalidRequest", "The item is not a folder.")
        self._select(request, {})  # validate $select before anything else
        top = self._page_size(request)
        skip = 0
        token = request.query_params.get("$skiptoken")
        if token is not None:
            try:
                skip = int(base64.urlsafe_b64decode(token.encode() + b"==").decode())
            except ValueError:
                raise _GraphError(400, "invalidRequest", "Invalid skip token.") from None
        kids = sorted(
            (self._items[c] for c in self._children.get(folder.id, ())),
            key=lambda i: (i.name.lower(), i.id),
        )
        page = kids[skip : skip + top]
        path = "root" if folder.parent is None else f"items/{folder.id}"
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#Collection(driveItem)",
            "value": [self._select(request, self._item_json(i)) for i in page],
        }
        if skip + top < len(kids):
            query: dict[str, str] = {"$top": str(top)}
            if "$select" in request.query_params:
                query["$select"] = request.query_params["$select"]
            query["$skiptoken"] = (
                base64.urlsafe_b64encode(str(skip + top).encode()).decode().rstrip("=")
            )
            body["@odata.nextLink"] = f"{prefix}/{path}/children?{urlencode(query)}"
        return JSONResponse(body)

    # ------------------------------------------------------------ delta

    def _delta(
        self, request: Request, drive: _Drive, item: _Item, prefix: str, inline: str | None
    ) -> Response:
        if not item.is_folder:
            raise _GraphError(400, "invalidRequest", "delta is only available on folders.")
        if item.parent is not None and drive.drive_type != "personal":
            raise _GraphError(
                400,
                "invalidRequest",
                "delta is only available on the root item of a drive in OneDrive for Business"
                " and SharePoint.",
            )
        self._select(request, {})
        top = self._page_size(request)
        scope_root = None if item.parent is None else item.id
        path = "root" if scope_root is None else f"items/{item.id}"
        token = request.query_params.get("token") or inline or None
        exclude_parents = "deltaexcludeparent" in {k.lower() for k in request.headers}

        def link(kind: str, value: str) -> str:
            query = {"token": value}
            for name in ("$select", "$top"):
                if name in request.query_params:
                    query[name] = request.query_params[name]
            return f"{prefix}/{path}/delta?{urlencode(query)}"

        def gone() -> _GraphError:
            return _GraphError(
                410,
                "resyncRequired",
                "Resync required. Replace any local items with the server's version (including"
                " deletes) if you're sure that the service was up to date with your local"
                " changes when you last sync'd. Upload any local changes that the server"
                " doesn't know about.",
                inner={"code": "resyncChangesApplyDifferences"},
                headers={"Location": f"{prefix}/{path}/delta"},
            )

        if token == "latest":
            return JSONResponse(
                {
                    "@odata.context": f"{self.graph_url}/$metadata#Collection(driveItem)",
                    "value": [],
                    "@odata.deltaLink": link("delta", self._delta_token(drive.id, scope_root)),
                }
            )
        if token is None:  # a full enumeration of the tree as it is now
            entries = [i for i in self._subtree(item.id) if i in self._items]
            page = _DeltaPage(drive.id, scope_root, entries, 0, self._seq, self._epoch)
        elif token in self._pages:
            page = self._pages.pop(token)
            if page.epoch != self._epoch:
                raise gone()
        else:
            decoded = self._read_delta_token(token)
            if decoded is None:
                if token.startswith("p"):
                    raise gone()  # a continuation we no longer hold
                raise _GraphError(400, "invalidRequest", "Invalid delta token.")
            drive_id, root_of, anchor, epoch, issued = decoded
            if drive_id != drive.id or root_of != scope_root:
                raise _GraphError(400, "invalidRequest", "The delta token belongs elsewhere.")
            expired = (
                self.delta_token_ttl is not None and time.time() - issued > self.delta_token_ttl
            )
            if epoch != self._epoch or expired:
                raise gone()
            entries = self._changes_since(drive.id, scope_root, anchor, exclude_parents)
            page = _DeltaPage(drive.id, scope_root, entries, 0, self._seq, self._epoch)
        chunk = page.entries[page.offset : page.offset + top]
        value = []
        for entry in chunk:
            if entry in self._items:
                value.append(
                    self._select(request, self._item_json(self._items[entry], in_delta=True))
                )
            elif entry in self._tombstones:
                value.append(self._select(request, self._tombstone_json(self._tombstones[entry])))
        body: dict[str, Any] = {
            "@odata.context": f"{self.graph_url}/$metadata#Collection(driveItem)",
            "value": value,
        }
        page.offset += top
        if page.offset < len(page.entries):
            key = "p" + secrets.token_urlsafe(24)
            self._pages[key] = page
            while len(self._pages) > _MAX_PAGES_KEPT:
                self._pages.popitem(last=False)
            body["@odata.nextLink"] = link("next", key)
        else:
            body["@odata.deltaLink"] = link(
                "delta", self._delta_token(drive.id, scope_root, page.anchor)
            )
        return JSONResponse(body)

    def _changes_since(
        self, drive_id: str, scope_root: str | None, anchor: int, exclude_parents: bool
    ) -> list[str]:
        changed: list[tuple[int, str]] = []
        for item in self._items.values():
            if (
                item.drive_id == drive_id
                and item.changed > anchor
                and (scope_root is None or scope_root in self._ancestors_of(item.id))
            ):
                changed.append((item.changed, item.id))
        for tomb in self._tombstones.values():
            if (
                tomb.drive_id == drive_id
                and tomb.changed > anchor
                and (scope_root is None or scope_root in tomb.ancestors)
            ):
                changed.append((tomb.changed, tomb.id))
        changed.sort()
        entries: dict[str, None] = {}
        for _, entry in changed:
            if not exclude_parents:
                parent = (
                    self._items[entry].parent
                    if entry in self._items
                    else self._tombstones[entry].parent
                )
                if parent in self._items:
                    for above in reversed(self._ancestors_of(parent)):
                        if scope_root is None or scope_root in self._ancestors_of(above):
                            entries.setdefault(above, None)
            entries.pop(entry, None)  # the newest occurrence wins: put it last
            entries[entry] = None
        return list(entries)

    def _delta_token(self, drive_id: str, scope_root: str | None, anchor: int | None = None) -> str:
        raw = json.dumps(
            [
                drive_id,
                scope_root,
                self._seq if anchor is None else anchor,
                self._epoch,
                int(time.time()),
            ]
        )
        return "d" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _read_delta_token(self, token: str) -> tuple[str, str | None, int, int, int] | None:
        if not token.startswith("d"):
            return None
        try:
            drive_id, scope_root, anchor, epoch, issued = json.loads(
                base64.urlsafe_b64decode(token[1:].encode() + b"==")
            )
        except ValueError:
            return None
        return drive_id, scope_root, int(anchor), int(epoch), int(issued)

    # ------------------------------------------------------------ content

    def _content(self, request: Request, item: _Item) -> Response:
        if item.is_folder:
            raise _GraphError(400, "invalidRequest", "Only files have content to download.")
        assert item.content is not None
        tags = {
            f'"{{{item.etag_key}}},{item.etag_version}"',
            f'"c:{{{item.etag_key}}},{item.ctag_version}"',
        }
        if request.headers.get("if-none-match") in tags:
            return Response(status_code=304)
        return RedirectResponse(self._download_url(item), status_code=302)

    def _download_url(self, item: _Item) -> str:
        """A signed URL naming the item, its content version and when it expires.

        Signed rather than stored: listing 100,000 files mints 100,000 URLs.
        """
        expires = int(time.time() + self.download_url_ttl)
        claims = [item.id, item.ctag_version, expires, secrets.token_hex(4)]
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        mac = hmac.new(self._url_key, f"{self._url_epoch}.{payload}".encode(), "sha256")
        return f"{self.base_url}/download/{payload}.{mac.hexdigest()[:32]}"

    def _download_target(self, token: str) -> tuple[_Item, _Content] | None:
        """The item and content a download URL still gives, or None (lock held)."""
        payload, _, mac = token.partition(".")
        good = hmac.new(self._url_key, f"{self._url_epoch}.{payload}".encode(), "sha256")
        if token in self._dead_urls or not hmac.compare_digest(mac, good.hexdigest()[:32]):
            return None
        try:
            item_id, version, expires, _ = json.loads(base64.urlsafe_b64decode(payload + "=="))
        except ValueError:
            return None
        item = self._items.get(item_id)
        if expires <= time.time() or item is None or item.content is None:
            return None
        if item.ctag_version != version:
            return None  # the content changed since the URL was handed out
        return item, item.content

    async def _download(self, request: Request) -> Response:
        recorded = RecordedRequest(
            request.method,
            request.url.path,
            dict(request.query_params),
            {k: v for k, v in request.headers.items() if k != "authorization"},
        )
        with self._lock:
            self.requests.append(recorded)
            token = request.path_params["token"]
            target = self._download_target(token)
            if target is None:
                recorded.status = 401
                return JSONResponse(
                    {"error": {"code": "unauthenticated", "message": "The download URL expired."}},
                    status_code=401,
                )
            item, content = target
            data = content.data
            size = len(data)
            try:
                span = _byte_range(request.headers.get("range"), size)
            except _GraphError as error:
                recorded.status = 416
                return Response(status_code=416, headers=error.headers)
            cut, self._cut = self._cut, None
            if cut is not None and cut[1]:
                self._dead_urls.add(token)  # it expired while the body was on its way
            start, end = span or (0, size)
            flip = None
            if self._corrupt and end > start:
                self._corrupt, flip = False, (start + end) // 2
        headers = {
            "Content-Length": str(end - start),
            "Accept-Ranges": "bytes",
            "ETag": f'"{{{item.etag_key}}},{item.ctag_version}"',
        }
        if span is not None:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        recorded.status = 206 if span is not None else 200
        if request.method == "HEAD":
            return Response(status_code=recorded.status, headers=headers, media_type=item.mime)
        return FileBody(
            data,
            start,
            end,
            cut_after=None if cut is None else cut[0],
            flip_at=flip,
            status_code=recorded.status,
            headers=headers,
            media_type=item.mime,
        )


# ---------------------------------------------------------------- downloads


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) of one `bytes=` range; None for the whole file; 416 if unsatisfiable.

    The download page: "If the range can't be generated the Range header may be ignored".
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        if int(last) and size:
            return max(0, size - int(last)), size
        raise _GraphError(416, "invalidRange", "", headers={"Content-Range": f"bytes */{size}"})
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise _GraphError(416, "invalidRange", "", headers={"Content-Range": f"bytes */{size}"})
    return start, min(int(last) + 1, size) if last else size


# ---------------------------------------------------------------- small helpers


def _short(scope: str) -> str:
    """Graph scopes compare case-insensitively, with or without the resource prefix."""
    lowered = scope.lower()
    return lowered[len(GRAPH) :] if lowered.startswith(GRAPH) else lowered


def _scopes(text: str) -> list[str]:
    return list(dict.fromkeys(text.split()))


def _need(granted: set[str], any_of: set[str]) -> None:
    if not granted & any_of:
        raise _GraphError(403, "accessDenied", "Access denied")


def _segment(name: str) -> _GraphError:
    return _GraphError(400, "BadRequest", f"Resource not found for the segment '{name}'.")


def _missing(name: str) -> _TokenError:
    return _TokenError(
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _throttled(fault: _Fault) -> _GraphError:
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    if fault.status == 429:
        return _GraphError(
            429,
            "activityLimitReached",
            "The request has been throttled",
            inner={"code": "throttledRequest", "innerError": {"code": "quota"}},
            headers=headers,
        )
    return _GraphError(
        fault.status,
        "serviceNotAvailable",
        "The service is not available. Try the request again after a delay.",
        headers=headers,
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _graph_time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _aad_time(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _redirect(uri: str, **params: str | None) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{query}", status_code=302)


def _page(title: str, message: str, status: int = 200) -> Response:
    return HTMLResponse(
        f"<!doctype html><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>",
        status_code=status,
    )


def _consent_page(
    action: str, request_id: str, client_id: str, scope: list[str], email: str
) -> Response:
    esc = html.escape
    return HTMLResponse(
        "<!doctype html><title>Permissions requested</title>"
        f"<h1>Let {esc(client_id)} access {esc(email)}?</h1>"
        f"<p>Permissions: {esc(' '.join(scope))}</p>"
        f'<form method="post" action="{esc(action)}">'
        f'<input type="hidden" name="request" value="{esc(request_id)}">'
        '<button type="submit" name="decision" value="allow">Accept</button>'
        '<button type="submit" name="decision" value="deny">Cancel</button>'
        "</form>"
    )
