"""Source trees for the benchmark: camera folders full of `.mp4` files, built once and reused."""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

# Bump when the layout or the content changes, so trees from older runs are rebuilt.
FORMAT_VERSION = 1
# Payload bytes are cut from one random pool: os.urandom is slow on some VMs
# (about 270 MB/s here) and nothing in the benchmark compresses or dedupes.
_POOL_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TreeSpec:
    """What to generate. `content` is "mp4" or "random" (see `_write_file`)."""

    name: str
    files: int
    min_bytes: int
    max_bytes: int
    cameras: int
    content: str
    seed: int = 1


@dataclass(frozen=True)
class Tree:
    root: Path
    files: int
    bytes: int


def ensure_tree(spec: TreeSpec, parent: Path) -> Tree:
    """The tree for `spec` under `parent`, reusing one a previous run left if it matches."""
    root = parent / spec.name
    manifest = parent / f"{spec.name}.json"
    wanted = {"version": FORMAT_VERSION, **asdict(spec)}
    if root.is_dir() and manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved.get("spec") == wanted:
            return Tree(root, int(saved["files"]), int(saved["bytes"]))
    manifest.unlink(missing_ok=True)  # first, so an interrupted build is never reused
    shutil.rmtree(root, ignore_errors=True)
    total = _write_tree(spec, root)
    manifest.write_text(json.dumps({"spec": wanted, "files": spec.files, "bytes": total}))
    return Tree(root, spec.files, total)


def write_random_file(path: Path, size: int) -> None:
    """A file of random bytes, for measuring what probing a non-video costs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        _write_file(handle, size, 0, b"", _pool())


def _write_tree(spec: TreeSpec, root: Path) -> int:
    rng = random.Random(spec.seed)
    header = tiny_mp4() if spec.content == "mp4" else b""
    if len(header) + 8 + 8 > spec.min_bytes:
        raise ValueError(f"{spec.name}: files must be larger than the {len(header)}-byte header")
    pool = _pool()
    cameras = [root / f"cam{n + 1:02d}" for n in range(spec.cameras)]
    for folder in cameras:
        folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(spec.files):
        size = rng.randint(spec.min_bytes, spec.max_bytes)
        path = cameras[i % spec.cameras] / f"clip-{i:06d}.mp4"
        with open(path, "wb") as handle:
            _write_file(handle, size, i, header, pool)
        total += size
    return total


def _write_file(handle: BinaryIO, size: int, index: int, header: bytes, pool: bytes) -> None:
    """`header` then random bytes. With an MP4 header the random bytes sit in a
    `free` box, so the file stays a valid MP4 that PyAV opens in well under a
    millisecond, as a real recording would be; without one it is plain noise."""
    if header:
        handle.write(header)
        handle.write(struct.pack(">I4s", size - len(header), b"free"))
        size -= len(header) + 8
    handle.write(index.to_bytes(8, "big"))  # every file differs, even the tiny ones
    size -= 8
    offset = (index * 7919) % len(pool)
    view = memoryview(pool)
    while size > 0:
        piece = view[offset : offset + size]
        handle.write(piece)
        size -= len(piece)
        offset = 0


def _pool() -> bytes:
    return os.urandom(_POOL_BYTES)


def tiny_mp4() -> bytes:
    """A real one-frame 16x16 MPEG-4 clip in an MP4 container (under 1 KB)."""
    import av  # vpack's own dependency; imported here so --help works without it

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=1)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame(16, 16, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()
