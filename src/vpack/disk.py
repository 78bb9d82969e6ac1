"""The free-space guard: below a floor no new download starts, and work resumes by
itself once space returns. A disk that fills mid-file parks that video instead."""

from __future__ import annotations

import errno
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2}
_UNITS |= {"mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3}
_UNITS |= {"t": 1000**4, "tb": 1000**4, "tib": 1024**4}
_FLOOR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z%]*)\s*$")
# errno values that mean "no room": a full disk, a user's quota.
FULL = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class Floor:
    """The least free space to keep: bytes, or a share of the disk."""

    bytes: int = 0
    percent: float = 0.0

    def of(self, total: int) -> int:
        return max(self.bytes, int(total * self.percent / 100))


def parse_floor(text: str) -> Floor:
    """`2GiB`, `500MB`, `5%` or `0` (no floor); a ValueError says what is wrong."""
    match = _FLOOR.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an amount of space (say 2GiB, 500MB or 5%)")
    number, unit = float(match[1]), match[2].lower()
    if unit == "%":
        if number > 90:
            raise ValueError(f"{text!r}: keeping more than 90% free would stop every download")
        return Floor(percent=number)
    if unit not in _UNITS:
        raise ValueError(f"{text!r}: unknown unit {match[2]!r} (B, KB, MB, GB, TB, KiB, ...)")
    return Floor(bytes=int(number * _UNITS[unit]))


@dataclass(frozen=True)
class DiskState:
    free: int
    total: int
    floor: int

    @property
    def ok(self) -> bool:
        return self.free >= self.floor

    def describe(self) -> str:
        return (
            f"{_human(self.free)} free, below the {_human(self.floor)} to keep free "
            "(VPACK_MIN_FREE): new downloads wait until space returns"
        )


class DiskGuard:
    def __init__(self, path: Path, floor: Floor) -> None:
        self.path = path
        self.floor = floor
        self.last: DiskState | None = None

    def check(self) -> DiskState:
        usage = shutil.disk_usage(self.path)
        self.last = DiskState(usage.free, usage.total, self.floor.of(usage.total))
        return self.last


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
