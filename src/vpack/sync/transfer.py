"""Moving one video's bytes into staging: resume, hash while writing, verify, remux."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from io import FileIO
from pathlib import Path
from typing import TypeVar

from vpack import disk, media
from vpack.providers.base import BlockingReader, Features, HashKind, Provider, RemoteVideo
from vpack.providers.errors import Transient
from vpack.sync import durability, hashes

_REHASH_BYTES = 4 * 1024 * 1024
DISK_FULL_WAIT = 60.0  # seconds a video that found the disk full waits
# How many videos of a batch of small ones are hinted ahead of the one being read
# (Provider.read_ahead).
_HINTED = 2
# A remuxed recording may differ from its searched time span by a GOP or two;
# anything shorter than this is a cut stream, not rounding.
_SPAN_SLACK_SECONDS = 2.0
_SPAN_SLACK_RATIO = 0.02

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class Staged:
    """A complete, verified file in staging."""

    path: Path
    size: int
    sha256: str
    remuxed: bool = False  # the file is the MP4 made from a vendor stream
    # What PyAV found, probed in the thread that wrote the file (None: a vendor
    # stream, probed once it is an MP4)
    info: media.Probe | None = None


class _Digests:
    """sha256 (always) plus the provider's own hash kind, fed the same bytes."""

    def __init__(self, kind: HashKind) -> None:
        self.sha256 = hashlib.sha256()
        self.remote = hashes.hasher(kind) if kind != HashKind.SHA256 else None

    def update(self, data: bytes | memoryview) -> None:
        # hashlib drops the GIL for large buffers, so this runs beside the event loop.
        self.sha256.update(data)
        if self.remote is not None:
            self.remote.update(data)

    def remote_hex(self, kind: HashKind) -> str:
        if kind == HashKind.SHA256:
            return self.sha256.hexdigest()
        assert self.remote is not None
        return self.remote.text()


def _hash_file(path: Path, digests: _Digests) -> int:
    """Feed a file to the hashers (an earlier attempt's prefix, a remuxed MP4); return
    its size."""
    done = 0
    with open(path, "rb", buffering=0) as handle:
        while block := handle.read(_REHASH_BYTES):
            digests.update(block)
            done += len(block)
    return done


def _settle(path: Path, size: int, durable: bool, demuxer: str | None = None) -> media.Probe:
    """Probe a finished file of `size` bytes, then settle it (_flush_if_big): the
    probe reads it while it is still cached."""
    info = media.probe(path, demuxer)
    _flush_if_big(path, size, durable)
    return info


def _flush_if_big(path: Path, size: int, durable: bool) -> None:
    """A durable big file goes to disk now and out of the page cache; small ones
    wait for the batch's syncfs."""
    if durable and size >= durability.FLUSH_ALONE_FROM:
        durability.flush_and_drop(path)


def _links(part: Path) -> int:
    """How many names the `.part`'s file has; 0 when there is no `.part`.

    A `.part` with a second link was verified, made durable and linked into the
    store before a crash cut its bookkeeping short: it is complete."""
    try:
        return os.stat(part).st_nlink
    except FileNotFoundError:
        return 0


def _open_staging(
    part: Path, resume: bool, digests: _Digests, exists: bool = True
) -> tuple[FileIO, int]:
    """The `.part` opened for writing, and where its bytes continue. Unbuffered: the
    chunks are large, and a buffer would only add two system calls per file."""
    if resume and exists:
        offset = _hash_file(part, digests)
        return open(part, "ab", buffering=0), offset
    if exists:
        # Unlink rather than truncate: the old .part may share its inode with a
        # published file, which must never be touched.
        part.unlink(missing_ok=True)
    try:
        return open(part, "xb", buffering=0), 0
    except FileNotFoundError:  # no staging folder yet; asked only then (a syscall per video)
        part.parent.mkdir(parents=True, exist_ok=True)
        return open(part, "xb", buffering=0), 0


class _Staging:
    """One video's `.part`: opened (resumed where allowed), fed, then checked.

    Blocking methods: the async path runs each in a thread, the blocking path
    runs them all in one.
    """

    def __init__(
        self, features: Features, video: RemoteVideo, part: Path, durable: bool = False
    ) -> None:
        self.features = features
        self.durable = durable  # big files go to disk (and out of the cache) when done
        self.video = video
        self.part = part
        self.digests = _Digests(features.hash_kind)
        links = _links(part)
        self.published = links > 1
        self.handle, self.offset = _open_staging(
            part, features.ranged_reads or self.published, self.digests, exists=links > 0
        )
        if video.size is not None and self.offset > video.size:
            # Longer than the whole video: not a prefix of it. Start again.
            self.handle.close()
            self.digests = _Digests(features.hash_kind)
            self.handle, self.offset = _open_staging(part, False, self.digests)
        self.written = self.offset
        self.head = b"" if self.offset else None  # the first bytes, when this run wrote them

    @property
    def wanted(self) -> bool:
        """Are there bytes still to fetch?"""
        size = self.video.size
        return not self.published and (size is None or self.offset < size)

    def write(self, chunk: bytes) -> None:
        if self.head is None:
            self.head = bytes(chunk[:8])
        try:
            done = self.handle.write(chunk)
            while done < len(chunk):  # an unbuffered write may stop short of the chunk
                done += self.handle.write(memoryview(chunk)[done:])
        except OSError as exc:
            if exc.errno not in disk.FULL:
                raise
            # Not the video's fault: it waits, costing no attempt, and resumes from
            # what is on disk once there is room.
            raise Transient(
                f"{self.video.name}: the disk is full ({exc.strerror})",
                retry_after=DISK_FULL_WAIT,
            ) from None
        self.digests.update(chunk)
        self.written += len(chunk)

    def close(self) -> None:
        self.handle.close()

    def finish(self, expected_hash: str | None) -> Staged:
        """Check what arrived against what the source promised (size, hash)."""
        self.handle.close()
        if self.published and self.features.needs_remux:
            # Already remuxed, verified and linked before a crash: the vendor's
            # size and hash describe the stream it was made from, not this MP4.
            return Staged(self.part, self.written, self.digests.sha256.hexdigest(), remuxed=True)
        video, kind = self.video, self.features.hash_kind
        if video.size is not None and self.written != video.size:
            self.part.unlink(missing_ok=True)
            raise Transient(
                f"{video.path or video.name}: got {self.written} bytes, expected {video.size}"
            )
        if kind != HashKind.NONE and expected_hash:
            got = self.digests.remote_hex(kind)
            if not hashes.same(kind, got, expected_hash):
                self.part.unlink(missing_ok=True)
                raise Transient(
                    f"{video.path or video.name}: {hashes.LABELS.get(kind, kind.value)} mismatch "
                    f"(source says {expected_hash}, received {got})"
                )
        sha256 = self.digests.sha256.hexdigest()
        if self.features.needs_remux:  # what is probed and kept is the MP4 (remux_staged)
            return Staged(self.part, self.written, sha256)
        demuxer = media.demuxer_for(self.head) if self.head else None
        info = _settle(self.part, self.written, self.durable, demuxer)
        return Staged(self.part, self.written, sha256, info=info)


async def stage(
    provider: Provider,
    video: RemoteVideo,
    part: Path,
    on_bytes: Callable[[int], None] | None = None,
    lockstep: bool = False,
    durable: bool = False,
) -> Staged:
    """Fetch `video` into `part`, resuming a previous attempt where the provider allows.

    With `durable`, a big file is on disk (fdatasync) when this returns.

    Raises Transient when the bytes do not match what the source promised
    (size or hash); the `.part` is then removed so the retry starts clean.
    A provider whose bytes come in a vendor container (`Features.needs_remux`)
    gets them checked as they came, then turned into an MP4 that replaces the
    `.part`: what is published and hashed is the MP4.
    """
    staged = await _stage_bytes(provider, video, part, on_bytes, lockstep, durable)
    if provider.features.needs_remux:
        staged = await asyncio.to_thread(remux_staged, staged, video, durable)
    return staged


async def _stage_bytes(
    provider: Provider,
    video: RemoteVideo,
    part: Path,
    on_bytes: Callable[[int], None] | None,
    lockstep: bool,
    durable: bool,
) -> Staged:
    reader = provider.blocking_reader(video)
    if reader is not None:
        return await _stage_blocking(provider, video, part, reader, on_bytes, lockstep, durable)
    staging = await asyncio.to_thread(_Staging, provider.features, video, part, durable)
    if on_bytes is not None and staging.offset:
        on_bytes(staging.offset)
    try:
        if staging.wanted:
            async for chunk in provider.open(video, staging.offset):
                await asyncio.to_thread(staging.write, chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
    except BaseException:
        await asyncio.to_thread(staging.close)
        raise
    return await asyncio.to_thread(staging.finish, provider.expected_hash(video))


class _ProgressRelay:
    """Byte counts from a transfer thread to `on_bytes` on the event loop.

    Counts are added up and handed over at most every 0.25 s, and at the end,
    without waiting: a thread that waited for the loop after every chunk spent
    more time waiting than copying (py-spy on the S3 benchmark). With `lockstep`
    the callback runs after each chunk and before the next read, and the thread
    waits for it: for sinks that act on the transfer (fault injection in tests).
    """

    interval = 0.25

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        on_bytes: Callable[[int], None] | None,
        lockstep: bool,
    ) -> None:
        self.loop, self.on_bytes, self.lockstep = loop, on_bytes, lockstep
        self.pending = 0
        self.sent_at = time.monotonic()

    def add(self, n: int) -> None:
        if self.on_bytes is None:
            return
        self.pending += n
        if self.lockstep or time.monotonic() - self.sent_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        if self.on_bytes is None or not self.pending:
            return
        n, self.pending, self.sent_at = self.pending, 0, time.monotonic()
        if not self.lockstep:
            self.loop.call_soon_threadsafe(self.on_bytes, n)
            return
        done = concurrent.futures.Future[None]()

        def call() -> None:
            try:
                self.on_bytes(n)  # type: ignore[misc]
            finally:
                done.set_result(None)

        self.loop.call_soon_threadsafe(call)
        done.result()


async def _stage_blocking(
    provider: Provider,
    video: RemoteVideo,
    part: Path,
    reader: BlockingReader,
    on_bytes: Callable[[int], None] | None,
    lockstep: bool,
    durable: bool,
) -> Staged:
    """The whole transfer in one thread: for files on local disks, where each
    thread hand-off costs as much as copying a small file."""
    relay = _ProgressRelay(asyncio.get_running_loop(), on_bytes, lockstep)
    return await _in_thread_until_cancelled(
        lambda cancelled: _fetch_blocking(provider, video, part, reader, durable, cancelled, relay)
    )


async def stage_each_blocking(
    provider: Provider, jobs: Sequence[tuple[RemoteVideo, Path]], durable: bool = False
) -> list[Staged | Exception]:
    """Several small videos of one provider with a `blocking_reader`, one after the
    other in one thread: one hand-off for all of them instead of one each. Each
    video's outcome is what `stage` would give (its Staged file, remuxed where the
    provider needs it) or the exception its transfer raised. Bytes are not reported."""
    silent = _ProgressRelay(asyncio.get_running_loop(), None, lockstep=False)

    def one(video: RemoteVideo, part: Path, cancelled: threading.Event) -> Staged:
        reader = provider.blocking_reader(video)
        assert reader is not None, "only providers with a blocking reader come here"
        staged = _fetch_blocking(provider, video, part, reader, durable, cancelled, silent)
        if provider.features.needs_remux:
            staged = remux_staged(staged, video, durable)
        return staged

    def run(cancelled: threading.Event) -> list[Staged | Exception]:
        outcomes: list[Staged | Exception] = []
        try:
            for index, (video, part) in enumerate(jobs):
                if cancelled.is_set():
                    raise asyncio.CancelledError
                # Each video is hinted once, up to _HINTED reads before its turn: the
                # server (or the network) works on those while this one is read and
                # checked. Two ahead, not one: a store 20 ms away moved 1,000 small
                # videos in 3.8 s instead of 4.5 s (bench/s3/ab.py --delay-ms 10).
                first = index + 1 if index == 0 else index + _HINTED
                for ahead, _ in jobs[first : index + 1 + _HINTED]:
                    provider.read_ahead(ahead)
                try:
                    outcomes.append(one(video, part, cancelled))
                except Exception as exc:
                    outcomes.append(exc)
        finally:
            provider.read_ahead(None)
        return outcomes

    return await _in_thread_until_cancelled(run)


async def _in_thread_until_cancelled(work: Callable[[threading.Event], _T]) -> _T:
    """Run `work(cancelled)` in a thread. Cancelling the caller sets `cancelled` and
    waits for the thread to notice it, so no `.part` is left open behind it."""
    cancelled = threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(work, cancelled))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        cancelled.set()
        await asyncio.gather(task, return_exceptions=True)
        raise


def _fetch_blocking(
    provider: Provider,
    video: RemoteVideo,
    part: Path,
    reader: BlockingReader,
    durable: bool,
    cancelled: threading.Event,
    relay: _ProgressRelay,
) -> Staged:
    staging = _Staging(provider.features, video, part, durable)
    try:
        if staging.offset:
            relay.add(staging.offset)
            relay.flush()
        if staging.wanted:
            for chunk in reader(staging.offset):
                if cancelled.is_set():  # stopping: keep the .part for resume
                    raise asyncio.CancelledError
                staging.write(chunk)
                relay.add(len(chunk))
    except BaseException:
        staging.close()
        raise
    finally:
        relay.flush()  # queued before the thread's result: the loop sees it first
    # Asked after the read: what the read showed may change the answer.
    return staging.finish(provider.expected_hash(video))


def remux_staged(staged: Staged, video: RemoteVideo, durable: bool = False) -> Staged:
    """Turn a verified vendor stream in staging into an MP4 under the same `.part` name.

    The MP4 is written beside the `.part` and renamed over it, so the `.part`
    is always either the whole vendor stream or the whole MP4. A stream PyAV
    cannot read, or one shorter than the recording's time span (the device cut
    it short), is discarded: the retry must fetch it again from the start.
    """
    if staged.remuxed:  # remuxed and linked before a crash: only the probe is missing
        return dataclasses.replace(staged, info=staged.info or media.probe(staged.path, "mp4"))
    part = staged.path
    made = part.with_name(part.name + ".mp4")
    made.unlink(missing_ok=True)
    what = video.path or video.name
    try:
        result = media.remux_to_mp4(part, made)
        _check_span(result, video)
        digests = _Digests(HashKind.NONE)  # sha256 only: the MP4 is what is published
        size = _hash_file(made, digests)
        os.replace(made, part)
    except media.RemuxError as exc:
        made.unlink(missing_ok=True)
        part.unlink(missing_ok=True)
        raise Transient(f"{what}: {exc}", restart=True) from None
    except BaseException:
        made.unlink(missing_ok=True)
        raise
    _flush_if_big(part, size, durable)  # remux_to_mp4 has probed the MP4 already
    return Staged(part, size, digests.sha256.hexdigest(), remuxed=True, info=result.info)


def _check_span(result: media.Remuxed, video: RemoteVideo) -> None:
    if video.recorded_start is None or video.recorded_end is None:
        return
    span = (video.recorded_end - video.recorded_start).total_seconds()
    if result.duration_s is None:
        raise media.RemuxError("the MP4 has no duration")
    slack = max(_SPAN_SLACK_SECONDS, span * _SPAN_SLACK_RATIO)
    if result.duration_s < span - slack:
        raise media.RemuxError(
            f"only {result.duration_s:.1f} s of a {span:.0f} s recording arrived"
        )
    if result.duration_s > span + slack:
        log.info(
            "%s: %.1f s of video for a %.0f s recording",
            video.path or video.name,
            result.duration_s,
            span,
        )
