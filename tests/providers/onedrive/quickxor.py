"""QuickXorHash, written from Microsoft's description of the algorithm, for the emulator.

Source: learn.microsoft.com/onedrive/developer/code-snippets/quickxorhash. A block is 160
bits; byte i of the input is XORed into it at bit (11 * i) mod 160, rotating round the
block's end; the block's bytes are read little-endian, and the input's length (64 bits,
little-endian) is XORed into its last eight bytes. The result travels as base64.

Byte i and byte i + 160 land on the same bit (11 * 160 is a multiple of 160), so the
input is first folded into 160 bytes by XOR, 160 bytes at a time, and only those 160 are
shifted: the same answer, without a Python loop per byte. The self-tests compare this with
PyPI's quickxorhash (a C implementation), which the provider uses.
"""

from __future__ import annotations

import base64

_WIDTH = 160  # bits
_SHIFT = 11
_MASK = (1 << _WIDTH) - 1
_FOLD = 160  # bytes after which the bit positions repeat


class QuickXorHash:
    def __init__(self) -> None:
        self._folded = 0  # the input folded into _FOLD bytes, byte j at bits 8j..8j+7
        self._length = 0
        self._tail = b""  # bytes not yet filling a whole fold

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._tail:
            need = _FOLD - len(self._tail)
            self._tail += bytes(view[:need])
            view = view[need:]
            if len(self._tail) < _FOLD:
                self._length += len(data)
                return
            self._folded ^= int.from_bytes(self._tail, "little")
            self._tail = b""
        whole = len(view) - len(view) % _FOLD
        folded = self._folded
        for start in range(0, whole, 64 * _FOLD):
            chunk = view[start : min(start + 64 * _FOLD, whole)]
            number = int.from_bytes(chunk, "little")
            # XOR the chunk's folds together: halve it until one fold is left.
            width = len(chunk) // _FOLD
            while width > 1:
                half = width // 2
                low = number & ((1 << (8 * _FOLD * half)) - 1)
                high = number >> (8 * _FOLD * half)
                if width % 2:  # an odd fold stays on top of the high half
                    number = low ^ high
                    width = half + 1
                else:
                    number = low ^ high
                    width = half
            folded ^= number
        self._folded = folded
        self._tail = bytes(view[whole:])
        self._length += len(data)

    def digest(self) -> bytes:
        folded = self._folded ^ int.from_bytes(self._tail, "little")
        block = 0
        for j in range(_FOLD):
            byte = (folded >> (8 * j)) & 0xFF
            if byte:
                shift = (_SHIFT * j) % _WIDTH
                wide = byte << shift
                block ^= (wide & _MASK) | (wide >> _WIDTH)  # rotate past the block's end
        out = bytearray(block.to_bytes(_WIDTH // 8, "little"))
        for i, b in enumerate(self._length.to_bytes(8, "little")):
            out[_WIDTH // 8 - 8 + i] ^= b
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def quickxorhash(data: bytes) -> str:
    """The base64 QuickXorHash of `data`, as Graph's file.hashes.quickXorHash carries it."""
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.b64digest()
