"""The hashes vendors publish for a file, computed over the bytes as they are staged.

hashlib's for MD5/SHA-1/SHA-256 (hex), Microsoft's QuickXorHash (OneDrive, base64)
and Dropbox's content_hash (SHA-256 over the SHA-256 of each 4 MiB block, hex):
the engine hashes the `.part` itself, so a resumed file is checked whole, whoever
wrote its first bytes."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Protocol

import quickxorhash

from vpack.providers.base import HashKind


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def text(self) -> str:
        """The digest written as the vendor writes it."""
        ...


class _Hex:
    def __init__(self, name: str) -> None:
        self._hash = hashlib.new(name)

    def update(self, data: bytes | memoryview, /) -> None:
        self._hash.update(data)

    def text(self) -> str:
        return self._hash.hexdigest()


class _QuickXor:
    """Graph's `file.hashes.quickXorHash`: the PyPI C implementation, in base64."""

    def __init__(self) -> None:
        self._hash = quickxorhash.quickxorhash()

    def update(self, data: bytes | memoryview, /) -> None:
        self._hash.update(bytes(data))  # it takes bytes objects only

    def text(self) -> str:
        return base64.b64encode(self._hash.digest()).decode("ascii")


DROPBOX_BLOCK = 4 * 1024 * 1024


class _DropboxContent:
    """Dropbox's `content_hash` (developers.dropbox.com/content-hash): split the file
    into 4 MiB blocks, SHA-256 each, SHA-256 the concatenated digests; hex."""

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._in_block = 0

    def update(self, data: bytes | memoryview, /) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), DROPBOX_BLOCK - self._in_block)
            self._block.update(view[:take])
            self._in_block += take
            view = view[take:]
            if self._in_block == DROPBOX_BLOCK:
                self._overall.update(self._block.digest())
                self._block, self._in_block = hashlib.sha256(), 0

    def text(self) -> str:
        overall = self._overall.copy()
        if self._in_block:
            overall.update(self._block.digest())
        return overall.hexdigest()


_MAKERS: dict[HashKind, Callable[[], Hasher]] = {
    HashKind.MD5: lambda: _Hex("md5"),
    HashKind.SHA1: lambda: _Hex("sha1"),
    HashKind.SHA256: lambda: _Hex("sha256"),
    HashKind.QUICKXOR: _QuickXor,
    HashKind.DROPBOX: _DropboxContent,
}

# How a mismatch names the hash, where its kind's value is not the vendor's word.
LABELS = {HashKind.QUICKXOR: "QuickXorHash", HashKind.DROPBOX: "content_hash"}


def hasher(kind: HashKind) -> Hasher | None:
    """A fresh hasher of this kind; None for HashKind.NONE."""
    make = _MAKERS.get(kind)
    return make() if make is not None else None


def same(kind: HashKind, ours: str, theirs: str) -> bool:
    """Equal digests; hex in either case, base64 exactly."""
    if kind == HashKind.QUICKXOR:
        return ours == theirs
    return ours.lower() == theirs.lower()
