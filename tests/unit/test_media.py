"""Probing real clips made with PyAV, and files that are not video."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.media import make_video
from vpack.media import probe


@pytest.mark.parametrize(
    ("name", "container"), [("a.mp4", None), ("a.mkv", None), ("a.ts", "mpegts"), ("a.avi", None)]
)
def test_duration_and_codec(tmp_path: Path, name: str, container: str | None) -> None:
    info = probe(make_video(tmp_path / name, seconds=3, container=container))
    assert info.error is None and info.codecs == "mpeg4"
    assert info.duration_s is not None and abs(info.duration_s - 3.0) < 0.25


def test_recording_start_from_creation_time(tmp_path: Path) -> None:
    when = datetime(2024, 12, 31, 23, 59, 1, tzinfo=UTC)
    info = probe(make_video(tmp_path / "a.mp4", creation_time=when))
    assert info.recorded_start == when


@pytest.mark.parametrize("data", [b"", b"garbage" * 1000, b"\x00\x00\x01\xba" + b"\xff" * 64])
def test_unreadable_files_report_an_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(data)
    info = probe(path)
    assert info.error and info.error.startswith("not a readable video")
    assert info.duration_s is None


def test_missing_file(tmp_path: Path) -> None:
    assert "not a readable video" in (probe(tmp_path / "nope.mp4").error or "")
