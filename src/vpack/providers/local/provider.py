"""Local folders: videos on a disk or share mounted on the server."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import socket
import stat
import time
from collections.abc import AsyncIterator, Generator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from vpack.settings import Settings

from vpack.providers.base import (
    AuthKind,
    BlockingReader,
    BrowsePage,
    Checkpoint,
    Features,
    Found,
    Identity,
    Node,
    Provider,
    RemoteVideo,
    ScanEvent,
    Waiting,
    stream_in_thread,
)
from vpack.providers.errors import BadConfig, NotFound, Transient
from vpack.providers.kit.files import camera_folder, is_video_name
from vpack.providers.kit.paging import page_of
from vpack.providers.registry import register

_RAW_PREFIX = "/b64:"  # a relative path never starts with "/", so this cannot clash
_READ_BYTES = 1024 * 1024  # large enough for full speed; small enough to keep memory flat


class LocalConfig(BaseModel):
    roots: list[str] = Field(
        default_factory=lambda: ["/"],
        description="Folders this connection may read; browsing starts here.",
    )


class LocalSourceOptions(BaseModel):
    settle_seconds: float = Field(
        default=60.0, ge=0, description="A file must be unchanged this long before it is taken."
    )


def encode_relpath(rel: bytes) -> str:
    """A text id for a relative path; non-UTF-8 names survive the round trip."""
    try:
        return rel.decode("utf-8")
    except UnicodeDecodeError:
        return _RAW_PREFIX + base64.urlsafe_b64encode(rel).decode("ascii")


def decode_relpath(remote_id: str) -> bytes:
    if remote_id.startswith(_RAW_PREFIX):
        return base64.urlsafe_b64decode(remote_id[len(_RAW_PREFIX) :])
    return remote_id.encode("utf-8")


def _display(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def file_revision(st: os.stat_result) -> str:
    """A file's revision as scans key it (also what a VPACK import computes offline)."""
    return f"{st.st_size}-{st.st_mtime_ns}"


@register
class LocalProvider(Provider):
    name = "local"
    label = "Local folder"
    description = "A folder on this server's disk or a mounted network share."
    auth = AuthKind.NONE
    features = Features(ranged_reads=True, full_listing=True, page_size=500)
    Config = LocalConfig
    SourceOptions = LocalSourceOptions

    config: LocalConfig

    @classmethod
    def server_config(cls, settings: Settings) -> dict[str, Any]:
        roots = settings.allowed_local_roots
        if not roots:
            raise BadConfig(
                "the operator has not allowed any local folders here "
                "(set VPACK_LOCAL_ROOTS on the server)"
            )
        return {"roots": roots}

    # ------------------------------------------------------------ paths
    def _roots(self) -> list[Path]:
        return [Path(os.path.realpath(r)) for r in self.config.roots]

    def _allowed(self, path: str) -> Path:
        """The real path of `path`, refusing anything outside the configured roots."""
        if not os.path.isabs(path):
            raise BadConfig(f"not an absolute path: {path!r}")
        _within_limits(path)
        real = Path(os.path.realpath(path))
        for root in self._roots():
            if real == root or root in real.parents:
                return real
        raise BadConfig(f"{path} is outside the folders this server allows")

    def _folder(self, path: str) -> Path:
        real = self._allowed(path)
        if not real.exists():
            raise BadConfig(f"folder does not exist: {path}")
        if not real.is_dir():
            raise BadConfig(f"not a folder: {path}")
        if not os.access(real, os.R_OK | os.X_OK):
            raise BadConfig(f"cannot read folder {path}: permission denied")
        return real

    # ------------------------------------------------------------ interface
    async def check(self) -> Identity:
        for root in self.config.roots:
            await asyncio.to_thread(self._folder, root)
        host = socket.gethostname()
        return Identity(id=host, label=f"Folders on {host}", details={"roots": self.config.roots})

    async def validate_selection(self, selection: str) -> str:
        real = await asyncio.to_thread(self._folder, selection)
        return real.name or str(real)

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        return await asyncio.to_thread(self._browse, node, page)

    def _browse(self, node: str | None, page: str | None) -> BrowsePage:
        if node is None:
            names = [(r, r) for r in self.config.roots]
        else:
            folder = self._folder(node)
            try:
                with os.scandir(folder) as it:
                    names = sorted(
                        (e.name, os.path.join(folder, e.name))
                        for e in it
                        if not e.name.startswith(".")
                        and _is_text(e.name)
                        and e.is_dir(follow_symlinks=False)
                    )
            except PermissionError:
                raise BadConfig(f"cannot read folder {node}: permission denied") from None
        chunk, next_page = page_of(names, page, self.features.page_size)
        nodes = [
            Node(id=path, name=name, kind="folder", has_children=_has_subfolder(path))
            for name, path in chunk
        ]
        return BrowsePage(nodes=nodes, next_page=next_page)

    async def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        assert isinstance(options, LocalSourceOptions)
        root = await asyncio.to_thread(self._folder, selection)
        walker = _Walker(root, options.settle_seconds)
        batch: list[ScanEvent] = []
        iterator = iter(walker)
        # The walk runs in a thread in slices so the event loop stays responsive.
        while True:
            batch = await asyncio.to_thread(_take, iterator, 500)
            if not batch:
                break
            for event in batch:
                yield event
        yield Checkpoint(cursor=None, complete=walker.complete)

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        return stream_in_thread(self._read(video, offset))

    def blocking_reader(self, video: RemoteVideo) -> BlockingReader:
        return functools.partial(self._read, video)

    def _read(self, video: RemoteVideo, offset: int) -> Generator[bytes, None, None]:
        """The file's bytes from `offset`, refused if it changes while read."""
        path = self._file_path(video)
        with _open_if_unchanged(path, video.revision) as handle:
            if offset:
                handle.seek(offset)
            while chunk := handle.read(_READ_BYTES):
                yield chunk
        # A writer that touched the file while we read it leaves a mixed copy:
        # refuse it; the next scan offers the new revision once it settles.
        now = _stat_or_none(path)
        if now is None or file_revision(now) != video.revision:
            raise Transient(f"{video.path} changed while it was being copied", restart=True)

    def _file_path(self, video: RemoteVideo) -> bytes:
        root = os.fsencode(video.extra["root"])
        path = os.path.join(root, decode_relpath(video.remote_id))
        real = os.path.realpath(path)
        if not (real == root or real.startswith(root.rstrip(b"/") + b"/")):
            raise NotFound(f"{video.path} now points outside its folder")
        return path


def _take(iterator: Iterator[ScanEvent], n: int) -> list[ScanEvent]:
    out: list[ScanEvent] = []
    for event in iterator:
        out.append(event)
        if len(out) >= n:
            break
    return out


def _is_text(name: str) -> bool:
    """False for a name whose bytes are not UTF-8 (held as lone surrogates): no answer
    or request can carry it as a node id, so such a folder is picked through its
    parent, whose scan copies it like any other."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_subfolder(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return any(e.is_dir(follow_symlinks=False) and not e.name.startswith(".") for e in it)
    except OSError:
        return False


def _stat_or_none(path: bytes) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _open_if_unchanged(path: bytes, revision: str) -> BinaryIO:
    try:
        handle: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        raise NotFound(f"{_display(path)} was removed before it could be copied") from None
    except PermissionError:
        raise Transient(f"cannot read {_display(path)}: permission denied") from None
    except IsADirectoryError:
        raise NotFound(f"{_display(path)} is now a folder") from None
    if file_revision(os.fstat(handle.fileno())) != revision:
        handle.close()
        raise NotFound(f"{_display(path)} changed after it was listed; the new version follows")
    return handle


class _Walker:
    """Depth-first listing of video files under one root, in bytes (any encoding)."""

    def __init__(self, root: Path, settle_seconds: float) -> None:
        self.root = os.fsencode(root)
        self.root_path = str(root)
        self.root_name = root.name or str(root)
        self.settle_ns = int(settle_seconds * 1e9)
        self.complete = True

    def __iter__(self) -> Iterator[ScanEvent]:
        now_ns = time.time_ns()
        stack: list[bytes] = [b""]
        while stack:
            rel_dir = stack.pop()
            try:
                with os.scandir(os.path.join(self.root, rel_dir) if rel_dir else self.root) as it:
                    entries = list(it)
            except OSError:
                # An unreadable sub-folder: list the rest, but do not treat what is
                # under it as removed.
                self.complete = False
                continue
            for entry in entries:
                name = entry.name
                if name.startswith(b"."):
                    continue
                rel = os.path.join(rel_dir, name) if rel_dir else name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(rel)
                        continue
                    if not is_video_name(name):
                        continue
                    st = entry.stat()
                except OSError:
                    self.complete = False
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                remote_id = encode_relpath(rel)
                if now_ns - st.st_mtime_ns < self.settle_ns:
                    yield Waiting(remote_id)
                    continue
                yield Found(self._video(rel, remote_id, st))

    def _video(self, rel: bytes, remote_id: str, st: os.stat_result) -> RemoteVideo:
        folder = camera_folder(rel)
        camera = _display(folder) if folder is not None else self.root_name
        return RemoteVideo(
            remote_id=remote_id,
            revision=file_revision(st),
            name=_display(os.path.basename(rel)),
            camera=camera,
            size=st.st_size,
            modified_at=datetime.fromtimestamp(st.st_mtime, tz=UTC),
            path=_display(rel),
            extra={"root": self.root_path},
        )


# What the common file systems take in one name and in a whole path (Linux's NAME_MAX
# and PATH_MAX): a longer one is refused before the OS answers ENAMETOOLONG.
_NAME_MAX_BYTES, _PATH_MAX_BYTES = 255, 4096


def _within_limits(path: str) -> None:
    """Refuse a path no file system can hold, saying which part is at fault."""
    if "\x00" in path:
        raise BadConfig("a path cannot hold a NUL character")
    try:
        encoded = os.fsencode(path)
    except UnicodeEncodeError:
        raise BadConfig("a path must be valid text (it holds a lone surrogate)") from None
    if len(encoded) > _PATH_MAX_BYTES:
        raise BadConfig(f"a path is at most {_PATH_MAX_BYTES} bytes; this one is {len(encoded)}")
    for name in encoded.split(b"/"):
        if len(name) > _NAME_MAX_BYTES:
            shown = os.fsdecode(name)[:40]
            raise BadConfig(
                f"the folder name {shown!r}… is {len(name)} bytes; a name is at most "
                f"{_NAME_MAX_BYTES}"
            )
