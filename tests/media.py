"""Real video files for tests, encoded with PyAV (no ffmpeg binary needed)."""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


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
