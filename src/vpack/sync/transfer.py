"""Moving one video's bytes into staging: resume, hash while writing, verify."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vpack.providers.base import HashKind, Provider, RemoteVideo, Transient

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


def _write(handle: BinaryIO, digests: _Digests, chunk: bytes) -> None:
    handle.write(chunk)
    digests.update(chunk)


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
    features = provider.features
    digests = _Digests(features.hash_kind)
    published = await asyncio.to_thread(_already_published, part)
    handle, offset = await asyncio.to_thread(
        _open_staging, part, features.ranged_reads or published, digests
    )
    if video.size is not None and offset > video.size:
        # Longer than the whole video: not a prefix of it. Start again.
        await asyncio.to_thread(handle.close)
        digests = _Digests(features.hash_kind)
        handle, offset = await asyncio.to_thread(_open_staging, part, False, digests)
    written = offset
    if on_bytes is not None and offset:
        on_bytes(offset)
    try:
        if not published and (video.size is None or offset < video.size):
            async for chunk in provider.open(video, offset):
                await asyncio.to_thread(_write, handle, digests, chunk)
                written += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
    finally:
        await asyncio.to_thread(handle.close)

    if video.size is not None and written != video.size:
        await _discard(part)
        raise Transient(f"{video.path or video.name}: got {written} bytes, expected {video.size}")
    if features.hash_kind != HashKind.NONE and video.hash:
        got = digests.remote_hex(features.hash_kind)
        if got.lower() != video.hash.lower():
            await _discard(part)
            raise Transient(
                f"{video.path or video.name}: {features.hash_kind} mismatch "
                f"(source says {video.hash}, received {got})"
            )
    return Staged(path=part, size=written, sha256=digests.sha256.hexdigest())


async def _discard(part: Path) -> None:
    await asyncio.to_thread(lambda: part.unlink(missing_ok=True))
