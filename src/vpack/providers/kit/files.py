"""The file-store kit: what local folders, Drive, S3 (and OneDrive, Dropbox) share about
files — which names are videos, and which camera a file belongs to."""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Any, AnyStr, Literal

from pydantic import BaseModel, Field

# The extensions VPACK itself accepts, plus recorders' exports (shared/PROVIDERS.md).
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".flv", ".wmv", ".m4v", ".dav", ".ts", ".ps", ".h264", ".h265"}
)


def is_video_name(name: str | bytes) -> bool:
    """Whether a file's name says it is a video (case-insensitive extension)."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return posixpath.splitext(name)[1].lower() in VIDEO_EXTENSIONS


def camera_folder(relative: AnyStr) -> AnyStr | None:
    """The camera of a file at `relative` (a '/'-separated path below the selection):
    the first folder names it, deeper folders belong to it. None for a file directly
    in the selection (or under an empty segment), which takes the selection's name."""
    sep: AnyStr
    sep = b"/" if isinstance(relative, bytes) else "/"
    first, found, _ = relative.partition(sep)
    return first if found and first else None


class FolderSourceOptions(BaseModel):
    """Per-source options of cloud folder stores (Drive, OneDrive): where cameras come from."""

    cameras_from: Literal["subfolders", "selection"] = Field(
        default="subfolders",
        description="subfolders: each sub-folder of a selected folder is a camera "
        "(Project/Area/Cam1, Cam2...); selection: the selected folder is one camera.",
    )


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 stamp as cloud APIs send it ('Z' for UTC); None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
