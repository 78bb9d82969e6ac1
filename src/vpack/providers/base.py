"""The one interface every video source implements and its data types (errors: `errors`)."""

from __future__ import annotations

import asyncio
import enum
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:
    import httpx

    from vpack.providers.kit.oauth import OAuthDefaults, TokenManager
    from vpack.settings import Settings

# ---------------------------------------------------------------- metadata


class AuthKind(enum.StrEnum):
    NONE = "none"
    OAUTH2 = "oauth2"
    KEYS = "keys"
    DEVICE = "device"


class HashKind(enum.StrEnum):
    NONE = "none"
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    QUICKXOR = "quickxor"  # Microsoft's QuickXorHash (OneDrive), base64 rather than hex
    DROPBOX = "dropbox"  # Dropbox's content_hash: SHA-256 of the 4 MiB blocks' SHA-256s


@dataclass(frozen=True)
class Features:
    """What a provider can do; the engine and UI adapt to these, never to names."""

    ranged_reads: bool = False  # open(video, offset>0) continues where a .part stopped
    hash_kind: HashKind = HashKind.NONE  # what RemoteVideo.hash holds
    full_listing: bool = True  # each scan lists everything: unseen rows are removals
    time_indexed: bool = False  # recordings are time ranges on channels (the UI: a camera)
    needs_remux: bool = False  # bytes arrive in a vendor container (PS, DAV, FLV, TS)
    page_size: int = 1000
    # Provider.wait_for_changes works: a watcher can scan a connection as soon as its
    # store reports a change (Dropbox's longpoll), the interval scan staying the net.
    change_notifications: bool = False


# ---------------------------------------------------------------- data types


@dataclass(frozen=True)
class Identity:
    """Who or what a connection reaches: an account email, a device serial, a path."""

    id: str
    label: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Node:
    """One entry of the lazy browse tree (folder, bucket, device, channel, day)."""

    id: str
    name: str
    kind: str = "folder"
    has_children: bool = True
    selectable: bool = True


@dataclass(frozen=True)
class BrowsePage:
    nodes: list[Node]
    next_page: str | None = None


@dataclass(frozen=True)
class RemoteVideo:
    """A video as the source describes it, before we have any bytes."""

    remote_id: str  # stable across renames where the source allows
    revision: str  # changes whenever the content may have changed
    name: str  # the source's display name (may be hostile: it is sanitised later)
    camera: str
    size: int | None = None
    hash: str | None = None  # of Features.hash_kind, lowercase hex
    modified_at: datetime | None = None
    recorded_start: datetime | None = None
    recorded_end: datetime | None = None
    path: str = ""  # where it lives at the source, for people to read
    extra: dict[str, Any] = field(default_factory=dict)  # provider-private handle data


@dataclass(frozen=True)
class Found:
    video: RemoteVideo


@dataclass(frozen=True)
class Removed:
    remote_id: str


@dataclass(frozen=True)
class Waiting:
    """The item exists but is still being written: not offered yet, not removed either."""

    remote_id: str


@dataclass(frozen=True)
class Checkpoint:
    """Everything yielded before this is durable together with this cursor.

    `complete` is False when part of a full listing could not be read; the
    engine then does not treat unseen items as removed.
    """

    cursor: str | None
    complete: bool = True


ScanEvent = Found | Removed | Waiting | Checkpoint

# A blocking byte stream from an offset; for sources read with blocking calls.
BlockingReader = Callable[[int], Iterator[bytes]]


async def stream_in_thread(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """A blocking chunk generator as an async stream, each step in a thread.

    Providers with blocking clients write one generator, offer it through
    `blocking_reader`, and implement `open` with this: one reader, two paths.
    """
    try:
        while chunk := await asyncio.to_thread(next, chunks, b""):
            yield chunk
    finally:
        await asyncio.to_thread(chunks.close)


class Provider(ABC):
    """A source of videos. One instance serves one connection."""

    name: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str] = ""
    auth: ClassVar[AuthKind]
    features: ClassVar[Features]
    Config: ClassVar[type[BaseModel]]  # connection settings; secret fields are SecretStr
    SourceOptions: ClassVar[type[BaseModel]]  # per-source settings (settle window, filters)
    oauth: ClassVar[OAuthDefaults | None] = None  # endpoints and scopes, for AuthKind.OAUTH2

    def __init__(
        self,
        config: BaseModel,
        *,
        tokens: TokenManager | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self.tokens = tokens  # OAuth2 providers: access tokens, refreshed as needed
        self.http = http  # HTTP providers: the client this instance owns

    @classmethod
    def server_config(cls, settings: Settings) -> dict[str, Any]:
        """Config the operator imposes on connections made through the API.

        These values override what a user sends (e.g. which local folders may
        be read); raise BadConfig when the operator has not allowed this provider.
        """
        return {}

    def destinations(self) -> list[str]:
        """Hosts this connection's settings point at that a user chose (a recorder's
        address, a custom endpoint), checked against VPACK_BLOCKED_NETWORKS when a
        connection is made through the API. Vendor clouds' fixed hosts are not."""
        return []

    @abstractmethod
    async def check(self) -> Identity:
        """Prove the connection works and say what it reaches."""

    @abstractmethod
    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        """Children of `node` (None = the top) for the lazy tree, one page at a time."""

    @abstractmethod
    def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        """Videos found under one selected node since `cursor`, ending with a Checkpoint."""

    @abstractmethod
    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        """The video's bytes from `offset` (0 unless Features.ranged_reads)."""

    def begin_scan(self) -> None:  # noqa: B027 - most providers keep nothing between scans
        """A source's scan round starts (its selections follow, one by one).

        Providers with an account-wide change feed may share one read of it among
        the selections of a round, and must forget it here."""

    def blocking_reader(self, video: RemoteVideo) -> BlockingReader | None:
        """For sources read with blocking file calls: the same bytes as `open`, so the
        engine can move a whole video in one thread. None (the default): use `open`."""
        return None

    def read_ahead(self, video: RemoteVideo | None) -> None:  # noqa: B027 - a hint
        """A hint from a batch of small videos read one after another in this thread
        (`blocking_reader`): `video` is read later, after the one read next (each video
        is hinted once, at most two reads ahead). A provider may send its request now,
        so the server works on it while this thread reads, writes and checks the ones
        before. None: the batch is over, drop what was sent and not read. Must not
        raise: the read itself reports what goes wrong. Default: nothing."""

    def expected_hash(self, video: RemoteVideo) -> str | None:
        """The hash the bytes just read must have. The listed one by default; a
        provider may learn while reading that the listed value is no content hash
        (S3's SSE-KMS ETags) and say None, leaving size and sha256."""
        return video.hash

    async def wait_for_changes(self, cursors: list[str], seconds: float) -> bool:
        """Wait up to about `seconds` for a change after any of `cursors` (the
        stored cursors of the connection's selections); True when there is one, False
        when the wait ran out. Only for Features.change_notifications."""
        raise NotImplementedError(f"{self.label} sends no change notifications")

    async def validate_selection(self, selection: str) -> str:
        """Raise BadConfig unless `selection` can be synced; return its display name."""
        await self.browse(selection)
        return selection

    async def aclose(self) -> None:
        """Release network clients; called once the provider is no longer used."""
        if self.http is not None:
            await self.http.aclose()
