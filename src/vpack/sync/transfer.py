"""Moving one video's bytes into staging: resume, hash while writing, verify."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vpack.providers.base import (
    BlockingReader,
    Features,
    HashKind,
    Provider,
    RemoteVideo,
    Transient,
)

_HASHERS: dict[HashKind, Callable[[], Any]] = {
    HashKind.MD5: hashlib.md5,
    HashKind.SHA1: hashlib.sha1,
    HashKind.SHA256: hashlib.sha256,
}
_REHASH_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Staged:
    """A complete, verified file in staging."""

    path: Path
    size: int
    sha256: str


class _Digests:
    """sha256 (always) plus the provider's own hash kind, fed the same bytes."""

    def __init__(self, kind: HashKind) -> None:
        self.sha256 = hashlib.sha256()
        self.remote = _HASHERS[kind]() if kind in _HASHERS and kind != HashKind.SHA256 else None

    def update(self, data: bytes | memoryview) -> None:
        # hashlib drops the GIL for large buffers, so this runs beside the event loop.
        self.sha256.update(data)
        if self.remote is not None:
            self.remote.update(data)

    def remote_hex(self, kind: HashKind) -> str:
        if kind == HashKind.SHA256:
            return self.sha256.hexdigest()
        assert self.remote is not None
        return str(self.remote.hexdigest())


def _rehash_prefix(path: Path, digests: _Digests) -> int:
    """Feed what an earlier attempt already staged to the hashers; return its size."""
    done = 0
    with open(path, "rb", buffering=0) as handle:
        while block := handle.read(_REHASH_BYTES):
            digests.update(block)
            done += len(block)
    return done


def _already_published(part: Path) -> bool:
    """A `.part` with a second link was verified, made durable and linked into
    the store before a crash cut its bookkeeping short: it is complete."""
    try:
        return os.stat(part).st_nlink > 1
    except FileNotFoundError:
        return False


def _open_staging(part: Path, resume: bool, digests: _Digests) -> tuple[BinaryIO, int]:
    part.parent.mkdir(parents=True, exist_ok=True)
    if resume and part.exists():
        offset = _rehash_prefix(part, digests)
        return open(part, "ab"), offset
    # Unlink rather than truncate: the old .part may share its inode with a
    # published file, which must never be touched.
    part.unlink(missing_ok=True)
    return open(part, "xb"), 0


class _Staging:
    """One video's `.part`: opened (resumed where allowed), fed, then checked.

    Blocking methods: the async path runs each in a thread, the blocking path
    runs them all in one.
    """

    def __init__(self, features: Features, video: RemoteVideo, part: Path) -> None:
        self.features = features
        self.video = video
        self.part = part
        self.digests = _Digests(features.hash_kind)
        self.published = _already_published(part)
        self.handle, self.offset = _open_staging(
            part, features.ranged_reads or self.published, self.digests
        )
        if video.size is not None and self.offset > video.size:
            # Longer than the whole video: not a prefix of it. Start again.
            self.handle.close()
            self.digests = _Digests(features.hash_kind)
            self.handle, self.offset = _open_staging(part, False, self.digests)
        self.written = self.offset

    @property
    def wanted(self) -> bool:
        """Are there bytes still to fetch?"""
        size = self.video.size
        return not self.published and (size is None or self.offset < size)

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digests.update(chunk)
        self.written += len(chunk)

    def close(self) -> None:
        self.handle.close()

    def finish(self) -> Staged:
        """Check what arrived against what the source promised (size, hash)."""
        self.handle.close()
        video, kind = self.video, self.features.hash_kind
        if video.size is not None and self.written != video.size:
            self.part.unlink(missing_ok=True)
            raise Transient(
                f"{video.path or video.name}: got {self.written} bytes, expected {video.size}"
            )
        if kind != HashKind.NONE and video.hash:
            got = self.digests.remote_hex(kind)
            if got.lower() != video.hash.lower():
                self.part.unlink(missing_ok=True)
                raise Transient(
                    f"{video.path or video.name}: {kind} mismatch "
                    f"(source says {video.hash}, received {got})"
                )
        return Staged(path=self.part, size=self.written, sha256=self.digests.sha256.hexdigest())


async def stage(
    provider: Provider,
    video: RemoteVideo,
    part: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> Staged:
    """Fetch `video` into `part`, resuming a previous attempt where the provider allows.

    Raises Transient when the bytes do not match what the source promised
    (size or hash); the `.part` is then removed so the retry starts clean.
    """
    reader = provider.blocking_reader(video)
    if reader is not None:
        return await _stage_blocking(provider.features, video, part, reader, on_bytes)
    staging = await asyncio.to_thread(_Staging, provider.features, video, part)
    if on_bytes is not None and staging.offset:
        on_bytes(staging.offset)
    try:
        if staging.wanted:
            async for chunk in provider.open(video, staging.offset):
                await asyncio.to_thread(staging.write, chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
    except BaseException:
        await asyncio.to_thread(staging.close)
        raise
    return await asyncio.to_thread(staging.finish)


async def _stage_blocking(
    features: Features,
    video: RemoteVideo,
    part: Path,
    reader: BlockingReader,
    on_bytes: Callable[[int], None] | None,
) -> Staged:
    """The whole transfer in one thread: for files on local disks, where each
    thread hand-off costs as much as copying a small file."""
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()

    def report(n: int) -> None:
        # Waits for the loop to run it: progress callbacks keep their promise of
        # running after each chunk and before the next read.
        if on_bytes is not None:
            done = concurrent.futures.Future[None]()

            def call() -> None:
                try:
                    on_bytes(n)
                finally:
                    done.set_result(None)

            loop.call_soon_threadsafe(call)
            done.result()

    def run() -> Staged:
        staging = _Staging(features, video, part)
        try:
            if staging.offset:
                report(staging.offset)
            if staging.wanted:
                for chunk in reader(staging.offset):
                    if cancelled.is_set():  # stopping: keep the .part for resume
                        raise asyncio.CancelledError
                    staging.write(chunk)
                    report(len(chunk))
        except BaseException:
            staging.close()
            raise
        return staging.finish()

    task = asyncio.ensure_future(asyncio.to_thread(run))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancelled.set()  # the thread stops at its next chunk; wait so the .part is closed
        await asyncio.gather(task, return_exceptions=True)
        raise
