"""Making a batch of written files durable with one call instead of one fsync each."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)


def sync_filesystem(path: Path) -> None:
    """Flush everything written on the filesystem holding `path` (Linux syncfs(2)).

    One syncfs per batch of videos costs about what one fsync does, so durable
    copies of thousands of small files stay fast. Elsewhere, fall back to sync(2).
    """
    if _syncfs is None:  # pragma: no cover - non-Linux
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)
