"""Google Drive (v3 REST over httpx): OAuth account, folder tree, changes-feed sync, ranged reads.

Five REST endpoints over the shared HTTP layer rather than google-api-python-client:
that client is synchronous (httplib2), large, and does not stream downloads the
way a resumable, verified copy needs. Protocol facts: shared/PROVIDERS.md and
developers.google.com/workspace/drive/api (files.list, files.get, changes.list,
changes.getStartPageToken, drives.list, about.get, guides/handle-errors).

Sync: the first scan takes a changes start token, then walks the selected folder
tree; later scans read the account-wide changes feed from the stored token and keep
what lies under the selected folders (the cursor remembers those folders, since
Drive's feed has no ancestry filter).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from vpack.providers.base import (
    AuthKind,
    BrowsePage,
    Features,
    Found,
    HashKind,
    Identity,
    Node,
    Provider,
    RemoteVideo,
    Removed,
    ScanEvent,
)
from vpack.providers.errors import (
    AuthExpired,
    BadConfig,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.providers.kit.change_feed import FeedExpired, FeedPage, RoundMemo, walk_then_follow
from vpack.providers.kit.files import FolderSourceOptions, is_video_name, parse_time
from vpack.providers.kit.http import ApiClient, new_client, ranged_read, retry_after_seconds
from vpack.providers.kit.oauth import OAuthDefaults, env_name
from vpack.providers.registry import register

log = logging.getLogger(__name__)

API_URL = "https://www.googleapis.com"
FOLDER = "application/vnd.google-apps.folder"
MY_DRIVE = "root"  # Drive's alias for the signed-in user's My Drive
FILE_FIELDS = "id,name,mimeType,size,md5Checksum,modifiedTime,parents,trashed"
PAGE = 1000  # Drive's largest files.list / changes.list page
PARENTS_PER_QUERY = 25  # "'a' in parents or ..." clauses per listing request
QUOTA_PARK_SECONDS = 6 * 3600.0  # downloadQuotaExceeded lasts up to a day: ask rarely
ALL_DRIVES = {"supportsAllDrives": "true", "includeItemsFromAllDrives": "true"}
_RATE_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "sharingRateLimitExceeded"}


class DriveConfig(BaseModel):
    """Nothing to fill in: the account comes from signing in with Google."""

    model_config = ConfigDict(extra="ignore")


class DriveSourceOptions(FolderSourceOptions):
    pass  # where cameras come from: the kit's folder-store options


def _quoted(value: str) -> str:
    """A string literal for Drive's q language (single quotes, backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_video(item: dict[str, Any]) -> bool:
    mime = str(item.get("mimeType", ""))
    if mime == FOLDER or mime.startswith("application/vnd.google-apps."):
        return False
    return mime.startswith("video/") or is_video_name(str(item.get("name", "")))


def describe_error(response: httpx.Response) -> ProviderError:
    """Drive's error body (guides/handle-errors) as one of our error classes."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    reasons = {str(e.get("reason")) for e in error.get("errors", []) if isinstance(e, dict)}
    message = str(error.get("message") or response.reason_phrase or "no message")
    status = response.status_code
    text = f"Google Drive answered {status}: {message}"
    if status == 429 or (status == 403 and reasons & _RATE_REASONS):
        return RateLimited(text, retry_after=retry_after_seconds(response))
    if "downloadQuotaExceeded" in reasons:
        return Transient(
            f"{text} (Google limits how often one file may be downloaded; "
            "VPACK tries this file again in a few hours)",
            retry_after=QUOTA_PARK_SECONDS,
        )
    if "cannotDownloadAbusiveFile" in reasons:
        return Permanent(f"{text}: Google flagged this file; download it in Drive if it is safe")
    if status == 401:
        return AuthExpired(f"{text}: reconnect the Google account")
    if status == 404:
        return NotFound(text)
    if status >= 500 or status == 408:
        return Transient(text)
    if status == 403:
        return BadConfig(f"{text}: the account may not read this")
    return Permanent(text)


@dataclass
class _Tree:
    """The cursor: the changes token and every folder under the selection.

    folders maps folder id -> [parent id, camera]; the selection's parent is "".
    """

    selection: str
    token: str
    folders: dict[str, list[str]] = field(default_factory=dict)

    def dump(self) -> str:
        return json.dumps(
            {"v": 1, "selection": self.selection, "token": self.token, "folders": self.folders},
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, cursor: str | None, selection: str) -> _Tree | None:
        try:
            data = json.loads(cursor) if cursor else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("v") != 1 or data["selection"] != selection:
            return None  # from an older layout or another folder: list afresh
        return cls(selection, str(data["token"]), dict(data["folders"]))

    def camera_of(self, folder: str) -> str:
        return self.folders[folder][1]

    def forget(self, folder: str) -> None:
        """Drop a folder that left the selection, with every folder below it."""
        gone = {folder}
        changed = True
        while changed:
            below = {f for f, (parent, _) in self.folders.items() if parent in gone} - gone
            changed = bool(below)
            gone |= below
        for f in gone:
            self.folders.pop(f, None)


@register
class GoogleDriveProvider(Provider):
    name = "google_drive"
    label = "Google Drive"
    description = "Folders in your Google Drive or shared drives (sign in with Google)."
    auth = AuthKind.OAUTH2
    features = Features(
        ranged_reads=True,
        hash_kind=HashKind.MD5,
        full_listing=False,
        page_size=PAGE,
    )
    Config = DriveConfig
    SourceOptions = DriveSourceOptions
    oauth = OAuthDefaults(
        authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - an endpoint
        scopes=("https://www.googleapis.com/auth/drive.readonly",),
        # offline + consent: Google sends a refresh token only then (web-server guide).
        extra_authorize_params={"access_type": "offline", "prompt": "consent"},
        client_secret_required=True,
    )

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # Without tokens (not signed in) every call answers 401, i.e. AuthExpired.
        self.http = self.http or new_client()
        self.api = ApiClient(self.http, describe_error, tokens=self.tokens)
        # The endpoint override is for emulators and proxies, like the OAuth URLs.
        self.base = (os.environ.get(env_name(self.name, "API_URL")) or API_URL).rstrip("/")
        self._memo = RoundMemo()

    def _url(self, path: str) -> str:
        return f"{self.base}/drive/v3/{path}"

    async def _get(self, path: str, **params: str) -> Any:
        return await self.api.json("GET", self._url(path), params=params)

    # ------------------------------------------------------------ account and tree
    async def check(self) -> Identity:
        about = await self._get("about", fields="user(displayName,emailAddress,permissionId)")
        user = about.get("user", {})
        email = str(user.get("emailAddress") or user.get("permissionId") or "unknown")
        return Identity(
            id=email, label=email, details={"name": user.get("displayName"), "email": email}
        )

    async def validate_selection(self, selection: str) -> str:
        return await self._folder_name(selection)

    async def _folder_name(self, folder: str) -> str:
        if folder == MY_DRIVE:
            return "My Drive"
        try:
            item = await self._get(f"files/{folder}", fields="id,name,mimeType", **_FLAGS)
        except NotFound:
            raise BadConfig(
                f"Google Drive has no folder {folder} (or it is not shared with you)"
            ) from None
        if item.get("mimeType") != FOLDER:
            raise BadConfig(f"{item.get('name', folder)} is a file, not a folder")
        return str(item.get("name") or folder)

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        if node is None:
            return await self._tops(page)
        params = {
            "q": f"{_quoted(node)} in parents and mimeType = '{FOLDER}' and trashed = false",
            "fields": "nextPageToken,files(id,name)",
            "pageSize": str(PAGE),
            "orderBy": "name",
            **ALL_DRIVES,
        }
        if page:
            params["pageToken"] = page
        listing = await self._get("files", **params)
        folders = listing.get("files", [])
        parents = await self._having_subfolders([str(f["id"]) for f in folders])
        nodes = [
            Node(id=str(f["id"]), name=str(f["name"]), has_children=f["id"] in parents)
            for f in folders
        ]
        return BrowsePage(nodes=nodes, next_page=listing.get("nextPageToken"))

    async def _tops(self, page: str | None) -> BrowsePage:
        """My Drive, then the shared drives the account belongs to."""
        params = {"fields": "nextPageToken,drives(id,name)", "pageSize": "100"}
        if page:
            params["pageToken"] = page
        listing = await self._get("drives", **params)
        nodes = [] if page else [Node(id=MY_DRIVE, name="My Drive", kind="drive")]
        nodes += [
            Node(id=str(d["id"]), name=str(d["name"]), kind="shared_drive")
            for d in listing.get("drives", [])
        ]
        return BrowsePage(nodes=nodes, next_page=listing.get("nextPageToken"))

    async def _having_subfolders(self, ids: list[str]) -> set[str]:
        """Which of these folders hold folders: the tree's expand hint, one query per 25."""
        found: set[str] = set()
        for start in range(0, len(ids), PARENTS_PER_QUERY):
            chunk = ids[start : start + PARENTS_PER_QUERY]
            async for item in self._list(chunk, folders_only=True, fields="parents"):
                found.update(p for p in item.get("parents", []) if p in chunk)
        return found

    async def _list(
        self, parents: list[str], *, folders_only: bool = False, fields: str = FILE_FIELDS
    ) -> AsyncIterator[dict[str, Any]]:
        """Every live child of these folders, one query for them all, page by page."""
        query = "(" + " or ".join(f"{_quoted(p)} in parents" for p in parents) + ")"
        query += " and trashed = false"
        if folders_only:
            query += f" and mimeType = '{FOLDER}'"
        params = {
            "q": query,
            "fields": f"nextPageToken,files({fields})",
            "pageSize": str(PAGE),
            **ALL_DRIVES,
        }
        while True:
            listing = await self._get("files", **params)
            for item in listing.get("files", []):
                yield item
            token = listing.get("nextPageToken")
            if not token:
                return
            params["pageToken"] = token

    # ------------------------------------------------------------ scan
    def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        assert isinstance(options, DriveSourceOptions)

        async def begin() -> _Tree:
            token = await self._start_token()
            return _Tree(selection, token, {selection: ["", await self._folder_name(selection)]})

        return walk_then_follow(
            _Tree.load(cursor, selection),
            begin=begin,
            walk=lambda tree: self._walk(tree, [selection], options),
            page_from=self._changes_page,
            apply=lambda tree, change: self._apply(tree, change, options),
        )

    async def _start_token(self) -> str:
        body = await self._memoized(("start",), "changes/startPageToken", {**_FLAGS})
        return str(body["startPageToken"])

    async def _walk(
        self, tree: _Tree, start: list[str], options: DriveSourceOptions
    ) -> AsyncIterator[ScanEvent]:
        """Found events for every video below `start` (folders already in the tree)."""
        pending = list(start)
        while pending:
            batch, pending = pending[:PARENTS_PER_QUERY], pending[PARENTS_PER_QUERY:]
            async for item in self._list(batch):
                parent = next((p for p in item.get("parents", []) if p in tree.folders), None)
                if parent is None:
                    continue
                if item.get("mimeType") == FOLDER:
                    tree.folders[item["id"]] = [parent, self._camera(tree, parent, item, options)]
                    pending.append(str(item["id"]))
                elif _is_video(item):
                    yield Found(self._video(item, tree.camera_of(parent)))

    def _camera(
        self, tree: _Tree, parent: str, folder: dict[str, Any], options: DriveSourceOptions
    ) -> str:
        """A sub-folder of the selection names its camera; deeper folders inherit."""
        if parent == tree.selection and options.cameras_from == "subfolders":
            return str(folder.get("name") or folder["id"])
        return tree.camera_of(parent)

    async def _changes_page(self, token: str) -> FeedPage:
        params = {
            "pageToken": token,
            "pageSize": str(PAGE),
            "includeRemoved": "true",
            "fields": "nextPageToken,newStartPageToken,"
            f"changes(changeType,removed,fileId,file({FILE_FIELDS}))",
            **ALL_DRIVES,
        }
        try:
            page = await self._memoized(("changes", token), "changes", params)
        except (NotFound, Permanent) as exc:
            raise FeedExpired(f"Google Drive: {exc}") from None  # an expired or unknown token
        following = str(page.get("newStartPageToken") or page.get("nextPageToken") or "")
        if not following:
            raise Transient("Google Drive's changes page had neither next nor new token")
        return FeedPage(
            page.get("changes", []), following, caught_up=bool(page.get("newStartPageToken"))
        )

    def begin_scan(self) -> None:
        self._memo.clear()

    async def _memoized(self, key: tuple[str, ...], path: str, params: dict[str, str]) -> Any:
        """Drive's feed is account-wide: each page once per scan round (RoundMemo)."""
        return await self._memo.get(key, lambda: self._get(path, **params))

    async def _apply(
        self, tree: _Tree, change: dict[str, Any], options: DriveSourceOptions
    ) -> AsyncIterator[ScanEvent]:
        if change.get("changeType", "file") != "file":
            return
        file_id = str(change.get("fileId"))
        item = change.get("file") or {}
        gone = bool(change.get("removed")) or bool(item.get("trashed"))
        parent = next((p for p in item.get("parents", []) if p in tree.folders), None)
        if file_id in tree.folders and file_id != tree.selection:
            if gone or parent is None:
                tree.forget(file_id)  # its files' own changes report them
            return
        if item.get("mimeType") == FOLDER:
            if not gone and parent is not None:
                # New here (made, or moved in with its contents): walk it once.
                tree.folders[file_id] = [parent, self._camera(tree, parent, item, options)]
                async for event in self._walk(tree, [file_id], options):
                    yield event
            return
        if gone or parent is None:
            if not item or _is_video(item):
                yield Removed(file_id)  # scoped to this selection by the engine
            return
        if _is_video(item):
            yield Found(self._video(item, tree.camera_of(parent)))

    def _video(self, item: dict[str, Any], camera: str) -> RemoteVideo:
        md5 = item.get("md5Checksum")
        size = int(item["size"]) if item.get("size") is not None else None
        modified = parse_time(item.get("modifiedTime"))
        return RemoteVideo(
            remote_id=str(item["id"]),
            # The content digest, not `version`: a rename bumps the version but needs no copy.
            revision=str(md5 or f"{item.get('modifiedTime')}:{size}"),
            name=str(item.get("name") or item["id"]),
            camera=camera,
            size=size,
            hash=str(md5).lower() if md5 else None,
            modified_at=modified,
            path=str(item.get("name") or ""),
        )

    # ------------------------------------------------------------ bytes
    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        url = self._url(f"files/{video.remote_id}")
        params = {"alt": "media", "supportsAllDrives": "true"}
        return ranged_read(self.api, url, offset, video.name, params=params)


_FLAGS = {"supportsAllDrives": "true"}
