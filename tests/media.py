"""Real video files for tests, encoded with PyAV (no ffmpeg binary needed)."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
import pytest

from vpack import media


def make_video(
    path: Path,
    *,
    seconds: float = 1.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    container: str | None = None,
    codec: str = "mpeg4",
    creation_time: datetime | None = None,
) -> Path:
    """Encode a short clip of moving gradients; returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format=container) as out:
        if creation_time is not None:
            out.metadata["creation_time"] = creation_time.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        frames = max(1, int(seconds * fps))
        for i in range(frames):
            img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
            img[:, :, 0] = (np.arange(size[0]) * 4 + i * 8) % 256
            img[:, :, 1] = (i * 16) % 256
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def make_recording(
    target: Path | BinaryIO,
    *,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    container: str = "vob",
    video_codec: str = "libx264",
    audio_codec: str | None = "mp2",
    audio_rate: int = 16000,
) -> None:
    """A recorder-style recording: H.264 video plus audio in an MPEG program stream.

    Defaults match what NVRs write (H.264 without B-frames, a keyframe each
    second, mono audio); `container="vob"` is FFmpeg's MPEG-PS muxer. `target`
    may be a path or a writable binary file object.
    """
    if isinstance(target, Path):
        target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(
        target if not isinstance(target, Path) else str(target), "w", format=container
    ) as out:
        video = out.add_stream(video_codec, rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        video.time_base = Fraction(1, fps)
        video.codec_context.options = {"bf": "0", "g": str(fps)}
        audio = out.add_stream(audio_codec, rate=audio_rate, layout="mono") if audio_codec else None
        frames = max(1, round(seconds * fps))
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(_gradient(size, i), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            _write_tone(out, audio, seconds)


def _gradient(size: tuple[int, int], i: int) -> np.ndarray:  # type: ignore[type-arg]
    img = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    img[:, :, 0] = (np.arange(size[0]) * 4 + i * 8) % 256
    img[:, :, 1] = (i * 16) % 256
    img[:, :, 2] = (np.arange(size[1])[:, None] * 5 + i * 3) % 256
    return img


def _write_tone(
    out: av.container.OutputContainer, audio: av.audio.stream.AudioStream, seconds: float
) -> None:
    rate = audio.codec_context.sample_rate
    chunk = audio.codec_context.frame_size or 1024
    total = round(seconds * rate)
    done = 0
    while done < total:
        n = min(chunk, total - done)
        t = (np.arange(done, done + n) / rate).astype(np.float64)
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, n)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = done
        frame.time_base = Fraction(1, rate)
        out.mux(audio.encode(frame))
        done += n
    out.mux(audio.encode(None))


def play_through(path: Path) -> tuple[int, float, set[str]]:
    """Decode every video frame of a file: (frames decoded, duration in s, stream kinds).

    Raises if the file is not a playable video; a frame count below the
    container's own count means frames that do not decode.
    """
    with av.open(str(path)) as container:
        kinds = {s.type for s in container.streams}
        duration = (container.duration or 0) / av.time_base
        video = container.streams.video[0]
        declared = video.frames
        decoded = sum(1 for _ in container.decode(video=0))
    assert declared in (0, decoded), f"{path.name}: {decoded} of {declared} frames decode"
    return decoded, duration, kinds


def record_probes(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """From now on, the demuxer each real probe is opened with (None: ffmpeg guesses)."""
    asked: list[str | None] = []
    real = media._probe

    def noted(path: Path, demuxer: str | None) -> media.Probe:
        asked.append(demuxer)
        return real(path, demuxer)

    monkeypatch.setattr(media, "_probe", noted)
    return asked
