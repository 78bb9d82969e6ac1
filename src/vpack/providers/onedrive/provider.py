"""Microsoft OneDrive (Graph v1.0 over httpx): OAuth account, folder tree, delta sync,
verified ranged downloads.

Protocol facts: shared/PROVIDERS.md and learn.microsoft.com (graph/api driveitem-delta,
driveitem-list-children, driveitem-get-content, drive-get, user-get, site-search,
drive-list; graph/errors, graph/throttling; resources/driveitem, resources/hashes;
identity-platform v2-oauth2-auth-code-flow, refresh-tokens).

Sync: one delta feed per drive, always from the drive's root (OneDrive for Business
serves delta at the root only). The first scan enumerates the drive through the feed,
page by page to its deltaLink, with a checkpoint after every page; later scans follow
the deltaLink, one request when nothing changed. Delta items carry no parent *path*,
so the cursor keeps every folder of the drive (id -> parent, name) and a file belongs
to a selection when its parent chain reaches the selected folder. A folder moved into
the selection arrives alone (Graph does not repeat its descendants), so it is listed
once with `children`. 410 resyncRequired walks the feed again from nothing; rows are
keyed by (id, revision), so nothing already copied is fetched again.

Revision: the file's QuickXorHash and size where Graph gives the hash (the one hash
Microsoft documents on both kinds of drive), else cTag, else eTag. Not cTag first:
business delta omits cTag while business `children` listings carry it, so a revision
built on cTag would change kind between a feed page and a folder walk of the same
unchanged file and fetch it again. Content hash and size change with content only, so
a rename or move fetches nothing on either kind of drive.

Downloads: `/content` answers 302 to a pre-authenticated URL, read with Range and
without our token; a URL refused (expired, about an hour) is asked for afresh and the
read resumes where it stopped. The engine checks size and QuickXorHash over the whole
staged file (sync/hashes.py), so a `.part` resumed from any process is checked too.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import AsyncGenerator, AsyncIterator
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
from vpack.providers.kit.change_feed import (
    FeedExpired,
    FeedPage,
    RoundMemo,
    follow,
    walk_then_follow,
)
from vpack.providers.kit.files import FolderSourceOptions, is_video_name, parse_time
from vpack.providers.kit.http import ApiClient, new_client, ranged_read, retry_after_seconds
from vpack.providers.kit.oauth import OAuthDefaults, env_name
from vpack.providers.registry import register

log = logging.getLogger(__name__)

API_URL = "https://graph.microsoft.com/v1.0"
AUTHORITY = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
PAGE = 1000  # the largest $top community clients use; Graph does not document one
# What a scan reads of each item ($select keeps delta pages small).
ITEM_FIELDS = "id,name,size,cTag,eTag,file,folder,root,deleted,parentReference,lastModifiedDateTime"
SITES_SCOPE = "Sites.Read.All"
INLINE_RETRIES = 3  # fresh download URLs asked for within one read before giving up


class OneDriveConfig(BaseModel):
    """Nothing to fill in: the account comes from signing in with Microsoft."""

    model_config = ConfigDict(extra="ignore")


class OneDriveSourceOptions(FolderSourceOptions):
    pass  # where cameras come from: the kit's folder-store options


class _Resync(Permanent):
    """Graph's 410 resyncRequired: the delta token is dead, enumerate again."""


class _UrlDead(ProviderError):
    """The pre-authenticated download URL is refused (expired): ask for a new one.

    Not a Transient, so the HTTP layer does not retry the dead URL itself."""


def _graph_error(response: httpx.Response) -> tuple[str, str]:
    """graph/errors: {"error": {"code", "message", "innerError"}}."""
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    message = str(error.get("message") or response.reason_phrase or "no message")
    return str(error.get("code") or ""), message


def describe_error(response: httpx.Response) -> ProviderError:
    """A Graph answer as one of our error classes."""
    code, message = _graph_error(response)
    status = response.status_code
    text = f"OneDrive answered {status} {code}: {message}".replace("  ", " ")
    if status in (429, 503) or code in ("activityLimitReached", "throttledRequest"):
        # graph/throttling: Retry-After on 429, "may be" on 503; absent -> backoff.
        return RateLimited(text, retry_after=retry_after_seconds(response))
    if status == 401:
        return AuthExpired(f"{text}: reconnect the Microsoft account")
    if status == 410 or code == "resyncRequired":
        return _Resync(text)
    if status == 404:
        return NotFound(text)
    if status >= 500 or status == 408:
        return Transient(text)
    if status == 403:
        return BadConfig(f"{text}: the account may not read this")
    return Permanent(text)


def describe_download_error(response: httpx.Response) -> ProviderError:
    """The pre-authenticated download host's answers (no token of ours involved)."""
    status = response.status_code
    text = f"OneDrive download answered {status}"
    if status in (401, 403, 404, 410):
        return _UrlDead(f"{text}: the download URL is no longer valid")
    if status in (429, 503):
        return RateLimited(text, retry_after=retry_after_seconds(response))
    if status == 416:
        return Transient(f"{text}: the file is shorter than what we have", restart=True)
    if status >= 500 or status == 408:
        return Transient(text)
    return Permanent(text)


def _split(node: str) -> tuple[str, str]:
    """A node id is `<drive id>:<item id>` ("root" for a drive's top)."""
    drive, sep, item = node.partition(":")
    if not sep or not drive or not item or "/" in node or "?" in node:
        raise BadRequest(f"{node!r} is not a OneDrive folder this tree gave")
    return drive, item


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


@dataclass
class _Feed:
    """The cursor: where the drive's delta feed resumes, and the drive's folders.

    folders maps every folder seen in the feed to [parent id, name] (the root's parent
    is ""); orphans are files seen before their folder during the first enumeration
    (Graph does not promise parents first)."""

    selection: str
    drive: str
    top: str  # the selected folder's real item id
    label: str  # its name, the camera of files directly in it
    token: str  # a delta URL: a nextLink, the deltaLink, or a fresh enumeration
    folders: dict[str, list[str]] = field(default_factory=dict)
    walking: bool = True  # the first enumeration is still under way
    orphans: list[dict[str, Any]] = field(default_factory=list)

    def dump(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "selection": self.selection,
                "drive": self.drive,
                "top": self.top,
                "label": self.label,
                "token": self.token,
                "folders": self.folders,
                "walking": self.walking,
                "orphans": self.orphans,
            },
            separators=(",", ":"),
        )

    @classmethod
    def load(cls, cursor: str | None, selection: str) -> _Feed | None:
        try:
            data = json.loads(cursor) if cursor else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("v") != 1 or data["selection"] != selection:
            return None  # from an older layout or another folder: enumerate afresh
        return cls(
            selection,
            str(data["drive"]),
            str(data["top"]),
            str(data["label"]),
            str(data["token"]),
            dict(data["folders"]),
            bool(data.get("walking")),
            list(data.get("orphans") or []),
        )

    def chain(self, folder: str) -> list[str] | None:
        """The folders from the selection down to `folder` (the selection first), or None
        when `folder` is not under the selection (or its chain is not known yet)."""
        path: list[str] = []
        current = folder
        while current != self.top:
            entry = self.folders.get(current)
            if entry is None or not entry[0] or len(path) > 10_000:
                return None
            path.append(current)
            current = entry[0]
        path.append(self.top)
        return path[::-1]

    def known(self, folder: str) -> bool:
        """Whether `folder`'s chain reaches the drive's root through folders we know."""
        current, steps = folder, 0
        while current and steps < 10_000:
            entry = self.folders.get(current)
            if entry is None:
                return False
            current, steps = entry[0], steps + 1
        return True


@register
class OneDriveProvider(Provider):
    name = "onedrive"
    label = "Microsoft OneDrive"
    description = "Folders in OneDrive (personal or work) and SharePoint document libraries."
    auth = AuthKind.OAUTH2
    features = Features(
        ranged_reads=True,
        hash_kind=HashKind.QUICKXOR,
        full_listing=False,
        page_size=PAGE,
    )
    Config = OneDriveConfig
    SourceOptions = OneDriveSourceOptions
    oauth = OAuthDefaults(
        authorize_url=f"{AUTHORITY}/authorize",
        token_url=f"{AUTHORITY}/token",
        # offline_access: Microsoft sends a refresh token only then.
        scopes=("Files.Read", "User.Read", "offline_access"),
        tenant="common",
        optional_scopes={"DOCUMENT_LIBRARIES": (SITES_SCOPE,)},
        refresh_with_scope=True,
    )

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # Without tokens (not signed in) every call answers 401, i.e. AuthExpired.
        self.http = self.http or new_client()
        self.api = ApiClient(self.http, describe_error, tokens=self.tokens)
        # The download URLs are pre-authenticated: never send them our token.
        self.downloads = ApiClient(self.http, describe_download_error)
        # The endpoint override is for emulators and proxies, like the OAuth URLs.
        self.base = (os.environ.get(env_name(self.name, "API_URL")) or API_URL).rstrip("/")
        self._memo = RoundMemo()
        self._urls: dict[str, str] = {}  # item id -> the last download URL handed out

    async def _get(self, path: str, **params: str) -> Any:
        return await self.api.json("GET", f"{self.base}/{path}", params=params)

    async def _get_link(self, link: str) -> Any:
        """A nextLink or deltaLink, followed verbatim, but only to Graph itself: page
        tokens come back from browsers, and our token must not go anywhere else."""
        if not link.startswith(f"{self.base}/"):
            raise BadRequest("that page link does not point at Microsoft Graph")
        return await self.api.json("GET", link)

    # ------------------------------------------------------------ account and tree
    async def check(self) -> Identity:
        me = await self._get("me")
        drive = await self._get("me/drive")
        upn = str(me.get("userPrincipalName") or me.get("mail") or me.get("id") or "unknown")
        return Identity(
            id=upn,
            label=upn,
            details={
                "name": me.get("displayName"),
                "email": me.get("mail") or upn,
                "drive_type": drive.get("driveType"),  # personal | business
                "drive_id": drive.get("id"),
            },
        )

    def _libraries_granted(self) -> bool:
        scope = (self.tokens.tokens.scope or "") if self.tokens else ""
        return SITES_SCOPE.lower() in scope.lower()

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        if node is None:
            return await self._tops()
        drive, item = _split(node)
        if page:
            listing = await self._get_link(page)
        else:
            listing = await self._get(
                f"drives/{drive}/items/{item}/children", **{"$top": str(PAGE)}
            )
        nodes = [
            Node(
                id=f"{drive}:{child['id']}",
                name=str(child.get("name") or child["id"]),
                has_children=int(child["folder"].get("childCount") or 0) > 0,
            )
            for child in listing.get("value", [])
            if isinstance(child.get("folder"), dict)
        ]
        return BrowsePage(nodes=nodes, next_page=listing.get("@odata.nextLink"))

    async def _tops(self) -> BrowsePage:
        """My files, then (when the account granted Sites.Read.All) document libraries."""
        mine = await self._get("me/drive", **{"$select": "id,driveType"})
        nodes = [Node(id=f"{mine['id']}:root", name="My files", kind="drive")]
        if self._libraries_granted():
            sites = await self._get("sites", search="*")
            for site in sites.get("value", []):
                drives = await self._get(f"sites/{site['id']}/drives")
                site_name = str(site.get("displayName") or site.get("name") or "Site")
                nodes += [
                    Node(
                        id=f"{d['id']}:root",
                        name=f"{site_name} / {d.get('name') or 'Documents'}",
                        kind="library",
                    )
                    for d in drives.get("value", [])
                ]
        return BrowsePage(nodes=nodes)

    async def validate_selection(self, selection: str) -> str:
        return (await self._folder(selection))[1]

    async def _folder(self, selection: str) -> tuple[str, str]:
        """The selected folder's real item id and its name."""
        drive, item = _split(selection)
        try:
            found = await self._get(
                f"drives/{drive}/items/{item}", **{"$select": "id,name,folder,root"}
            )
        except NotFound:
            raise BadConfig(
                f"OneDrive has no folder {selection} (or you may not read it)"
            ) from None
        if "root" in found:
            return str(found["id"]), "My files"
        if not isinstance(found.get("folder"), dict):
            raise BadConfig(f"{found.get('name', selection)} is a file, not a folder")
        return str(found["id"]), str(found.get("name") or found["id"])

    # ------------------------------------------------------------ scan
    def begin_scan(self) -> None:
        self._memo.clear()

    def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        assert isinstance(options, OneDriveSourceOptions)

        async def begin() -> _Feed:
            drive, _ = _split(selection)
            top, label = await self._folder(selection)
            start = f"{self.base}/drives/{drive}/root/delta?" + str(
                httpx.QueryParams({"$top": str(PAGE), "$select": ITEM_FIELDS})
            )
            return _Feed(selection, drive, top, label, start)

        return walk_then_follow(
            _Feed.load(cursor, selection),
            begin=begin,
            walk=lambda feed: self._enumerate(feed, options),
            page_from=self._delta_page,
            apply=lambda feed, item: self._apply(feed, item, options),
        )

    async def _enumerate(
        self, feed: _Feed, options: OneDriveSourceOptions
    ) -> AsyncIterator[ScanEvent]:
        """The first scan: the whole drive through its feed, a checkpoint per page."""
        async for event in follow(
            feed, self._delta_page, lambda f, item: self._apply(f, item, options)
        ):
            yield event
        feed.walking = False
        feed.orphans.clear()  # files whose folder never came are not in the drive

    async def _delta_page(self, link: str) -> FeedPage:
        try:
            page = await self._memo.get(link, lambda: self._get_link(link))
        except (_Resync, NotFound) as exc:
            raise FeedExpired(f"OneDrive: {exc}") from None
        except Permanent as exc:
            if isinstance(exc, BadConfig):
                raise
            raise FeedExpired(f"OneDrive: {exc}") from None  # e.g. an unknown token: 400
        following = page.get("@odata.nextLink") or page.get("@odata.deltaLink")
        if not following:
            raise Transient("OneDrive's delta page had neither nextLink nor deltaLink")
        caught_up = "@odata.nextLink" not in page
        return FeedPage(list(page.get("value", [])), str(following), caught_up=caught_up)

    async def _apply(
        self, feed: _Feed, item: dict[str, Any], options: OneDriveSourceOptions
    ) -> AsyncIterator[ScanEvent]:
        item_id = str(item.get("id"))
        parent = str((item.get("parentReference") or {}).get("id") or "")
        deleted = "deleted" in item
        if "root" in item:
            feed.folders[item_id] = ["", "root"]
            return
        if isinstance(item.get("folder"), dict) or (deleted and item_id in feed.folders):
            async for event in self._folder_changed(feed, item, parent, deleted, options):
                yield event
            return
        if deleted:
            if item_id != feed.top and (not feed.known(parent) or feed.chain(parent)):
                yield Removed(item_id)  # scoped to this source by the engine
            return
        if not isinstance(item.get("file"), dict):
            return  # a package (OneNote) or something else without bytes
        chain = feed.chain(parent)
        if chain is None:
            if feed.walking and not feed.known(parent):
                feed.orphans.append(_slim(item))  # its folder may come later
            elif not feed.walking:
                yield Removed(item_id)  # moved out, or never ours: the engine scopes it
            return
        if is_video_name(str(item.get("name") or "")):
            yield Found(self._video(feed, item, chain, options))
        elif not feed.walking:
            yield Removed(item_id)  # renamed away from a video name

    async def _folder_changed(
        self,
        feed: _Feed,
        item: dict[str, Any],
        parent: str,
        deleted: bool,
        options: OneDriveSourceOptions,
    ) -> AsyncIterator[ScanEvent]:
        item_id = str(item["id"])
        if deleted:
            # Its files come as deletions of their own (or, moved away first, as moves).
            feed.folders.pop(item_id, None)
            return
        was_known = item_id in feed.folders
        was_under = was_known and feed.chain(item_id) is not None
        feed.folders[item_id] = [parent, str(item.get("name") or item_id)]
        if feed.orphans:
            waiting, feed.orphans = feed.orphans, []
            for orphan in waiting:
                async for event in self._apply(feed, orphan, options):
                    yield event
        if was_known and not was_under and not feed.walking and feed.chain(item_id):
            # Moved in from elsewhere in the drive: delta sends the folder, not what is
            # inside it, so list it once.
            async for event in self._walk(feed, item_id, options):
                yield event

    async def _walk(
        self, feed: _Feed, folder: str, options: OneDriveSourceOptions
    ) -> AsyncIterator[ScanEvent]:
        pending = [folder]
        while pending:
            current = pending.pop()
            listing = await self._get(
                f"drives/{feed.drive}/items/{current}/children",
                **{"$top": str(PAGE), "$select": ITEM_FIELDS},
            )
            while True:
                for child in listing.get("value", []):
                    if isinstance(child.get("folder"), dict):
                        feed.folders[str(child["id"])] = [current, str(child.get("name"))]
                        pending.append(str(child["id"]))
                    else:
                        async for event in self._apply(feed, child, options):
                            yield event
                link = listing.get("@odata.nextLink")
                if not link:
                    break
                listing = await self._get_link(str(link))

    def _video(
        self,
        feed: _Feed,
        item: dict[str, Any],
        chain: list[str],
        options: OneDriveSourceOptions,
    ) -> RemoteVideo:
        """chain: the folders from the selection down to the file's own."""
        if options.cameras_from == "subfolders" and len(chain) > 1:
            camera = feed.folders[chain[1]][1]
        else:
            camera = feed.label
        size = int(item["size"]) if item.get("size") is not None else None
        hashes = (item.get("file") or {}).get("hashes") or {}
        quick = hashes.get("quickXorHash")
        if quick:
            revision = f"qxh:{quick}:{size}"
        else:
            revision = str(item.get("cTag") or item.get("eTag") or item.get("lastModifiedDateTime"))
        below = [feed.folders[f][1] for f in chain[1:]]
        name = str(item.get("name") or item["id"])
        return RemoteVideo(
            remote_id=str(item["id"]),
            revision=revision,
            name=name,
            camera=camera,
            size=size,
            hash=str(quick) if quick else None,
            modified_at=parse_time(item.get("lastModifiedDateTime")),
            path="/".join([feed.label, *below, name]),
            extra={"drive": feed.drive},
        )

    # ------------------------------------------------------------ bytes
    def expected_hash(self, video: RemoteVideo) -> str | None:
        return video.hash  # QuickXorHash, checked by the engine over the whole `.part`

    async def _download_url(self, video: RemoteVideo) -> str:
        drive = str(video.extra.get("drive") or "")
        path = f"drives/{drive}/items" if drive else "me/drive/items"
        response = await self.api.request(
            "GET", f"{self.base}/{path}/{video.remote_id}/content", redirect=True
        )
        location = response.headers.get("location")
        if not response.is_redirect or not location:
            raise Transient(f"{video.name}: OneDrive's /content gave no download URL")
        return str(location)

    async def _read(
        self, video: RemoteVideo, start: int, headers: dict[str, str] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Bytes from `start`, resuming where they stopped when a body breaks off (same
        URL first: no Graph request) and with a fresh URL when one is refused (it
        expired, possibly mid-file)."""
        position, failures = start, 0
        url = self._urls.pop(video.remote_id, None)
        while True:
            url = url or await self._download_url(video)
            try:
                async for chunk in ranged_read(
                    self.downloads, url, position, video.name, headers=dict(headers or {})
                ):
                    position += len(chunk)
                    yield chunk
                return
            except (Transient, _UrlDead) as exc:
                failures += 1
                if isinstance(exc, _UrlDead):
                    url = None
                elif exc.restart:
                    raise
                if failures >= INLINE_RETRIES:
                    if url:
                        self._urls[video.remote_id] = url  # the next attempt tries it first
                    raise Transient(f"{video.name}: {exc}") from None
                log.info("%s: %s; reading on from byte %d", video.name, exc, position)

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        return self._open(video, offset)

    async def _open(self, video: RemoteVideo, offset: int) -> AsyncIterator[bytes]:
        async for chunk in self._read(video, offset):
            yield chunk


def _slim(item: dict[str, Any]) -> dict[str, Any]:
    """What a file waiting for its folder needs kept (it goes into the cursor)."""
    keep = ("id", "name", "size", "cTag", "eTag", "file", "parentReference", "lastModifiedDateTime")
    return {k: item[k] for k in keep if k in item}
