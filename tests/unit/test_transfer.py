"""Staging one video, on both paths: the async stream (network providers) and the
blocking reader (local files). Real files on disk either way."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import resource
import time
from pathlib import Path

import pytest

from tests.media import make_video, record_probes
from tests.pagecache import cached_bytes
from vpack.providers.base import BlockingReader, Features, HashKind, RemoteVideo
from vpack.providers.errors import Transient
from vpack.providers.local.provider import LocalProvider, LocalSourceOptions
from vpack.providers.registry import build_provider
from vpack.sync.transfer import _ProgressRelay, _Staging, stage

DATA = os.urandom(3 * 1024 * 1024 + 17)


class StreamingLocal(LocalProvider):
    """The local provider made to go through `open()`, as network providers do,
    and to promise a sha256 like Drive or Dropbox."""

    features = dataclasses.replace(LocalProvider.features, hash_kind=HashKind.SHA256)

    def blocking_reader(self, video: RemoteVideo) -> BlockingReader | None:  # type: ignore[override]
        return None


class HashingLocal(LocalProvider):
    features: Features = dataclasses.replace(LocalProvider.features, hash_kind=HashKind.SHA256)


@pytest.fixture(params=[StreamingLocal, HashingLocal], ids=["async-stream", "blocking"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> LocalProvider:
    base = build_provider("local", {"roots": [str(tmp_path)]})
    made: LocalProvider = request.param(base.config)
    return made


async def _video(
    provider: LocalProvider,
    tmp_path: Path,
    sha: str | None,
    name: str = "clip.mp4",
    data: bytes = DATA,
) -> RemoteVideo:
    path = tmp_path / "src" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 3600,) * 2)
    options = LocalSourceOptions(settle_seconds=0)
    async for event in provider.scan(str(tmp_path / "src"), None, options):
        video = getattr(event, "video", None)
        if video is not None and video.name == name:
            return dataclasses.replace(video, hash=sha)
    raise AssertionError("not found")


async def test_fresh_and_resumed(provider: LocalProvider, tmp_path: Path) -> None:
    video = await _video(provider, tmp_path, hashlib.sha256(DATA).hexdigest())
    seen: list[int] = []
    staged = await stage(provider, video, tmp_path / "1.part", on_bytes=seen.append)
    assert staged.size == len(DATA) and sum(seen) == len(DATA)
    assert staged.sha256 == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "1.part").read_bytes() == DATA

    (tmp_path / "2.part").write_bytes(DATA[:1_000_000])  # an earlier attempt's prefix
    seen.clear()
    resumed = await stage(provider, video, tmp_path / "2.part", on_bytes=seen.append)
    assert resumed.sha256 == staged.sha256 and seen[0] == 1_000_000
    assert (tmp_path / "2.part").read_bytes() == DATA


async def test_the_first_bytes_written_name_the_demuxer_for_the_probe(
    provider: LocalProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh MP4 is probed with the MP4 demuxer its `ftyp` names; a resumed one,
    whose first bytes this run did not see, is probed as before. Same answer."""
    clip = make_video(tmp_path / "made.mp4", seconds=2).read_bytes()
    video = await _video(provider, tmp_path, hashlib.sha256(clip).hexdigest(), data=clip)
    asked = record_probes(monkeypatch)
    fresh = await stage(provider, video, tmp_path / "1.part")
    assert asked == ["mp4"]
    (tmp_path / "2.part").write_bytes(clip[:100])
    resumed = await stage(provider, video, tmp_path / "2.part")
    assert asked == ["mp4", None]
    assert fresh.info == resumed.info and fresh.info is not None
    assert fresh.info.codecs == "mpeg4" and fresh.info.duration_s


async def test_a_short_write_is_finished_or_fails_never_dropped(
    provider: LocalProvider, tmp_path: Path
) -> None:
    """Staging writes unbuffered, where the kernel may take part of a chunk. A file
    size limit makes it do so for real (Python ignores SIGXFSZ): the first write
    stops at the limit, and the rest of the chunk must be written or fail, not be
    counted and hashed as if it had been written."""
    video = await _video(provider, tmp_path, None)
    staging = _Staging(provider.features, video, tmp_path / "1.part")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
    try:
        with pytest.raises(OSError) as refused:
            staging.write(DATA[:5000])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        staging.close()
    assert refused.value.errno == errno.EFBIG
    assert (tmp_path / "1.part").stat().st_size == 1000


async def test_staging_makes_its_folder_when_it_is_missing(
    provider: LocalProvider, tmp_path: Path
) -> None:
    video = await _video(provider, tmp_path, None)
    part = tmp_path / "staging" / "removed by hand" / "1.part"
    staged = await stage(provider, video, part)
    assert staged.size == len(DATA) and part.read_bytes() == DATA


async def test_wrong_hash_is_refused_and_dropped(provider: LocalProvider, tmp_path: Path) -> None:
    video = await _video(provider, tmp_path, "0" * 64)
    with pytest.raises(Transient, match="sha256 mismatch"):
        await stage(provider, video, tmp_path / "1.part")
    assert not (tmp_path / "1.part").exists()


async def test_too_long_part_starts_over(provider: LocalProvider, tmp_path: Path) -> None:
    video = await _video(provider, tmp_path, None)
    (tmp_path / "1.part").write_bytes(DATA + b"extra")  # not a prefix of this video
    staged = await stage(provider, video, tmp_path / "1.part")
    assert staged.size == len(DATA) and (tmp_path / "1.part").read_bytes() == DATA


async def test_short_stream_is_refused(provider: LocalProvider, tmp_path: Path) -> None:
    video = dataclasses.replace(await _video(provider, tmp_path, None), size=len(DATA) + 1)
    with pytest.raises(Transient, match="expected"):
        await stage(provider, video, tmp_path / "1.part")
    assert not (tmp_path / "1.part").exists()


async def test_a_blocking_transfer_reports_its_bytes_without_waiting_on_each_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counts are added up in the transfer thread and handed over together; a sink
    that acts on the transfer asks for lockstep and gets every chunk, in order."""
    provider = HashingLocal(build_provider("local", {"roots": [str(tmp_path)]}).config)
    video = await _video(provider, tmp_path, None)
    monkeypatch.setattr(_ProgressRelay, "interval", 3600.0)  # nothing due before the end
    added_up: list[int] = []
    await stage(provider, video, tmp_path / "1.part", on_bytes=added_up.append)
    assert added_up == [len(DATA)]  # one hand-over, at the end, before stage() returns

    each_chunk: list[int] = []
    await stage(provider, video, tmp_path / "2.part", on_bytes=each_chunk.append, lockstep=True)
    assert each_chunk == [1024 * 1024] * 3 + [17]


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "not-durable"])
async def test_a_big_durable_copy_is_on_disk_and_out_of_the_cache(
    provider: LocalProvider, tmp_path: Path, durable: bool
) -> None:
    """A copy nobody reads back soon should not fill the page cache: written to disk
    when staged, then dropped. Without durability it is left to the kernel."""
    video = await _video(provider, tmp_path, hashlib.sha256(DATA).hexdigest())
    staged = await stage(provider, video, tmp_path / "1.part", durable=durable)
    cached = cached_bytes(staged.path)
    if durable:
        assert cached == 0, f"{cached} bytes still cached"
    else:
        assert cached >= len(DATA), "written pages stay cached until the kernel needs them"
    assert staged.path.read_bytes() == DATA


async def test_a_small_file_waits_for_the_batch_sync(
    provider: LocalProvider, tmp_path: Path
) -> None:
    """Below a megabyte a file's own fdatasync would cost more than its bytes: the
    batch's syncfs covers it, and it stays cached."""
    video = await _video(provider, tmp_path, None, name="small.mp4", data=DATA[:4096])
    staged = await stage(provider, video, tmp_path / "2.part", durable=True)
    assert cached_bytes(staged.path) == 4096
