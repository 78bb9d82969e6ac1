"""How much of a file the kernel holds in its page cache: mincore(2) on a mapping of it."""

from __future__ import annotations

import ctypes
import mmap
from pathlib import Path


def cached_bytes(path: Path) -> int:
    size = path.stat().st_size
    if not size:
        return 0
    page = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path, "rb") as handle:
        # A private mapping is writable (ctypes needs that) and touches no page.
        mapping = mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY)
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapping))
        pages = (size + page - 1) // page
        vector = (ctypes.c_ubyte * pages)()
        assert libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(size), vector) == 0
        return sum(page for resident in vector if resident & 1)
    finally:
        del address
        mapping.close()
