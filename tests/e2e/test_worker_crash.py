"""Real `vpack worker` / `vpack sync` processes killed mid-file lose and duplicate nothing."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from vpack.db.session import make_sync_engine
from vpack.settings import Settings

pytestmark = pytest.mark.slow

VPACK = [sys.executable, "-m", "vpack.cli"]
BIG_NAME = "cam1/big.mp4"
BIG_SIZE = 200 * 1024 * 1024
SMALL = {"cam1/a.mp4": 48 * 1024, "cam2/b.mp4": 96 * 1024, "cam2/c.mkv": 1000}
# A .part this big is the 200 MB one (the small files are far smaller); killing
# before half of it is written leaves >100 MB still to copy, so the kill is mid-file.
PARTIAL_MIN = 8 * 1024 * 1024
PARTIAL_MAX = BIG_SIZE // 2
STOP_WITHIN = 5.0  # seconds a SIGTERM'd process may take to exit


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _sha256_prefix(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        left = size
        while left and (block := handle.read(min(left, 8 * 1024 * 1024))):
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BigFile:
    path: Path
    sha256: str


@dataclass
class Footage:
    """A source folder: relative path -> sha256 of every video in it."""

    root: Path
    files: dict[str, str]


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigFile]:
    """One 200 MB file for the whole session, hard-linked into each test's folder."""
    path = tmp_path_factory.mktemp("big") / "big.mp4"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(BIG_SIZE // (8 * 1024 * 1024)):
            # Random bytes: a resume at the wrong offset cannot produce the right hash.
            block = os.urandom(8 * 1024 * 1024)
            out.write(block)
            digest.update(block)
    past = time.time() - 3600
    os.utime(path, (past, past))
    yield BigFile(path, digest.hexdigest())
    path.unlink(missing_ok=True)


def _footage(root: Path, big: BigFile, small: dict[str, int]) -> Footage:
    files: dict[str, str] = {}
    target = root / BIG_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(big.path, target)
    files[BIG_NAME] = big.sha256
    for rel, size in small.items():
        data = os.urandom(size)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        past = time.time() - 3600
        os.utime(path, (past, past))
        files[rel] = hashlib.sha256(data).hexdigest()
    return Footage(root, files)


class Station:
    """The data dir, database and `vpack` processes of one test."""

    def __init__(self, settings: Settings, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.url = env["VPACK_DATABASE_URL"]
        self.staging = settings.staging_dir
        self.videos = settings.videos_dir
        self.logs = logs
        self.procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []

    # ------------------------------------------------------------ processes
    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*VPACK, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"vpack {' '.join(args)}: {done.returncode}\n{done.stderr}"
        return done

    def start(self, *args: str, paused: bool = False) -> subprocess.Popen[bytes]:
        """Start `vpack *args`; `paused` stops it before exec, so its pid is known first."""
        n = len(self.procs)
        out, err = self.logs / f"proc-{n}.out", self.logs / f"proc-{n}.err"
        # exec keeps the pid, so the stopped shell's pid is the worker's pid.
        argv = ["sh", "-c", 'kill -STOP $$; exec "$@"', "sh"] if paused else []
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            proc = subprocess.Popen(
                [*argv, *VPACK, *args], env=self.env, stdout=out_file, stderr=err_file
            )
        self.procs.append((proc, out, err))
        if paused:
            _, status = os.waitpid(proc.pid, os.WUNTRACED)  # returns once it has stopped
            assert os.WIFSTOPPED(status), status
        return proc

    def _files(self, proc: subprocess.Popen[bytes]) -> tuple[Path, Path]:
        return next((out, err) for p, out, err in self.procs if p is proc)

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        """The tail of what `proc` wrote to stderr, for failure messages."""
        return self._files(proc)[1].read_text(errors="replace")[-4000:]

    def terminate(self, proc: subprocess.Popen[bytes]) -> float:
        """SIGTERM `proc`; return how long it took to exit (fails if it never does)."""
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_WITHIN * 4)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_WITHIN * 4}s after SIGTERM\n{self.log_of(proc)}")
        return time.monotonic() - began

    def run_watching(self, part: Path, *args: str, timeout: float = 60) -> tuple[str, int]:
        """Run `vpack *args` to the end; return its stdout and the smallest size `part` had."""
        proc = self.start(*args)
        smallest = BIG_SIZE + 1
        deadline = time.monotonic() + timeout
        # Polled every millisecond: a copy restarted from zero spends tens of ms below
        # the kept size, so it cannot slip through.
        while proc.poll() is None and time.monotonic() < deadline:
            # Gone means already published and removed.
            with contextlib.suppress(FileNotFoundError):
                smallest = min(smallest, part.stat().st_size)
            time.sleep(0.001)
        if proc.poll() is None:
            pytest.fail(f"vpack {' '.join(args)} still running after {timeout}s")
        assert proc.returncode == 0, self.log_of(proc)
        return self._files(proc)[0].read_text(), smallest

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        # Reap it: a zombie still answers kill(pid, 0), which is not what a real crash leaves.
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

    def close(self) -> None:
        for proc, _, _ in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # ------------------------------------------------------------ state
    def add_source(self, root: Path) -> int:
        # --settle 0: the files are complete already, no need to wait for them to settle.
        args = ["--name", "cams", "--path", str(root), "--settle", "0", "--json"]
        done = self.cli("sources", "add", "local", *args)
        return int(json.loads(done.stdout)["id"])

    def rows(self) -> list[dict[str, Any]]:
        engine = make_sync_engine(self.url)
        try:
            with engine.connect() as conn:
                result = conn.execute(
                    text(
                        "SELECT id, remote_id, name, state, sha256, local_path, lease_owner,"
                        " lease_expires_at FROM videos ORDER BY id"
                    )
                )
                return [dict(r._mapping) for r in result]
        finally:
            engine.dispose()

    def set_lease_owner(self, video_id: int, owner: str) -> None:
        engine = make_sync_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE videos SET lease_owner = :owner WHERE id = :id"),
                    {"owner": owner, "id": video_id},
                )
        finally:
            engine.dispose()

    def row(self, video_id: int) -> dict[str, Any]:
        found = [r for r in self.rows() if r["id"] == video_id]
        assert len(found) == 1, f"no row {video_id}"
        return found[0]

    def parts(self) -> list[Path]:
        return sorted(self.staging.glob("*.part"))

    def published(self) -> list[Path]:
        return sorted(p for p in self.videos.rglob("*") if not p.is_dir())

    def wait_for_partial(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> Path:
        """The big file's `.part` once it is partly written, polled every millisecond."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                for entry in os.scandir(self.staging):
                    if entry.name.endswith(".part"):
                        size = entry.stat().st_size
                        if PARTIAL_MIN <= size <= PARTIAL_MAX:
                            return Path(entry.path)
            except FileNotFoundError:
                pass  # staging is created by the process at start-up
            if proc.poll() is not None:
                pytest.fail(f"exited ({proc.returncode}) before copying\n{self.log_of(proc)}")
            time.sleep(0.001)
        pytest.fail(f"no partly written .part within {timeout}s\n{self.log_of(proc)}")

    def wait_all_done(self, proc: subprocess.Popen[bytes], count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.rows()
            if len(rows) == count and all(r["state"] == "done" for r in rows) and not self.parts():
                return
            if proc.poll() is not None:
                pytest.fail(f"exited ({proc.returncode}) before finishing\n{self.log_of(proc)}")
            time.sleep(0.1)
        pytest.fail(
            f"not done within {timeout}s: "
            f"{[(r['name'], r['state'], r['lease_owner']) for r in self.rows()]}, "
            f"parts {self.parts()}\n{self.log_of(proc)}"
        )

    def assert_complete(self, footage: Footage) -> None:
        """One done row per file with the right sha256, published once, nothing staged."""
        rows = self.rows()
        assert sorted(r["remote_id"] for r in rows) == sorted(footage.files), "one row per file"
        for r in rows:
            assert r["state"] == "done", r
            assert r["lease_owner"] is None and r["lease_expires_at"] is None, r
            assert r["sha256"] == footage.files[r["remote_id"]], f"wrong sha256 for {r['name']}"
        assert self.parts() == [], "a .part was left in staging"
        expected = sorted(self.videos / r["local_path"] for r in rows)
        assert self.published() == expected, "files under videos/ other than the recorded ones"
        for r in rows:
            path = self.videos / r["local_path"]
            assert path.name == Path(r["remote_id"]).name, f"renamed (duplicate?): {path}"
            assert _sha256_file(path) == footage.files[r["remote_id"]], f"bytes differ: {path}"

    def assert_nothing_partial_published(self, footage: Footage) -> None:
        by_hash = {sha: Path(rel).name for rel, sha in footage.files.items()}
        for path in self.published():
            digest = _sha256_file(path)
            assert by_hash.get(digest) == path.name, f"{path} is not a complete source file"
            assert path.name != Path(BIG_NAME).name, "the big file was published"


@pytest.fixture
def station(settings: Settings, cli_env: dict[str, str], tmp_path: Path) -> Iterator[Station]:
    env = {
        **cli_env,
        "VPACK_CONCURRENCY": "1",
        "VPACK_SCHEDULER_TICK_SECONDS": "0.2",
        "VPACK_LEASE_SECONDS": "300",  # far longer than a test: expiry never rescues it
        "PYTHONUNBUFFERED": "1",
    }
    made = Station(settings, env, tmp_path)
    made.cli("init")
    try:
        yield made
    finally:
        made.close()
        # Hundreds of MB per test: do not leave them in pytest's kept tmp dirs.
        for big in (settings.videos_dir, settings.staging_dir, tmp_path / "footage"):
            shutil.rmtree(big, ignore_errors=True)


def test_worker_sigkill_mid_file_then_restart_finishes_once(
    station: Station, big_file: BigFile, tmp_path: Path
) -> None:
    footage = _footage(tmp_path / "footage", big_file, SMALL)
    station.add_source(footage.root)

    first = station.start("worker")
    part = station.wait_for_partial(first)
    station.kill(first)

    # The kill landed mid-file, and left the row leased to the dead process.
    assert 0 < part.stat().st_size < BIG_SIZE
    big_row = station.row(int(part.stem))
    assert big_row["remote_id"] == BIG_NAME
    assert big_row["state"] == "downloading"
    assert big_row["lease_owner"].split(":")[1] == str(first.pid)
    station.assert_nothing_partial_published(footage)

    second = station.start("worker")
    station.wait_all_done(second, count=len(footage.files))
    station.assert_complete(footage)

    took = station.terminate(second)
    assert second.returncode == 0, station.log_of(second)
    assert took < STOP_WITHIN, f"took {took:.1f}s to stop"


def test_worker_sigterm_mid_file_keeps_part_for_resume(
    station: Station, big_file: BigFile, tmp_path: Path
) -> None:
    # Only the big file, so the follow-up sync has exactly one video to finish.
    footage = _footage(tmp_path / "footage", big_file, {})
    station.add_source(footage.root)

    worker = station.start("worker")
    part = station.wait_for_partial(worker)
    took = station.terminate(worker)
    assert worker.returncode == 0, station.log_of(worker)
    assert took < STOP_WITHIN, f"took {took:.1f}s to stop"

    row = station.row(int(part.stem))
    assert row["remote_id"] == BIG_NAME
    assert row["state"] == "pending"
    assert row["lease_owner"] is None and row["lease_expires_at"] is None
    assert part.exists(), "the .part was not kept for resume"
    kept = part.stat().st_size
    assert 0 < kept < BIG_SIZE
    # What was kept is a true prefix of the source, so resuming from it is sound.
    assert _sha256_prefix(part, kept) == _sha256_prefix(big_file.path, kept)
    assert station.published() == []

    out, smallest = station.run_watching(part, "sync", "--json")
    assert smallest >= kept, f"copy restarted from zero ({smallest} < {kept} bytes)"
    result = json.loads(out)
    assert (result["downloaded"], result["failed"]) == (1, 0), result
    station.assert_complete(footage)


def test_sync_sigkill_mid_file_then_sync_recovers_lease_at_once(
    station: Station, big_file: BigFile, tmp_path: Path
) -> None:
    footage = _footage(tmp_path / "footage", big_file, SMALL)
    station.add_source(footage.root)

    first = station.start("sync", "--json")
    part = station.wait_for_partial(first)
    station.kill(first)

    assert 0 < part.stat().st_size < BIG_SIZE
    big_row = station.row(int(part.stem))
    assert big_row["remote_id"] == BIG_NAME
    assert big_row["state"] == "downloading"
    assert big_row["lease_owner"].split(":")[1] == str(first.pid)
    station.assert_nothing_partial_published(footage)
    unfinished = sum(r["state"] != "done" for r in station.rows())

    # The lease runs for 300 s: finishing in this one run means it was taken back
    # from the dead process, not waited out.
    began = time.monotonic()
    result = json.loads(station.cli("sync", "--json", timeout=120).stdout)
    assert time.monotonic() - began < 60
    assert (result["new"], result["downloaded"], result["failed"]) == (0, unfinished, 0), result
    station.assert_complete(footage)


def test_worker_restarted_under_its_dead_predecessors_pid_recovers_the_lease(
    station: Station, big_file: BigFile, tmp_path: Path
) -> None:
    # In a container a restarted worker is PID 1 again on the same hostname
    # (`docker restart`), so the dead worker's lease names the new worker's pid.
    footage = _footage(tmp_path / "footage", big_file, {})
    station.add_source(footage.root)

    first = station.start("worker")
    part = station.wait_for_partial(first)
    station.kill(first)
    video_id = int(part.stem)
    host, pid, started, suffix = station.row(video_id)["lease_owner"].split(":")
    assert pid == str(first.pid)

    second = station.start("worker", paused=True)
    # What the crash leaves when the pid is reused: the same lease, the successor's pid.
    station.set_lease_owner(video_id, f"{host}:{second.pid}:{started}:{suffix}")
    second.send_signal(signal.SIGCONT)

    # The lease runs 300 s: done well before that means it was taken back at start-up.
    station.wait_all_done(second, count=1, timeout=20)
    station.assert_complete(footage)
    took = station.terminate(second)
    assert second.returncode == 0, station.log_of(second)
    assert took < STOP_WITHIN, f"took {took:.1f}s to stop"
