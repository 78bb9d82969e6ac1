"""The sync engine on real folders: faults while copying, hostile names, probing, leases."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.media import make_video
from vpack import catalog
from vpack.db.models import Source, SourceStatus, SyncRun, Video, VideoState
from vpack.providers.base import Checkpoint, Found
from vpack.providers.local.provider import LocalProvider
from vpack.services import Services
from vpack.sync import downloads
from vpack.sync.progress import ProgressSink


def _write(path: Path, data: bytes, age: float = 3600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - age,) * 2)
    return path


async def _add(services: Services, folder: Path, settle: float = 0) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    connection = await catalog.local_connection(services.db)
    return await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection,
        name="shop",
        selections=[str(folder)],
        options={"settle_seconds": settle},
        interval_s=60,
    )


async def _rows(services: Services) -> list[Video]:
    async with services.db.session() as session:
        return list((await session.execute(select(Video).order_by(Video.id))).scalars())


def _published(services: Services) -> list[Path]:
    return sorted(p for p in services.store.videos_dir.rglob("*") if p.is_file())


class _OnFirstChunk(ProgressSink):
    """Does something to the source file while its copy is under way."""

    lockstep = True  # act between the first chunk and the second

    def __init__(self, action) -> None:  # type: ignore[no-untyped-def]
        self.action = action
        self.done = False

    def advanced(self, video_id: int, nbytes: int) -> None:
        if not self.done:
            self.done = True
            self.action()


async def test_file_deleted_while_copied_is_never_published(
    services: Services, tmp_path: Path
) -> None:
    path = _write(tmp_path / "src" / "cam" / "a.mp4", os.urandom(10 * 1024 * 1024))
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    tallies = await services.engine.run_downloads(progress=_OnFirstChunk(path.unlink))
    assert tallies[source_id].failed == 1
    assert _published(services) == [] and not list(services.store.staging_dir.iterdir())
    (row,) = await _rows(services)
    assert row.state == VideoState.PENDING and "changed while it was being copied" in row.error
    # Retried later: the file is gone for good, so the row ends skipped, nothing lost.
    report = await services.engine.sync([source_id])
    (row,) = await _rows(services)
    assert row.state == VideoState.SKIPPED and "removed" in row.error
    assert row.removed_at is not None and report.ok


async def test_file_growing_while_copied_is_retried_once_settled(
    services: Services, tmp_path: Path
) -> None:
    path = _write(tmp_path / "src" / "a.mp4", os.urandom(10 * 1024 * 1024))

    def grow() -> None:
        with open(path, "ab") as handle:
            handle.write(b"still recording")

    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    await services.engine.run_downloads(progress=_OnFirstChunk(grow))
    assert _published(services) == []
    os.utime(path, (time.time() - 3600,) * 2)  # the camera finished long ago
    report = await services.engine.sync([source_id])
    assert report.total("new") == 1 and report.total("downloaded") == 1
    old, new = await _rows(services)
    assert old.state == VideoState.SKIPPED and new.state == VideoState.DONE
    (copy,) = _published(services)
    assert copy.read_bytes() == path.read_bytes()
    assert new.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_hostile_names_land_safely_inside_the_store(
    services: Services, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _write(src / "cam" / "line\nbreak.mp4", b"1")
    _write(src / "cam" / "clip ..\\..\\evil.mp4", b"2")  # Windows-style traversal
    _write(src / "cam" / "._line.mp4", b"AppleDouble metadata, not a video")
    _write(src / "cam" / "a:b.mp4", b"3")
    _write(src / "cam" / "a_b.mp4", b"4")  # same safe name as "a:b.mp4"
    raw = os.fsencode(src) + b"/cam/caf\xe9.mp4"
    with open(raw, "wb") as handle:
        handle.write(b"5")
    os.utime(raw, (time.time() - 3600,) * 2)
    source_id = await _add(services, src)
    report = await services.engine.sync([source_id])
    assert report.ok and report.total("downloaded") == 5
    files = _published(services)
    videos = services.store.videos_dir.resolve()
    assert all(videos in f.resolve().parents for f in files)
    names = sorted(f.name for f in files)
    assert names == sorted(
        ["line_break.mp4", "clip .._.._evil.mp4", "a_b.mp4", "a_b (2).mp4", "caf_xe9.mp4"]
    )
    contents = sorted(f.read_bytes() for f in files)
    assert contents == [b"1", b"2", b"3", b"4", b"5"], "two videos, one name: both kept"
    rows = await _rows(services)
    assert len({r.local_path for r in rows}) == 5


async def test_videos_are_probed_and_filed_by_recording_day(
    services: Services, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    started = datetime(2025, 6, 1, 8, 30, tzinfo=UTC)
    make_video(src / "Cam1" / "order.mp4", seconds=2, creation_time=started)
    os.utime(src / "Cam1" / "order.mp4", (time.time() - 3600,) * 2)
    _write(src / "Cam1" / "broken.mp4", b"not a video at all" * 100)
    source_id = await _add(services, src)
    report = await services.engine.sync([source_id])
    assert report.ok
    good, broken = sorted(await _rows(services), key=lambda r: r.name != "order.mp4")
    assert good.duration_s == 2.0 and good.codecs == "mpeg4"
    assert good.recorded_start == started and good.probe_error is None
    assert good.local_path == f"{source_id}/Cam1/2025/06/01/order.mp4"
    assert broken.state == VideoState.DONE and broken.duration_s is None
    assert "not a readable video" in (broken.probe_error or "")
    assert services.store.absolute(broken.local_path or "").exists(), "kept all the same"


async def test_transient_failures_back_off_then_give_up(services: Services, tmp_path: Path) -> None:
    path = _write(tmp_path / "src" / "a.mp4", b"x" * 1000)
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    rewrite = lambda: _write(path, b"y" * 1000)  # noqa: E731 - same size, new mtime
    for _ in range(services.settings.max_attempts):
        (row,) = await _rows(services)
        async with services.db.transaction() as session:  # make it due now
            await session.execute(update(Video).values(next_attempt_at=None, revision=row.revision))
        # Each attempt sees the file change under it (a camera rewriting it).
        tallies = await services.engine.run_downloads(progress=_OnFirstChunk(rewrite))
        (row,) = await _rows(services)
        if row.state == VideoState.SKIPPED:
            break  # rewritten before open: superseded, the new revision follows
        assert tallies[source_id].failed == 1
    rows = await _rows(services)
    assert rows[0].state in (VideoState.SKIPPED, VideoState.FAILED), rows[0].error


async def test_sync_records_runs_and_scan_errors(services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "src" / "a.mp4", b"abc")
    source_id = await _add(services, tmp_path / "src")
    assert (await services.engine.sync()).ok
    (tmp_path / "src" / "a.mp4").unlink()
    (tmp_path / "src").rmdir()
    report = await services.engine.sync()
    assert not report.ok and "does not exist" in (report.sources[0].error or "")
    assert report.as_dict()["failed"] == 1
    async with services.db.session() as session:
        runs = list((await session.execute(select(SyncRun).order_by(SyncRun.id))).scalars())
        source = await session.get(Source, source_id)
    assert [r.status for r in runs] == ["ok", "failed"]
    assert runs[0].downloaded == 1 and runs[0].bytes == 3 and runs[1].error
    # Its folder is gone: a setting the user must look at, not a passing error.
    assert source is not None and source.status == SourceStatus.ATTENTION
    assert source.next_scan_at is not None and source.next_scan_at > datetime.now(UTC)


async def test_a_scan_racing_another_adds_each_video_once(
    services: Services, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "src" / "a.mp4", b"abc")
    source_id = await _add(services, tmp_path / "src")
    first = await services.engine.scan_source(source_id)
    _write(tmp_path / "src" / "b.mp4", b"defg")

    async def saw_nothing_yet(session, source_id, videos):  # type: ignore[no-untyped-def]
        return list(videos)  # as if another worker's rows were not committed when it looked

    monkeypatch.setattr(services.engine.scanner, "_unknown", saw_nothing_yet)
    second = await services.engine.scan_source(source_id)
    assert (first.new, second.new) == (1, 1)  # only b.mp4 is new; a.mp4 hit the unique key
    assert sorted(v.name for v in await _rows(services)) == ["a.mp4", "b.mp4"]


class _Recorder(ProgressSink):
    """What a sync told its progress sink."""

    def __init__(self) -> None:
        self.plans: list[tuple[int, int]] = []
        self.events: list[tuple[str, int]] = []
        self.bytes: dict[int, int] = {}
        self.first_done = asyncio.Event()

    def planned(self, videos: int, total_bytes: int) -> None:
        self.plans.append((videos, total_bytes))

    def started(self, source_id: int, video_id: int, name: str, size: int | None) -> None:
        self.events.append(("started", video_id))

    def advanced(self, video_id: int, nbytes: int) -> None:
        self.bytes[video_id] = self.bytes.get(video_id, 0) + nbytes

    def finished(self, video_id: int, ok: bool) -> None:
        self.events.append(("finished", video_id))
        self.first_done.set()


async def test_downloads_start_while_the_scan_is_still_listing(
    services: Services, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "src" / "a.mp4", b"abc")
    _write(tmp_path / "src" / "b.mp4", b"defg")
    await _add(services, tmp_path / "src")
    progress = _Recorder()
    listing = LocalProvider.scan
    overlapped: list[bool] = []

    async def slow_listing(self, selection, cursor, options):  # type: ignore[no-untyped-def]
        found = 0
        async for event in listing(self, selection, cursor, options):
            if isinstance(event, Found) and (found := found + 1) == 2:
                # The first video is committed; a listing that goes on for a while
                # should not hold its download back. (The timeout only ends a wait
                # that would otherwise never end.)
                yield Checkpoint(cursor=None, complete=False)
                done = asyncio.wait_for(progress.first_done.wait(), 30)
                overlapped.append(await asyncio.gather(done, return_exceptions=True) == [True])
            yield event

    monkeypatch.setattr(LocalProvider, "scan", slow_listing)
    report = await services.engine.sync(progress=progress)
    assert report.ok and report.total("downloaded") == 2
    assert overlapped == [True]
    # The plan grows as the scan finds more (the folder's listing order is the OS's).
    assert progress.plans in ([(0, 0), (1, 3), (2, 7)], [(0, 0), (1, 4), (2, 7)])
    assert len(_published(services)) == 2


async def test_small_videos_share_a_thread_hand_off_and_fail_alone(
    services: Services, tmp_path: Path
) -> None:
    for n, name in enumerate("abcde", start=1):
        _write(tmp_path / "src" / f"{name}.mp4", name.encode() * n)
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    (tmp_path / "src" / "c.mp4").unlink()  # gone between the listing and its download
    services.settings.concurrency = 1
    progress = _Recorder()
    tallies = await services.engine.run_downloads(progress=progress)
    rows = await _rows(services)
    first, *rest = [r.id for r in rows]
    # The first finds its source's provider on its own; the four queued behind it
    # then move together: all started, then each finished.
    assert progress.events == [("started", first), ("finished", first)] + [
        ("started", i) for i in rest
    ] + [("finished", i) for i in rest]
    assert tallies[source_id].downloaded == 4
    assert {r.name: r.state for r in rows} == {
        "a.mp4": VideoState.DONE,
        "b.mp4": VideoState.DONE,
        "c.mp4": VideoState.SKIPPED,  # the one that failed did so alone
        "d.mp4": VideoState.DONE,
        "e.mp4": VideoState.DONE,
    }
    assert progress.bytes == {r.id: r.size for r in rows if r.name != "c.mp4"}
    assert sorted(p.name for p in _published(services)) == ["a.mp4", "b.mp4", "d.mp4", "e.mp4"]


async def test_a_sync_whose_downloads_fail_stops_its_scan(
    services: Services, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _write(tmp_path / "src" / "a.mp4", b"abc")
    await _add(services, tmp_path / "src")
    listing = LocalProvider.scan
    listing_started = asyncio.Event()
    scan_ended: list[str] = []

    async def endless_listing(self, selection, cursor, options):  # type: ignore[no-untyped-def]
        try:
            listing_started.set()
            async for event in listing(self, selection, cursor, options):
                yield event
            await asyncio.Event().wait()  # a listing that never ends by itself
        finally:
            scan_ended.append("stopped")

    async def broken_claim(*args, **kwargs):  # type: ignore[no-untyped-def]
        await listing_started.wait()  # fail once the scan is under way
        raise RuntimeError("the database went away")

    monkeypatch.setattr(LocalProvider, "scan", endless_listing)
    monkeypatch.setattr(services.engine.claims, "claim", broken_claim)
    # The timeout only ends a wait that would otherwise never end.
    with pytest.raises(ExceptionGroup) as failed:
        await asyncio.wait_for(services.engine.sync(), 30)
    assert failed.group_contains(RuntimeError, match="database went away")
    assert scan_ended == ["stopped"]


async def test_dead_workers_leases_are_taken_back(services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "src" / "a.mp4", b"abc")
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    host, pid, start, _ = services.engine.worker_id.split(":")
    assert int(pid) == os.getpid() and start, "the id records this process's start time"
    dead = f"{host}:999999:12345:deadbeef"  # no such pid
    alive = f"{host}:{pid}:{start}:cafecafe"  # another worker in this very process: alive
    reused = f"{host}:{pid}:{int(start) - 1}:0ld0ld00"  # same pid, earlier process: dead
    elsewhere = "other-host:999999:1:feedfeed"  # another machine: its lease expiry decides
    async with services.db.transaction() as session:
        await session.execute(
            update(Video).values(
                state=VideoState.DOWNLOADING,
                lease_owner=dead,
                lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    assert await services.engine.claim(10) == []  # leased: not ours yet
    assert await services.engine.recover_dead_workers() == 1
    (claim,) = await services.engine.claim(10)
    async with services.db.session() as session:
        row = await session.get(Video, claim.id)
    assert row is not None and row.lease_owner == services.engine.worker_id
    for owner, released in ((alive, 0), (elsewhere, 0), ("no-colons", 0), (reused, 1)):
        async with services.db.transaction() as session:
            await session.execute(
                update(Video).values(
                    state=VideoState.DOWNLOADING,
                    lease_owner=owner,
                    lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
                )
            )
        assert await services.engine.recover_dead_workers() == released, owner


async def test_expired_leases_are_claimable(services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "src" / "a.mp4", b"abc")
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    async with services.db.transaction() as session:
        await session.execute(
            update(Video).values(
                state=VideoState.DOWNLOADING,
                lease_owner="elsewhere:1:x",
                lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
            )
        )
    tallies = await services.engine.run_downloads([source_id])
    assert tallies[source_id].downloaded == 1


async def test_stop_keeps_the_part_and_releases_the_lease(
    services: Services, tmp_path: Path
) -> None:
    data = os.urandom(40 * 1024 * 1024)
    _write(tmp_path / "src" / "big.mp4", data)
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    stop = asyncio.Event()
    await services.engine.run_downloads(stop=stop, progress=_OnFirstChunk(stop.set))
    (row,) = await _rows(services)
    assert row.state == VideoState.PENDING and row.lease_owner is None
    part = services.store.part_path(row.id)
    assert 0 < part.stat().st_size < len(data), "partial .part kept for resume"
    assert _published(services) == []
    tallies = await services.engine.run_downloads()
    assert tallies[source_id].downloaded == 1
    (copy,) = _published(services)
    assert copy.read_bytes() == data


async def test_removed_source_keeps_or_purges_files(services: Services, tmp_path: Path) -> None:
    _write(tmp_path / "a" / "x.mp4", b"a")
    _write(tmp_path / "b" / "y.mp4", b"b")
    keep = await _add(services, tmp_path / "a")
    purge = await _add(services, tmp_path / "b")
    await services.engine.sync()
    assert await catalog.remove_source(services.db, services.store, keep, purge=False) == 0
    assert await catalog.remove_source(services.db, services.store, purge, purge=True) == 1
    assert [p.name for p in _published(services)] == ["x.mp4"]
    assert await _rows(services) == []
    assert [s.id for s in await catalog.list_sources(services.db)] == []


async def test_claims_grow_while_they_bring_only_small_files(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = downloads.SMALL_BELOW
    for i in range(620):
        _write(tmp_path / "src" / f"a{i:03d}.mp4", i.to_bytes(2, "big") * 8)
    _write(tmp_path / "src" / "b.mp4", os.urandom(big))
    source_id = await _add(services, tmp_path / "src")
    await services.engine.scan_source(source_id)
    claim = services.engine.claims.claim
    claims: list[tuple[int, list[int | None]]] = []

    async def watched(limit, **kwargs):  # type: ignore[no-untyped-def]
        taken = await claim(limit, **kwargs)
        claims.append((limit, [c.size for c in taken]))
        return taken

    monkeypatch.setattr(services.engine.claims, "claim", watched)
    tallies = await services.engine.run_downloads()
    assert tallies[source_id].downloaded == 621 and tallies[source_id].failed == 0
    assert len(_published(services)) == 621
    assert sum(len(sizes) for _, sizes in claims) == 621  # each file claimed once
    base = max(downloads.CLAIM_BATCH, services.settings.concurrency * 2)
    assert claims[0][0] == base
    for (limit, sizes), (following, _) in itertools.pairwise(claims):
        if big in sizes:  # a claim that brought a big file: back to the first size
            assert following == base
        else:  # only small ones: twice as many next time, up to the cap
            assert following == min(limit * 2, downloads.SMALL_CLAIM_BATCH)
    assert downloads.SMALL_CLAIM_BATCH in [limit for limit, _ in claims]
    assert any(big in sizes for _, sizes in claims[:-1]), "the big file came before the end"
