"""Probing real clips made with PyAV, and files that are not video."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.media import make_video
from vpack.media import demuxer_for, probe


@pytest.mark.parametrize(
    ("name", "container"), [("a.mp4", None), ("a.mkv", None), ("a.ts", "mpegts"), ("a.avi", None)]
)
def test_duration_and_codec(tmp_path: Path, name: str, container: str | None) -> None:
    info = probe(make_video(tmp_path / name, seconds=3, container=container))
    assert info.error is None and info.codecs == "mpeg4"
    assert info.duration_s is not None and abs(info.duration_s - 3.0) < 0.25


@pytest.mark.parametrize(
    ("name", "container", "codec"),
    [
        ("a.mp4", None, "libx264"),
        ("a.mkv", None, "libx265"),
        ("a.ts", "mpegts", "libx264"),
        ("a.avi", None, "libx264"),
        ("a.vob", "vob", "mpeg2video"),
    ],
)
def test_probing_without_decoding_finds_what_decoding_finds(
    tmp_path: Path, name: str, container: str | None, codec: str
) -> None:
    """The probe has decoders skip every frame; what it reports is what an open
    that decodes frames to learn the streams reports."""
    import av

    path = make_video(
        tmp_path / name, seconds=2, fps=10, size=(320, 240), container=container, codec=codec
    )
    info = probe(path)
    with av.open(str(path)) as full:
        duration = round(full.duration / av.time_base, 3)
        codecs = ",".join(s.codec_context.name for s in full.streams)
    assert (info.error, info.duration_s, info.codecs) == (None, duration, codecs)
    assert info.codecs == codec.removeprefix("lib").replace("x264", "h264").replace("x265", "hevc")


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


@pytest.mark.parametrize(
    ("name", "container", "demuxer"),
    [
        ("a.mp4", None, "mp4"),
        ("a.mov", None, "mp4"),
        ("a.mkv", None, None),
        ("a.ts", "mpegts", None),
    ],
)
def test_only_iso_media_is_named_by_its_first_bytes(
    tmp_path: Path, name: str, container: str | None, demuxer: str | None
) -> None:
    path = make_video(tmp_path / name, container=container)
    assert demuxer_for(path.read_bytes()[:8]) == demuxer
    assert demuxer_for(b"") is None


def test_a_demuxer_that_cannot_read_the_file_falls_back_to_probing(tmp_path: Path) -> None:
    ts = make_video(tmp_path / "a.ts", seconds=2, container="mpegts")
    hinted = probe(ts, "mp4")
    assert hinted == probe(ts)
    assert hinted.error is None and hinted.codecs == "mpeg4"
    when = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
    mp4 = make_video(tmp_path / "a.mp4", seconds=2, creation_time=when)
    assert probe(mp4, "mp4") == probe(mp4)
    assert probe(mp4, "mp4").recorded_start == when
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\xff" * 64)
    assert (probe(bad, "mp4").error or "").startswith("not a readable video")
