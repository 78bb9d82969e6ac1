"""The local video store: staging `.part` files, safe names, atomic publish."""

from __future__ import annotations

import errno
import functools
import os
import shutil
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

MAX_NAME_BYTES = 255  # what ext4, XFS, btrfs and NTFS-over-SMB all accept
_FORBIDDEN = set('/\\<>:"|?*')  # path separators, plus what breaks SMB/Windows shares
_RESERVED = {"", ".", ".."}


def safe_name(name: str | bytes, fallback: str = "video") -> str:
    """One path component that is harmless on every common filesystem.

    Undecodable bytes become U+FFFD, control characters and separators become
    "_", the result is NFC-normalised, never "." or ".." (nor only dots and
    underscores), never starts with a dot (no hidden files) and fits in 255
    UTF-8 bytes with its extension kept.
    """
    if isinstance(name, bytes):
        name = name.decode("utf-8", errors="replace")
    # Surrogate escapes (from os.fsdecode) stand for undecodable bytes: make them U+FFFD.
    try:
        raw = name.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # lone surrogates that are not escapes
        raw = name.encode("utf-8", errors="replace")
    name = raw.decode("utf-8", errors="replace")
    name = unicodedata.normalize("NFC", name)
    cleaned = "".join(
        "_" if (ch in _FORBIDDEN or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")) else ch
        for ch in name
    )
    cleaned = cleaned.strip().rstrip(". ")
    if cleaned.startswith("."):  # no hidden files; "..x.mp4" keeps its extension
        cleaned = "_" + cleaned[1:]
    if cleaned in _RESERVED or set(cleaned) <= {"_", "."}:
        cleaned = fallback
    return _fit(cleaned, MAX_NAME_BYTES)


def _fit(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode("utf-8")) > 16:  # not a real extension
        stem, ext = name, ""
    budget = limit - len(ext.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore").rstrip(". ")
    return stem + ext


def with_suffix_number(name: str, n: int) -> str:
    """`clip.mp4` -> `clip (2).mp4`, still within the name limit."""
    stem, ext = os.path.splitext(name)
    tail = f" ({n}){ext}"
    budget = MAX_NAME_BYTES - len(tail.encode("utf-8"))
    stem = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return stem + tail


@dataclass(frozen=True)
class Placement:
    """Where a video lands, relative to the videos dir."""

    folder: Path
    name: str


@functools.lru_cache(maxsize=4096)
def _day_folder(source_id: int, camera: str, day: str) -> Path:
    # The same few cameras and days come up for thousands of videos in a row.
    return Path(str(source_id)) / safe_name(camera, "camera") / day


class VideoStore:
    """Owns `<data>/staging` and `<data>/videos`; nothing half-written reaches the latter."""

    def __init__(
        self, videos_dir: Path, staging_dir: Path, fsync: bool = True, zone: tzinfo | None = None
    ) -> None:
        self.videos_dir = videos_dir
        self.staging_dir = staging_dir
        self.fsync = fsync
        self.zone = zone  # date folders follow this zone (None: the machine's)

    def ensure_dirs(self) -> None:
        self.videos_dir.mkdir(parents=True, exist_ok=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)

    def part_path(self, video_id: int) -> Path:
        return self.staging_dir / f"{video_id}.part"

    def placement(self, source_id: int, camera: str, when: datetime, name: str) -> Placement:
        """Where a video recorded (or last changed) at `when` lands. The date is the
        shop's, not UTC's: a recording at 06:00 in Hanoi is filed under that day."""
        if when.tzinfo is None:  # the database hands back UTC without its zone
            when = when.replace(tzinfo=UTC)
        day = when.astimezone(self.zone).strftime("%Y/%m/%d")
        return Placement(folder=_day_folder(source_id, camera, day), name=safe_name(name))

    def absolute(self, relative: str | Path) -> Path:
        return self.videos_dir / relative

    def link(self, part: Path, placement: Placement) -> Path:
        """Give a verified `.part` its public name without ever replacing another file.

        Returns the path relative to the videos dir. A name already taken gets
        " (2)", " (3)"...; a hard link makes the no-clobber step atomic. The
        `.part` keeps its own name until the caller has recorded the video, so a
        crash in between leaves a `.part` with two links that a retry adopts.
        """
        folder = self.videos_dir / placement.folder
        folder_made = False
        n = 1
        while True:
            name = placement.name if n == 1 else with_suffix_number(placement.name, n)
            target = folder / name
            try:
                os.link(part, target)
            except FileNotFoundError:
                # Most links go into a folder made for an earlier video: make it only
                # when the link says it is missing. Missing again: the `.part` is.
                if folder_made:
                    raise
                folder.mkdir(parents=True, exist_ok=True)
                folder_made = True
                continue
            except FileExistsError:
                if _same_file(part, target):  # linked before a crash: adopt it
                    break
                n += 1
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                    raise
                # No hard links on this filesystem: copy under a temporary name,
                # then rename, which is atomic but may replace; check first.
                if target.exists():
                    n += 1
                    continue
                tmp = target.with_name(f".{target.name}.vpack-tmp")
                shutil.copyfile(part, tmp)
                os.replace(tmp, target)
            break
        return target.relative_to(self.videos_dir)

    def discard(self, video_id: int) -> None:
        self.part_path(video_id).unlink(missing_ok=True)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
