"""Recorder streams become MP4: PyAV remux, and the staging step that checks and replaces."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.media import make_recording, play_through, record_probes
from tests.pagecache import cached_bytes
from tests.providers.hikvision.emulator import IMKH_HEADER, HikvisionDevice
from vpack import media
from vpack.media import RemuxError, remux_to_mp4
from vpack.providers.base import Found, RemoteVideo
from vpack.providers.errors import Transient
from vpack.providers.local.provider import LocalProvider, LocalSourceOptions
from vpack.providers.registry import build_provider
from vpack.sync import durability
from vpack.sync.transfer import Staged, remux_staged, stage, stage_each_blocking


def _ps(path: Path, seconds: float = 3, **kwargs: object) -> Path:
    make_recording(path, seconds=seconds, **kwargs)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    ("container", "audio", "rate"),
    [("vob", "mp2", 16000), ("avi", "pcm_alaw", 8000), ("avi", None, 8000)],
    ids=["ps-h264-mp2", "g711-alaw", "video-only"],
)
def test_remux_keeps_every_frame(
    tmp_path: Path, container: str, audio: str | None, rate: int
) -> None:
    source = tmp_path / "in.bin"
    make_recording(source, seconds=3, container=container, audio_codec=audio, audio_rate=rate)
    result = remux_to_mp4(source, tmp_path / "out.mp4")
    frames, duration, kinds = play_through(tmp_path / "out.mp4")
    assert frames == result.video_packets == 30
    assert kinds == ({"video", "audio"} if audio else {"video"})
    assert result.codecs == ("h264,aac" if audio else "h264")
    assert abs(duration - 3) < 0.2


def test_hikvision_header_before_the_program_stream(tmp_path: Path) -> None:
    plain = _ps(tmp_path / "plain.ps")
    wrapped = tmp_path / "wrapped.ps"
    wrapped.write_bytes(IMKH_HEADER + plain.read_bytes())
    assert remux_to_mp4(wrapped, tmp_path / "out.mp4").video_packets == 30


@pytest.mark.parametrize("data", [b"", b"not a video" * 500, b"\x00\x00\x01\xba" + bytes(300)])
def test_what_cannot_be_remuxed(tmp_path: Path, data: bytes) -> None:
    bad = tmp_path / "bad.ps"
    bad.write_bytes(data)
    with pytest.raises(RemuxError, match=r"cannot remux|no video"):
        remux_to_mp4(bad, tmp_path / "out.mp4")


def _video(seconds: float, size: int | None = None) -> RemoteVideo:
    start = datetime(2024, 2, 24, 4, 56, 1, tzinfo=UTC)
    return RemoteVideo(
        remote_id="101/ch01_1",
        revision="1",
        name="Cam 2024-02-24 11-56-01.mp4",
        camera="Cam",
        size=size,
        recorded_start=start,
        recorded_end=start + timedelta(seconds=seconds),
    )


def test_remux_staged_replaces_the_part_with_the_mp4(tmp_path: Path) -> None:
    part = _ps(tmp_path / "7.part", seconds=4)
    staged = remux_staged(Staged(part, part.stat().st_size, "vendor"), _video(4))
    assert staged.remuxed and staged.path == part
    assert staged.sha256 == hashlib.sha256(part.read_bytes()).hexdigest()
    assert staged.size == part.stat().st_size
    assert play_through(part)[0] == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7.part"]


def test_the_remuxed_mp4_is_probed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """remux_to_mp4 probes what it made to check it; staging keeps that answer."""
    probed = record_probes(monkeypatch)
    part = _ps(tmp_path / "9.part", seconds=4)
    staged = remux_staged(Staged(part, part.stat().st_size, "vendor"), _video(4))
    assert probed == ["mp4"]
    assert staged.info == media.probe(part) and staged.info.codecs == "h264,aac"


def test_a_durable_remux_leaves_the_mp4_on_disk_not_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durability, "FLUSH_ALONE_FROM", 1)  # the test recording is small
    part = _ps(tmp_path / "8.part", seconds=4)
    staged = remux_staged(Staged(part, part.stat().st_size, "vendor"), _video(4), durable=True)
    assert staged.info is not None and staged.info.duration_s, "probed before it was dropped"
    assert cached_bytes(part) == 0
    assert staged.sha256 == hashlib.sha256(part.read_bytes()).hexdigest()


def test_a_stream_shorter_than_its_time_span_is_dropped(tmp_path: Path) -> None:
    whole = _ps(tmp_path / "whole.ps", seconds=8).read_bytes()
    part = tmp_path / "7.part"
    part.write_bytes(whole[: len(whole) // 3])  # a stream the device ended early
    with pytest.raises(Transient, match=r"only .* of a 8 s recording") as caught:
        remux_staged(Staged(part, part.stat().st_size, "x"), _video(8))
    assert caught.value.restart
    assert not list(tmp_path.glob("7.part*")), "nothing half-made stays in staging"


def test_an_unreadable_stream_is_dropped(tmp_path: Path) -> None:
    part = tmp_path / "7.part"
    part.write_bytes(b"<html>device error page</html>" * 100)
    with pytest.raises(Transient, match="cannot remux") as caught:
        remux_staged(Staged(part, part.stat().st_size, "x"), _video(3))
    assert caught.value.restart and not part.exists()


async def test_stage_checks_size_before_remux_then_publishes_mp4(tmp_path: Path) -> None:
    with HikvisionDevice() as device:
        device.add_channel("Cam")
        recording = device.add_recording(1, datetime.now(UTC) - timedelta(hours=1), 3)
        provider = build_provider(
            "hikvision",
            {
                "host": "127.0.0.1",
                "port": device.port,
                "username": "admin",
                "password": "Vpack-12345",
            },
        )
        options = provider.SourceOptions()
        (event, *_) = [e async for e in provider.scan("1", None, options)]
        video = event.video  # type: ignore[union-attr]
        part = tmp_path / "staging" / "1.part"

        wrong = RemoteVideo(**{**video.__dict__, "size": len(recording.data) + 1})
        with pytest.raises(Transient, match="expected"):
            await stage(provider, wrong, part)
        assert not part.exists()

        staged = await stage(provider, video, part)
        assert staged.remuxed and staged.size != len(recording.data)
        assert play_through(part)[0] == 30

        # After a crash between linking into the store and recording it, the
        # linked MP4 is adopted as it is: no download, no second remux.
        os.link(part, tmp_path / "published.mp4")
        downloads = device.calls["download"]
        again = await stage(provider, video, part)
        assert (again.sha256, again.size) == (staged.sha256, staged.size)
        assert device.calls["download"] == downloads
        await provider.aclose()


class _RecorderFolder(LocalProvider):
    """Vendor streams read from local files: the blocking path, with a remux."""

    features = dataclasses.replace(LocalProvider.features, needs_remux=True)


async def test_vendor_streams_fetched_together_are_remuxed_like_one_alone(
    tmp_path: Path,
) -> None:
    for name in ("a.ps", "b.ps"):
        _ps(tmp_path / "src" / name)
        os.utime(tmp_path / "src" / name, (time.time() - 3600,) * 2)
    base = build_provider("local", {"roots": [str(tmp_path)]})
    provider = _RecorderFolder(base.config)
    options = LocalSourceOptions(settle_seconds=0)
    events = [e async for e in provider.scan(str(tmp_path / "src"), None, options)]
    videos = sorted((e.video for e in events if isinstance(e, Found)), key=lambda v: v.name)
    jobs = [(v, tmp_path / "staging" / f"{i}.part") for i, v in enumerate(videos)]
    outcomes = await stage_each_blocking(provider, jobs)
    assert [o.remuxed for o in outcomes if isinstance(o, Staged)] == [True, True]
    assert [play_through(part)[0] for _, part in jobs] == [30, 30]  # whole MP4s
