"""Reading what a video is (duration, codecs, start time) with PyAV."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import av

# Tags muxers use for the wall-clock start of a recording.
_START_TAGS = ("creation_time", "date", "DATE_RECORDED", "com.apple.quicktime.creationdate")


@dataclass(frozen=True)
class Probe:
    duration_s: float | None = None
    codecs: str | None = None  # e.g. "h264,aac"
    recorded_start: datetime | None = None
    error: str | None = None


def probe(path: Path) -> Probe:
    """What PyAV can tell about a file; a file it cannot read gives `error`, never raises."""
    try:
        # A capped probe size keeps a non-video file from costing 50 ms of CPU; real
        # recordings still give their streams and duration.
        with av.open(
            str(path), mode="r", metadata_errors="ignore", options={"formatprobesize": "65536"}
        ) as container:
            duration = _duration(container)
            codecs = ",".join(
                s.codec_context.name for s in container.streams if s.codec_context is not None
            )
            start = _start_time(container.metadata)
            for stream in container.streams:
                start = start or _start_time(stream.metadata)
            return Probe(duration_s=duration, codecs=codecs or None, recorded_start=start)
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as exc:
        return Probe(error=f"not a readable video: {_describe(exc)}")


def _duration(container: av.container.InputContainer) -> float | None:
    if container.duration is not None and container.duration > 0:
        return round(container.duration / av.time_base, 3)
    best: float | None = None
    for stream in container.streams:
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
            best = max(best or 0.0, seconds)
    return round(best, 3) if best else None


def _start_time(metadata: dict[str, str]) -> datetime | None:
    for tag in _START_TAGS:
        raw = metadata.get(tag)
        if raw:
            parsed = _parse_time(raw)
            if parsed is not None:
                return parsed
    return None


def _parse_time(raw: str) -> datetime | None:
    text = raw.strip().replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.year < 1971:  # muxers write 1970/1904 epochs when they know nothing
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
