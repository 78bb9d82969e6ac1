"""Dropbox (HTTP API v2 over httpx): OAuth account with PKCE, lazy folder tree, cursor
sync with longpoll change notifications, verified ranged downloads.

Protocol facts: shared/PROVIDERS.md and www.dropbox.com/developers/documentation/http/
documentation (oauth2/authorize, oauth2/token, users/get_current_account,
files/list_folder, /continue, /longpoll, files/download), /developers/reference/
content-hash, /developers/reference/path-root-header-modes and /namespace-guide,
developers.dropbox.com/error-handling-guide and /detecting-changes-guide.

Sync: each selection is listed recursively (`list_folder`, pages of 2000) to the
cursor the last page gives, with a checkpoint after every page; later scans follow
`list_folder/continue` from the stored cursor, one request when nothing changed. A
cursor Dropbox no longer honours (409 `reset`, or the selection's folder moved so its
path is gone) lists the selection again; rows are keyed by (id, rev), so nothing
already copied is fetched again, and the videos the old cursor knew that the new
listing lacks are reported removed.

Deleted entries carry a path and no id (DeletedMetadata: "remove it and all its
children"), while rows are keyed by the file's id so a rename or move fetches nothing.
So the cursor keeps the selection's videos as relative path -> id, and the folders
under it: a deleted path names a video (removed) or a folder (everything under it is).
A rename arrives as the old path deleted and the same id at its new path, in that
order: a removal followed, within the same page, by the same id found again is not
reported.

Team accounts: the member folder is the default root (home); the team space is
reached with `Dropbox-API-Path-Root: {".tag": "root", "root": <root namespace id>}`,
kept in the node ids and in each video's handle.

Near-real-time: `wait_for_changes` longpolls (notify host, no token) each selection's
cursor and says whether something changed, honouring Dropbox's `backoff` before the
next longpoll; the executor's watcher then scans the connection's sources at once.

Downloads: `files/download` on the content host by `rev:<rev>` (exactly the revision
listed, whose content_hash the engine checks over the whole staged file, see
sync/hashes.py), with Range to resume; a body that breaks off is resumed inline from
where it stopped, a few times, before the engine's own retry takes over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
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
    BadRequest,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.providers.kit.change_feed import FeedExpired, FeedPage, follow, walk_then_follow
from vpack.providers.kit.files import (
    FolderSourceOptions,
    camera_folder,
    is_video_name,
    parse_time,
)
from vpack.providers.kit.http import (
    ApiClient,
    new_client,
    ranged_read,
    resuming,
    retry_after_seconds,
)
from vpack.providers.kit.oauth import OAuthDefaults, env_name
from vpack.providers.registry import register

log = logging.getLogger(__name__)

API_URL = "https://api.dropboxapi.com"
CONTENT_URL = "https://content.dropboxapi.com"
NOTIFY_URL = "https://notify.dropboxapi.com"
PAGE = 2000  # list_folder's documented maximum `limit`
LONGPOLL_MIN, LONGPOLL_MAX = 30, 480  # list_folder/longpoll's `timeout` bounds
LONGPOLL_JITTER = 90  # Dropbox may answer up to this much after the timeout
HOME = "home"
_TEAM = re.compile(r"team:([0-9]{1,30})")
_ID = re.compile(r"id:[A-Za-z0-9_-]{1,100}")


class DropboxConfig(BaseModel):
    """Nothing to fill in: the account comes from signing in with Dropbox."""

    model_config = ConfigDict(extra="ignore")


class DropboxSourceOptions(FolderSourceOptions):
    pass  # where cameras come from: the kit's folder-store options


class _Reset(Permanent):
    """409 reset: the cursor expired, list the folder again."""


def _summary(response: httpx.Response) -> str:
    """The error_summary's tags (Dropbox ends it in a varying run of dots)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    summary = body.get("error_summary") if isinstance(body, dict) else None
    return str(summary or "").rstrip("./")


def describe_error(response: httpx.Response) -> ProviderError:
    """A Dropbox answer as one of our error classes (developers.dropbox.com/error-handling)."""
    status = response.status_code
    summary = _summary(response)
    detail = summary or response.text[:200] or response.reason_phrase
    text = f"Dropbox answered {status}: {detail}"
    if status == 429 or (status == 503 and "retry-after" in response.headers):
        return RateLimited(text, retry_after=retry_after_seconds(response))
    if status == 401:
        return AuthExpired(f"{text}: reconnect the Dropbox account")
    if status == 409:
        tags = summary.split("/")
        if tags[0] == "reset":
            return _Reset(text)
        if "not_found" in tags:
            return NotFound(text)
        return Permanent(text)
    if status == 416:
        return Transient(f"{text}: the file is shorter than what we have", restart=True)
    if status >= 500 or status == 408:
        return Transient(text)
    if status in (403, 422):
        return BadConfig(f"{text}: the account may not read this")
    return Permanent(text)


def _parse_node(node: str) -> tuple[str | None, str]:
    """(team-space root namespace or None for the member's home, the list_folder path).

    Node ids: `home`, `home/id:...`, `team:<namespace>`, `team:<namespace>/id:...`."""
    top, sep, rest = node.partition("/")
    if top == HOME:
        root = None
    elif match := _TEAM.fullmatch(top):
        root = match.group(1)
    else:
        raise BadRequest(f"{node!r} is not a Dropbox folder this tree gave")
    if sep and not _ID.fullmatch(rest):
        raise BadRequest(f"{node!r} is not a Dropbox folder this tree gave")
    return root, rest


def _child(node: str, entry: dict[str, Any]) -> str:
    return f"{node.partition('/')[0]}/{entry['id']}"


def _rel(path_lower: str, base: str) -> str | None:
    """`path_lower` relative to the folder `base` ("" = the root); None when outside."""
    if base == "":
        return path_lower.lstrip("/")
    if path_lower.startswith(base + "/"):
        return path_lower[len(base) + 1 :]
    return None


@dataclass
class _Listing:
    """The cursor: where the selection's listing resumes, and what is under it.

    videos maps each video's path relative to the selection (lower-case) to its id,
    folders lists the folders below it: deleted entries name paths, not ids."""

    selection: str
    root: str | None  # the team space's namespace, or None for the member's home
    folder: str  # list_folder's path for the selection ("" or "id:...")
    base: str  # the selection's path_lower when it was last seen ("" = the top)
    label: str
    token: str  # a list_folder cursor ("" before the first page)
    videos: dict[str, str] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)  # rel lower -> rel display

    def dump(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "selection": self.selection,
                "root": self.root,
                "folder": self.folder,
                "base": self.base,
                "label": self.label,
                "token": self.token,
                "videos": self.videos,
                "folders": self.folders,
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, cursor: str | None, selection: str) -> _Listing | None:
        try:
            data = json.loads(cursor) if cursor else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("v") != 1 or data.get("selection") != selection:
            return None  # from an older layout or another folder: list afresh
        return cls(
            selection,
            data.get("root"),
            str(data["folder"]),
            str(data["base"]),
            str(data["label"]),
            str(data["token"]),
            dict(data.get("videos") or {}),
            dict(data.get("folders") or {}),
        )


def longpoll_token(cursor: str) -> str | None:
    """The Dropbox cursor inside a stored cursor (None before its first page)."""
    try:
        data = json.loads(cursor)
    except ValueError:
        return None
    token = data.get("token") if isinstance(data, dict) and data.get("v") == 1 else None
    return str(token) if token else None


@register
class DropboxProvider(Provider):
    name = "dropbox"
    label = "Dropbox"
    description = "Folders in Dropbox (personal, or a team's member folder and team space)."
    auth = AuthKind.OAUTH2
    features = Features(
        ranged_reads=True,
        hash_kind=HashKind.DROPBOX,
        full_listing=False,
        page_size=PAGE,
        change_notifications=True,
    )
    Config = DropboxConfig
    SourceOptions = DropboxSourceOptions
    oauth = OAuthDefaults(
        authorize_url="https://www.dropbox.com/oauth2/authorize",
        token_url=f"{API_URL}/oauth2/token",
        scopes=("files.metadata.read", "files.content.read", "account_info.read"),
        # offline: a refresh token too (access tokens live about four hours).
        extra_authorize_params={"token_access_type": "offline"},
    )

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.http = self.http or new_client()
        self.api = ApiClient(self.http, describe_error, tokens=self.tokens)
        self.notify = ApiClient(self.http, describe_error)  # longpoll takes no token

        def url(key: str, default: str) -> str:
            # Overrides are for emulators and proxies, like the OAuth URLs.
            return (os.environ.get(env_name(self.name, key)) or default).rstrip("/")

        self.base = url("API_URL", API_URL)
        self.content = url("CONTENT_URL", CONTENT_URL)
        self.notify_base = url("NOTIFY_URL", NOTIFY_URL)
        self._account: dict[str, Any] | None = None
        self._not_before = 0.0  # monotonic time the next longpoll may start (backoff)

    async def _rpc(self, route: str, arg: dict[str, Any] | None, root: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if root is not None:
            headers["Dropbox-API-Path-Root"] = json.dumps({".tag": "root", "root": root})
        return await self.api.json(
            "POST",
            f"{self.base}/2/{route}",
            content=json.dumps(arg).encode(),
            headers=headers,
        )

    # ------------------------------------------------------------ account and tree
    async def _me(self) -> dict[str, Any]:
        if self._account is None:
            self._account = dict(await self._rpc("users/get_current_account", None))
        return self._account

    def _team_root(self, me: dict[str, Any]) -> str | None:
        info = me.get("root_info") or {}
        if info.get(".tag") == "team" and info.get("root_namespace_id"):
            return str(info["root_namespace_id"])
        return None

    async def check(self) -> Identity:
        me = await self._me()
        email = str(me.get("email") or me.get("account_id") or "unknown")
        team = self._team_root(me) is not None
        return Identity(
            id=str(me.get("account_id") or email),
            label=email,
            details={
                "email": email,
                "name": (me.get("name") or {}).get("display_name"),
                "team": team,
                "team_name": (me.get("team") or {}).get("name") if team else None,
            },
        )

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        if node is None:
            return await self._tops()
        root, path = _parse_node(node)
        if page:
            listing = await self._rpc("files/list_folder/continue", {"cursor": page}, root)
        else:
            listing = await self._rpc(
                "files/list_folder",
                {"path": path, "recursive": False, "limit": PAGE},
                root,
            )
        # Dropbox gives no child count: every folder may have children (the tree
        # finds out when it is opened), rather than one request per folder shown.
        nodes = [
            Node(id=_child(node, entry), name=str(entry.get("name") or entry["id"]))
            for entry in listing.get("entries", [])
            if entry.get(".tag") == "folder" and entry.get("id")
        ]
        more = bool(listing.get("has_more"))
        return BrowsePage(nodes=nodes, next_page=str(listing["cursor"]) if more else None)

    async def _tops(self) -> BrowsePage:
        """The member's own Dropbox, and for a team account its team space too."""
        me = await self._me()
        team = self._team_root(me)
        if team is None:
            return BrowsePage(nodes=[Node(id=HOME, name="Dropbox", kind="drive")])
        return BrowsePage(
            nodes=[
                Node(id=HOME, name="My folder", kind="drive"),
                Node(id=f"team:{team}", name="Team space", kind="drive"),
            ]
        )

    async def validate_selection(self, selection: str) -> str:
        return (await self._folder(selection))[1]

    async def _folder(self, selection: str) -> tuple[str, str]:
        """The selected folder's path_lower ("" for a top) and its name."""
        root, path = _parse_node(selection)
        if not path:
            return "", "Team space" if root else "Dropbox"
        try:
            found = await self._rpc("files/get_metadata", {"path": path}, root)
        except NotFound:
            raise BadConfig(f"Dropbox has no folder {selection} (or you may not read it)") from None
        if found.get(".tag") != "folder":
            raise BadConfig(f"{found.get('name', selection)} is a file, not a folder")
        return str(found.get("path_lower") or ""), str(found.get("name") or path)

    # ------------------------------------------------------------ scan
    def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        assert isinstance(options, DropboxSourceOptions)
        root, folder = _parse_node(selection)

        async def begin() -> _Listing:
            base, label = await self._folder(selection)
            return _Listing(selection, root, folder, base, label, token="")

        async def page_from(token: str) -> FeedPage:
            try:
                if token:
                    body = await self._rpc("files/list_folder/continue", {"cursor": token}, root)
                else:  # the first page of a (re)listing
                    arg = {"path": folder, "recursive": True, "limit": PAGE}
                    body = await self._rpc("files/list_folder", arg, root)
            except (_Reset, NotFound) as exc:
                # reset: the cursor expired; not_found: the selection moved or went.
                raise FeedExpired(f"Dropbox: {exc}") from None
            more = bool(body.get("has_more"))
            # One change per page: a page is applied as a whole (see _apply).
            entries = list(body.get("entries", []))
            return FeedPage([entries], str(body["cursor"]), caught_up=not more)

        def apply(listing: _Listing, entries: list[dict[str, Any]]) -> AsyncIterator[ScanEvent]:
            return self._apply(listing, entries, options)

        previous = _Listing.load(cursor, selection)

        async def walk(listing: _Listing) -> AsyncIterator[ScanEvent]:
            async for event in follow(listing, page_from, apply):
                yield event
            if previous is not None:
                # Listed again after a reset: what was there before and is not now went
                # while the cursor was dead (no deleted entry will ever say so).
                still = set(listing.videos.values())
                for remote_id in dict.fromkeys(previous.videos.values()):
                    if remote_id not in still:
                        yield Removed(remote_id)

        return walk_then_follow(previous, begin=begin, walk=walk, page_from=page_from, apply=apply)

    async def _apply(
        self, listing: _Listing, entries: list[dict[str, Any]], options: DropboxSourceOptions
    ) -> AsyncIterator[ScanEvent]:
        """One page of entries, in Dropbox's order (a folder before what is in it)."""
        found: dict[str, RemoteVideo] = {}
        removed: list[str] = []
        for entry in entries:
            tag = entry.get(".tag")
            path = str(entry.get("path_lower") or "")
            if tag == "folder" and entry.get("id") == listing.folder:
                listing.base = path  # the selection itself (listed first)
                continue
            rel = _rel(path, listing.base)
            if rel is None or not rel:
                continue  # the selection itself, or outside it
            if tag == "deleted":
                removed += self._forget(listing, rel)
            elif tag == "folder":
                listing.folders[rel] = _rel_display(entry, listing.base) or rel
            elif tag == "file":
                removed += self._forget(listing, rel, keep=str(entry.get("id")))
                if is_video_name(str(entry.get("name") or "")) and entry.get("id"):
                    video = self._video(listing, entry, options)
                    listing.videos[rel] = video.remote_id
                    found[video.remote_id] = video
        for video in found.values():
            yield Found(video)
        # A rename is the old path deleted, then the same id at the new one.
        for remote_id in dict.fromkeys(removed):
            if remote_id not in found:
                yield Removed(remote_id)

    def _forget(self, listing: _Listing, rel: str, keep: str | None = None) -> list[str]:
        """A deleted path (or one a file now takes): the video there, or every video
        and folder under a folder there. Returns the ids of the videos forgotten."""
        gone: list[str] = []
        remote_id = listing.videos.pop(rel, None)
        if remote_id is not None and remote_id != keep:
            gone.append(remote_id)
        if listing.folders.pop(rel, None) is not None:
            prefix = rel + "/"
            for key in [k for k in listing.videos if k.startswith(prefix)]:
                gone.append(listing.videos.pop(key))
            for key in [k for k in listing.folders if k.startswith(prefix)]:
                del listing.folders[key]
        return gone

    def _video(
        self, listing: _Listing, entry: dict[str, Any], options: DropboxSourceOptions
    ) -> RemoteVideo:
        shown = _rel_display(entry, listing.base) or str(entry.get("name"))
        camera = listing.label
        if options.cameras_from == "subfolders":
            camera = camera_folder(shown) or listing.label
        content_hash = entry.get("content_hash")
        extra: dict[str, Any] = {"rev": entry["rev"]}
        if listing.root is not None:
            extra["root"] = listing.root
        return RemoteVideo(
            remote_id=str(entry["id"]),
            revision=str(entry["rev"]),
            name=str(entry.get("name") or entry["id"]),
            camera=camera,
            size=int(entry["size"]) if entry.get("size") is not None else None,
            hash=str(content_hash) if content_hash else None,
            modified_at=parse_time(entry.get("server_modified")),
            path=f"{listing.label}/{shown}",
            extra=extra,
        )

    # ------------------------------------------------------------ change notifications
    async def wait_for_changes(self, cursors: list[str], seconds: float) -> bool:
        """Longpoll every selection's cursor at once; True as soon as one has changes.

        Dropbox's `backoff` (seconds before the next longpoll) is kept and waited out
        at the start of the next call. A cursor Dropbox reset counts as a change: the
        scan lists the selection again."""
        tokens = list(dict.fromkeys(t for c in cursors if (t := longpoll_token(c))))
        if not tokens:
            await asyncio.sleep(min(seconds, LONGPOLL_MIN))
            return False
        delay = self._not_before - time.monotonic()
        if delay > 0:
            await asyncio.sleep(min(delay, seconds))
            if delay > seconds:
                return False
        wait = int(min(max(seconds, LONGPOLL_MIN), LONGPOLL_MAX))
        polls = [asyncio.ensure_future(self._longpoll(t, wait)) for t in tokens]
        try:
            for done in asyncio.as_completed(polls):
                if await done:
                    return True
            return False
        finally:
            for poll in polls:
                poll.cancel()

    async def _longpoll(self, token: str, seconds: int) -> bool:
        try:
            body = await self.notify.json(
                "POST",
                f"{self.notify_base}/2/files/list_folder/longpoll",
                content=json.dumps({"cursor": token, "timeout": seconds}).encode(),
                headers={"Content-Type": "application/json"},
                timeout=httpx.Timeout(seconds + LONGPOLL_JITTER + 30, connect=15),
            )
        except _Reset:
            return True
        backoff = body.get("backoff")
        if isinstance(backoff, int | float) and backoff > 0:
            self._not_before = max(self._not_before, time.monotonic() + float(backoff))
        return bool(body.get("changes"))

    # ------------------------------------------------------------ bytes
    def expected_hash(self, video: RemoteVideo) -> str | None:
        return video.hash  # content_hash, checked by the engine over the whole `.part`

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        rev = str(video.extra.get("rev") or video.revision)
        headers = {"Dropbox-API-Arg": json.dumps({"path": f"rev:{rev}"})}
        root = video.extra.get("root")
        if root:
            headers["Dropbox-API-Path-Root"] = json.dumps({".tag": "root", "root": str(root)})
        url = f"{self.content}/2/files/download"

        def read(position: int) -> AsyncIterator[bytes]:
            return ranged_read(self.api, url, position, video.name, headers=dict(headers))

        return resuming(read, offset, video.name)


def _rel_display(entry: dict[str, Any], base: str) -> str | None:
    """The entry's display path relative to the folder whose path_lower is `base`."""
    shown = str(entry.get("path_display") or "")
    if base == "":
        return shown.lstrip("/") or None
    return shown[len(base) + 1 :] if len(shown) > len(base) + 1 else None
