"""The vendors' hashes as the engine computes them, against independent implementations."""

from __future__ import annotations

import os

import pytest
from dropbox.content_hash import DropboxContentHasher

from tests.providers.onedrive.quickxor import quickxorhash as our_emulators_quickxor
from vpack.providers.base import HashKind
from vpack.sync import hashes

BLOCK = hashes.DROPBOX_BLOCK
SIZES = [0, 1, 4095, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 12345]


def _feed(kind: HashKind, data: bytes, piece: int) -> str:
    hasher = hashes.hasher(kind)
    assert hasher is not None
    for at in range(0, len(data), piece):
        hasher.update(memoryview(data)[at : at + piece])  # the engine feeds memoryviews
    return hasher.text()


@pytest.mark.parametrize("size", SIZES)
def test_dropbox_content_hash_matches_dropbox_sdk(size: int) -> None:
    data = os.urandom(size)
    reference = DropboxContentHasher()
    reference.update(data)
    expected = reference.hexdigest()  # once: the SDK's hasher is spent after it
    for piece in (1 << 20, 3 * 1024 * 1024 + 7, BLOCK * 3):
        assert _feed(HashKind.DROPBOX, data, piece) == expected


@pytest.mark.parametrize("size", [0, 1, 19, 20, 21, 160, 1_000_003])
def test_quickxor_matches_the_emulators_own_implementation(size: int) -> None:
    data = os.urandom(size)
    for piece in (7, 64 * 1024):
        assert _feed(HashKind.QUICKXOR, data, piece) == our_emulators_quickxor(data)


def test_hex_compares_in_any_case_base64_exactly() -> None:
    assert hashes.same(HashKind.MD5, "ABCDEF", "abcdef")
    assert not hashes.same(HashKind.QUICKXOR, "AbC=", "abc=")
    assert hashes.hasher(HashKind.NONE) is None
