"""Benchmark `vpack sync` against `cp -r` and `rclone copy` on the same local data."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from bench.local.data import Tree, TreeSpec, ensure_tree, write_random_file

REPO = Path(__file__).resolve().parents[2]
MB = 1_000_000
MIB = 1024 * 1024
GOAL_RSS_MB = 150.0
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"

CASES = {
    "a": "(a) big files",
    "b": "(b) small files",
    "c": "(c) no-op rescan",
}


class BenchError(RuntimeError):
    """A tool failed or produced a wrong copy: the numbers would mean nothing."""


@dataclass(frozen=True)
class Scale:
    big: TreeSpec
    small: TreeSpec
    repeats: int


def scale_for(quick: bool, content: str) -> Scale:
    if quick:
        return Scale(
            big=TreeSpec(f"quick-a-{content}", 20, MIB - MIB // 20, MIB + MIB // 20, 4, content),
            small=TreeSpec(f"quick-b-{content}", 1000, 2048, 6144, 4, content),
            repeats=1,
        )
    return Scale(
        # ~10 MB apiece (+-5%), 200 files: about 2.1 GB.
        big=TreeSpec(f"a-{content}", 200, 10 * MIB - MIB // 2, 10 * MIB + MIB // 2, 4, content),
        small=TreeSpec(f"b-{content}", 20_000, 2048, 6144, 4, content),
        repeats=3,
    )


@dataclass
class Sample:
    wall: float
    rss_mb: float


@dataclass
class Row:
    case: str
    tool: str
    tree: Tree
    run: Callable[[Path], tuple[list[str], dict[str, str]]]  # fresh dest -> argv, env
    check: Callable[[Path, str], None]  # dest, stdout -> raises BenchError
    keep: bool = False  # its first run's data dir is the synced tree (c) rescans
    samples: list[Sample] = field(default_factory=list)

    @property
    def slug(self) -> str:
        return f"{self.case}-" + "".join(c if c.isalnum() else "-" for c in self.tool).strip("-")

    @property
    def median_wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def peak_rss(self) -> float:
        return max(s.rss_mb for s in self.samples)

    def throughput(self) -> float:
        """MB/s for (a), files/s otherwise."""
        if self.case == "a":
            return self.tree.bytes / MB / self.median_wall
        return self.tree.files / self.median_wall


# ------------------------------------------------------------------ running one tool
# Runs one command and reports its wall time and wait4 rusage. It is a separate,
# small process on purpose: Linux carries the peak RSS of a process image over
# exec, so a child spawned straight from this (bigger) process would report at
# least our own peak. Forked from this launcher the floor is a few MB (`true`
# is measured the same way and reported), below every tool that matters here.
_LAUNCHER = """
import os, signal, sys, time
report, argv = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGTERM))
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as out:
    cpu = usage.ru_utime + usage.ru_stime
    out.write(f"{wall} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu}")
"""


class Spawned(NamedTuple):
    wall: float  # seconds
    rss: float  # peak RSS, MB
    code: int  # exit code
    cpu: float  # user + system CPU seconds of the whole tree


def spawn(argv: list[str], env: dict[str, str], log: Path) -> Spawned:
    """Run one command alone and measure it.

    wait4 gives the rusage of the child and everything it waited for, so
    ru_maxrss is the largest single process of the tree (KB on Linux) and the
    CPU times are the tree's sum.
    """
    report = Path(f"{log}.rusage")
    report.unlink(missing_ok=True)
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *argv]
    with open(f"{log}.out", "wb") as out, open(f"{log}.err", "wb") as err:
        proc = subprocess.Popen(launcher, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            code = proc.wait()
        except BaseException:  # Ctrl-C: do not leave our child copying in the background
            proc.terminate()
            proc.wait()
            raise
    if code != 0 or not report.exists():
        raise BenchError(f"the launcher for {argv[0]} exited {code}")
    wall, rss_kb, status, cpu = report.read_text().split()
    return Spawned(float(wall), int(rss_kb) / 1024, int(status), float(cpu))


def count_files(root: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


def evict(root: Path) -> None:
    """Drop the (clean, already synced) page-cache pages of every file under `root`."""
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def warm(tree: Tree) -> None:
    """Read every source file once so all tools start from the same warm page cache."""
    for folder, _, names in os.walk(tree.root):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as handle:
                while handle.read(8 * MIB):
                    pass


# ------------------------------------------------------------------ the benchmark
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir: Path = args.workdir.resolve()
        self.vpack: str = args.vpack or _default_vpack()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VPACK_")}
        # An empty config keeps a user's rclone.conf out of it and silences its notice.
        rclone_conf = self.workdir / "rclone.conf"
        self.workdir.mkdir(parents=True, exist_ok=True)
        rclone_conf.touch()
        self.env["RCLONE_CONFIG"] = str(rclone_conf)
        self.runs = self.workdir / "runs"
        self.logs = self.workdir / "logs"
        self.rescan_dir: Path | None = None  # a synced (b) data dir, for (c)
        self.probe_errors: dict[str, str] = {}

    # ---------------------------------------------------------- rows
    def vpack_row(self, case: str, tree: Tree, fsync: bool) -> Row:
        def run(dest: Path) -> tuple[list[str], dict[str, str]]:
            env = self.vpack_env(dest, fsync)
            add = [self.vpack, "sources", "add", "local", "--name", "bench"]
            add += ["--path", str(tree.root), "--settle", "0"]
            _checked(add, env)
            return [self.vpack, "sync", "--json"], env

        def check(dest: Path, out: str) -> None:
            report = _json(out)
            got = (report.get("downloaded"), report.get("bytes"), report.get("failed"))
            if got != (tree.files, tree.bytes, 0):
                raise BenchError(f"vpack sync reported {got}, wanted {tree.files, tree.bytes, 0}")
            if count_files(dest / "videos") != (tree.files, tree.bytes):
                raise BenchError(f"{dest}/videos does not hold the {tree.files} files")
            self.probe_errors.setdefault(case, _probe_errors(dest / "vpack.db"))

        tool = "vpack sync" + (" (durable, default)" if fsync else " (VPACK_FSYNC=false)")
        # The first durable run of (b) becomes the already-synced tree (c) rescans.
        keep = case == "b" and fsync and "c" in self.args.cases
        return Row(case, tool, tree, run, check, keep=keep)

    def cp_row(self, case: str, tree: Tree, then_sync: bool) -> Row:
        def run(dest: Path) -> tuple[list[str], dict[str, str]]:
            if then_sync:  # sync(1) flushes every filesystem, like vpack's syncfs on this one
                return ["sh", "-c", 'cp -r "$0" "$1" && sync', str(tree.root), str(dest)], self.env
            return ["cp", "-r", str(tree.root), str(dest)], self.env

        return Row(case, "cp -r && sync" if then_sync else "cp -r", tree, run, self.same(tree))

    def rclone_row(self, case: str, tree: Tree) -> Row:
        def run(dest: Path) -> tuple[list[str], dict[str, str]]:
            return ["rclone", "copy", str(tree.root), str(dest)], self.env

        return Row(case, "rclone copy", tree, run, self.same(tree))

    def rescan_row(self, tree: Tree) -> Row:
        def run(dest: Path) -> tuple[list[str], dict[str, str]]:
            return [self.vpack, "sync", "--json"], self.vpack_env(self.synced(), True)

        def check(dest: Path, out: str) -> None:
            report = _json(out)
            got = (report.get("new"), report.get("downloaded"), report.get("failed"))
            if got != (0, 0, 0):
                raise BenchError(f"a no-op rescan found work: new/downloaded/failed = {got}")

        return Row("c", "vpack sync (nothing new)", tree, run, check)

    def startup_row(self, tree: Tree) -> Row:
        """`vpack sources list` on the synced tree: start-up and schema check, no scan."""

        def run(dest: Path) -> tuple[list[str], dict[str, str]]:
            return [self.vpack, "sources", "list"], self.vpack_env(self.synced(), True)

        return Row("c", "vpack sources list (start-up only)", tree, run, lambda d, o: None)

    def find_row(self, tree: Tree) -> Row:
        def run(dest: Path) -> tuple[list[str], dict[str, str]]:
            return ["sh", "-c", 'find "$0" -type f | wc -l', str(tree.root)], self.env

        def check(dest: Path, out: str) -> None:
            if out.strip() != str(tree.files):
                raise BenchError(f"find counted {out.strip()!r} files, wanted {tree.files}")

        return Row("c", "find -type f | wc -l", tree, run, check)

    def synced(self) -> Path:
        if self.rescan_dir is None:
            raise BenchError("no synced (b) data dir to rescan")
        return self.rescan_dir

    def same(self, tree: Tree) -> Callable[[Path, str], None]:
        def check(dest: Path, out: str) -> None:
            if count_files(dest) != (tree.files, tree.bytes):
                raise BenchError(f"{dest} does not hold the {tree.files} source files")

        return check

    def vpack_env(self, data_dir: Path, fsync: bool) -> dict[str, str]:
        return {
            **self.env,
            "VPACK_DATA_DIR": str(data_dir),
            "VPACK_FSYNC": "true" if fsync else "false",
        }

    # ---------------------------------------------------------- measuring
    def measure(self, row: Row, attempt: int, planned: int) -> None:
        # A fresh destination per run, and nothing is deleted until the end: on this
        # ext4 (mounted with `discard`) the first files created after removing a big
        # tree take over ten times longer (measured: cp -r of (b) 11 s instead of 0.7 s).
        # Each copy is evicted from the page cache instead, so that memory stays free
        # and no later run pays for reclaiming the pages of an earlier one.
        dest = self.runs / f"{row.slug}-{attempt}"
        self.logs.mkdir(parents=True, exist_ok=True)
        argv, env = row.run(dest)
        # Write back what earlier runs left dirty, so no run pays for another's data.
        os.sync()
        log = self.logs / f"{row.slug}-{attempt}"
        wall, rss, code, _cpu = spawn(argv, env, log)
        out = Path(f"{log}.out").read_text(errors="replace")
        if code != 0:
            err = Path(f"{log}.err").read_text(errors="replace")[-2000:]
            raise BenchError(f"{' '.join(argv)} exited {code}:\n{err}")
        row.check(dest, out)
        row.samples.append(Sample(wall, rss))
        if row.keep and self.rescan_dir is None:
            self.rescan_dir = dest  # stays cached: (c) measures a warm rescan
        else:
            os.sync()
            evict(dest)
        _say(
            f"{CASES[row.case]:<18} {row.tool:<32} run {attempt}/{planned}: "
            f"{wall:7.2f} s, {rss:6.1f} MB"
        )

    def probe_costs(self, big: Tree) -> dict[str, Any]:
        """How long vpack's PyAV probe takes on one generated file and on random bytes."""
        noise = self.workdir / "data" / "probe-random.mp4"
        if not noise.exists():
            write_random_file(noise, 10 * MIB)
        sample = next(p for p in sorted((big.root / "cam01").iterdir()))
        code = (
            "import json, sys, time\n"
            "from pathlib import Path\n"
            "from vpack.media import probe\n"
            "out = {}\n"
            "for path in sys.argv[1:]:\n"
            "    probe(Path(path))\n"
            "    n, t, c = 0, time.perf_counter(), time.process_time()\n"
            "    while n < 5 or time.perf_counter() - t < 0.5:\n"
            "        result = probe(Path(path)); n += 1\n"
            "    out[path] = {'ms': (time.perf_counter() - t) / n * 1e3,\n"
            "                 'cpu_ms': (time.process_time() - c) / n * 1e3,\n"
            "                 'error': result.error}\n"
            "print(json.dumps(out))\n"
        )
        python = str(Path(self.vpack).with_name("python"))
        if not Path(python).exists():
            python = sys.executable
        out = _checked([python, "-c", code, str(sample), str(noise)], self.env)
        costs = json.loads(out)
        return {
            "generated": {**costs[str(sample)], "size": sample.stat().st_size},
            "random": {**costs[str(noise)], "size": noise.stat().st_size},
        }

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        scale = scale_for(self.args.quick, self.args.content)
        repeats = self.args.repeats or scale.repeats
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        _say(f"preparing data under {data} (reused when it already matches)")
        big = ensure_tree(scale.big, data)
        small = ensure_tree(scale.small, data)
        # Every run keeps its copy until the end (see `measure`): check there is room.
        need = 5 * repeats * (big.bytes * ("a" in self.args.cases) + small.bytes * 2)
        free = shutil.disk_usage(data).free
        if free < need * 1.1:
            raise BenchError(f"needs {need / 1e9:.0f} GB free under {data}, has {free / 1e9:.0f}")
        self.settle_filesystem(small)

        rows: list[Row] = []
        for case, tree in (("a", big), ("b", small)):
            if case in self.args.cases:
                rows += [
                    self.vpack_row(case, tree, fsync=True),
                    self.cp_row(case, tree, then_sync=True),
                    self.vpack_row(case, tree, fsync=False),
                    self.cp_row(case, tree, then_sync=False),
                    self.rclone_row(case, tree),
                ]
        for tree in (big, small):
            warm(tree)
        if "c" in self.args.cases:
            if "b" not in self.args.cases:
                self.prepare_rescan(small)
            rows += [self.rescan_row(small), self.startup_row(small), self.find_row(small)]

        # Round-robin, so drift on the machine spreads over every tool alike. A row
        # that has used up its time budget is not repeated (see --row-budget).
        for attempt in range(1, repeats + 1):
            for row in rows:
                spent = sum(s.wall for s in row.samples)
                if row.samples and spent >= self.args.row_budget:
                    continue
                self.measure(row, attempt, repeats)
        probe = self.probe_costs(big)
        floor = spawn(["true"], self.env, self.logs / "floor").rss
        _say(f"removing the copies under {self.runs}")
        shutil.rmtree(self.runs, ignore_errors=True)
        took = time.monotonic() - started
        return {
            **self.results(rows, big, small, probe, took, repeats),
            "rss_floor_mb": round(floor, 1),
        }

    def settle_filesystem(self, tree: Tree) -> None:
        """Remove what an earlier run left, then absorb the slow burst of file creation
        that follows a big delete (see `measure`): copy `tree` until a copy is no
        slower than an earlier one (at most 6 copies). Untimed."""
        if self.runs.exists():
            _say(f"removing leftovers under {self.runs}")
            shutil.rmtree(self.runs)
        self.runs.mkdir(parents=True)
        os.sync()
        times: list[float] = []
        for n in range(1, 7):
            start = time.perf_counter()
            _checked(["cp", "-r", str(tree.root), str(self.runs / f"settle-{n}")], self.env)
            os.sync()
            times.append(time.perf_counter() - start)
            # Settled once a copy is no slower than the fastest before it (within 20%).
            if len(times) >= 2 and times[-1] <= 1.2 * min(times[:-1]):
                break
        _say("settling the filesystem: copies took " + ", ".join(f"{t:.1f}" for t in times) + " s")
        evict(self.runs)

    def prepare_rescan(self, tree: Tree) -> None:
        """Untimed: sync (b) once so (c) has something to rescan."""
        _say("syncing (b) once, untimed, for the rescan")
        self.rescan_dir = self.runs / "c-rescan-baseline"
        env = self.vpack_env(self.rescan_dir, True)
        _checked([self.vpack, "sources", "add", "local", "--name", "bench", "--path",
                  str(tree.root), "--settle", "0"], env)  # fmt: skip
        _checked([self.vpack, "sync", "--json"], env)

    # ---------------------------------------------------------- reporting
    def results(
        self,
        rows: list[Row],
        big: Tree,
        small: Tree,
        probe: dict[str, Any],
        took: float,
        repeats: int,
    ) -> dict[str, Any]:
        return {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "took_s": round(took, 1),
            "quick": self.args.quick,
            "content": self.args.content,
            "repeats": repeats,
            "row_budget_s": self.args.row_budget,
            "machine": machine_facts(self.workdir),
            "tools": tool_versions(self.vpack, self.env),
            "trees": {
                "a": {"files": big.files, "bytes": big.bytes, "root": str(big.root)},
                "b": {"files": small.files, "bytes": small.bytes, "root": str(small.root)},
            },
            "probe": probe,
            "probe_errors": self.probe_errors,
            "rows": [
                {
                    "case": r.case,
                    "tool": r.tool,
                    "walls": [round(s.wall, 3) for s in r.samples],
                    "rss_mb": [round(s.rss_mb, 1) for s in r.samples],
                    "median_wall": round(r.median_wall, 3),
                    "throughput": round(r.throughput(), 1),
                    "peak_rss_mb": round(r.peak_rss, 1),
                }
                for r in rows
                if r.samples
            ],
        }


# ------------------------------------------------------------------ facts
def machine_facts(workdir: Path) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "nproc": _output(["nproc"]).strip(),
        "kernel": platform.release(),
        "free -h": _output(["free", "-h"]).rstrip(),
        f"df -h {workdir}": _output(["df", "-h", str(workdir)]).rstrip(),
        "filesystem": _output(["df", "--output=fstype", str(workdir)]).split()[-1],
    }


def tool_versions(vpack: str, env: dict[str, str]) -> dict[str, str]:
    python = str(Path(vpack).with_name("python"))
    lib = _output(
        [
            python,
            "-c",
            "import sqlite3, sys, av, vpack; print(sys.version.split()[0], av.__version__, "
            "av.ffmpeg_version_info, sqlite3.sqlite_version, vpack.__file__)",
        ],
        env,
    ).split()
    source = lib[4] if len(lib) > 4 else "?"
    # Only name a commit when the vpack that ran is this checkout's.
    git = "not this checkout"
    if source.startswith(str(REPO) + os.sep):
        git = _output(["git", "-C", str(REPO), "describe", "--always", "--dirty"]).strip()
    return {
        "vpack": _output([vpack, "--version"], env).strip(),
        "vpack source": f"{source} (git {git or 'unknown'})",
        "python": lib[0] if lib else "?",
        "PyAV / FFmpeg": f"{lib[1]} / {lib[2]}" if len(lib) > 2 else "?",
        "SQLite": lib[3] if len(lib) > 3 else "?",
        "cp": _output(["cp", "--version"]).splitlines()[0],
        "rclone": _output(["rclone", "version"], env).splitlines()[0],
        "find": _output(["find", "--version"]).splitlines()[0],
    }


# ------------------------------------------------------------------ markdown
def _fmt_ratio(value: float, goal: float | None, higher_is_better: bool = True) -> list[str]:
    shown = f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x (1/{1 / value:.0f})"
    if goal is None:
        return [shown, "-", "-"]
    met = value >= goal if higher_is_better else value <= goal
    sign = ">=" if higher_is_better else "<="
    return [shown, f"{sign} {goal:g}x", "yes" if met else "**no**"]


def render(results: dict[str, Any]) -> str:
    rows = {(r["case"], r["tool"]): r for r in results["rows"]}
    trees = results["trees"]
    a_mb = trees["a"]["bytes"] / MB
    lines = [
        BEGIN,
        "",
        f"Generated by `python -m bench.local.run` on {results['when']} "
        f"({results['took_s'] / 60:.1f} min). Median of up to {results['repeats']} runs "
        f"per row (column *runs*: a row is not repeated once its runs took "
        f"{results['row_budget_s']:g} s, `--row-budget`), warm page cache, one tool at a "
        f"time. Peak RSS is "
        f"`ru_maxrss` from `wait4`: the largest single process of the tool's tree; "
        f"measuring `true` the same way gives {results['rss_floor_mb']:.0f} MB, so small "
        f"tools read as that floor.",
        "",
        f"Source data (`--content {results['content']}`): "
        + (
            "every file is a valid one-frame MP4 whose remaining bytes are random, in a "
            "`free` box, so PyAV probes it as quickly as a real recording."
            if results["content"] == "mp4"
            else "every file is random bytes with a `.mp4` name; PyAV's probe fails on each "
            "and vpack records the error."
        )
        + f" (a): {trees['a']['files']} files in 4 camera folders; (b): "
        f"{trees['b']['files']:,} files of 2-6 KB in 4 camera folders, "
        f"{trees['b']['bytes'] / MB:.0f} MB.",
        "",
        "| case | tool | runs | wall (median) | throughput | peak RSS |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        case = r["case"]
        if case == "a":
            what = f"(a) {trees['a']['files']} files, {a_mb:,.0f} MB"
            speed = f"{r['throughput']:,.0f} MB/s"
        else:
            label = "(b)" if case == "b" else "(c) rescan"
            what = f"{label} {trees['b']['files']:,} files"
            speed = f"{r['throughput']:,.0f} files/s"
            if "start-up" in r["tool"]:
                speed = "-"
        walls = ", ".join(f"{w:.2f}" for w in r["walls"])
        lines.append(
            f"| {what} | {_cell(r['tool'])} | {len(r['walls'])} | {r['median_wall']:.2f} s "
            f"<sub>({walls})</sub> | {speed} | {r['peak_rss_mb']:.0f} MB |"
        )

    def thr(case: str, tool: str) -> float | None:
        row = rows.get((case, tool))
        return row["throughput"] if row else None

    durable, fast = "vpack sync (durable, default)", "vpack sync (VPACK_FSYNC=false)"
    pairs = [
        ("(a) throughput, vpack durable / `cp -r && sync`", "a", durable, "cp -r && sync", 0.9),
        ("(a) throughput, vpack FSYNC=false / `cp -r`", "a", fast, "cp -r", 0.9),
        ("(a) throughput, vpack durable / rclone", "a", durable, "rclone copy", 1.0),
        ("(a) throughput, vpack FSYNC=false / rclone", "a", fast, "rclone copy", 1.0),
        ("(b) files/s, vpack durable / rclone", "b", durable, "rclone copy", 1.0),
        ("(b) files/s, vpack FSYNC=false / rclone", "b", fast, "rclone copy", 1.0),
        ("(b) files/s, vpack durable / `cp -r && sync`", "b", durable, "cp -r && sync", None),
        ("(b) files/s, vpack FSYNC=false / `cp -r`", "b", fast, "cp -r", None),
        ("(c) files/s, vpack rescan / `find | wc -l`", "c", "vpack sync (nothing new)",
         "find -type f | wc -l", None),
    ]  # fmt: skip
    lines += ["", "| ratio | value | goal | met |", "|---|---:|---:|:---:|"]
    for label, case, ours, theirs, goal in pairs:
        a, b = thr(case, ours), thr(case, theirs)
        if a is not None and b:
            lines.append("| " + " | ".join([_cell(label), *_fmt_ratio(a / b, goal)]) + " |")
    for case in ("a", "b"):
        mine = [r for r in results["rows"] if r["case"] == case]
        vpack = [r["peak_rss_mb"] for r in mine if r["tool"].startswith("vpack")]
        others = [r["peak_rss_mb"] for r in mine if not r["tool"].startswith("vpack")]
        if vpack:
            worst = max(vpack)
            lines.append(
                f"| ({case}) vpack peak RSS (largest other tool: {max(others, default=0):.0f} MB)"
                f" | {worst:.0f} MB | <= {GOAL_RSS_MB:.0f} MB "
                f"| {'yes' if worst <= GOAL_RSS_MB else '**no**'} |"
            )

    probe = results["probe"]
    gen, noise = probe["generated"], probe["random"]
    lines += [
        "",
        f"PyAV probe (`vpack.media.probe`, one thread): a generated file of "
        f"{gen['size'] / MB:.1f} MB takes {gen['ms']:.2f} ms "
        f"({'ok' if not gen['error'] else 'fails: ' + gen['error'][:60]}); "
        f"{noise['size'] / MB:.1f} MB of random bytes named `.mp4` takes {noise['ms']:.1f} ms "
        f"({noise['cpu_ms']:.1f} ms CPU) and fails. Videos vpack recorded with a probe "
        "error: "
        + (", ".join(f"({k}) {v}" for k, v in sorted(results["probe_errors"].items())) or "-")
        + ".",
        "",
        "Machine and tools:",
        "",
        "```console",
    ]
    machine = results["machine"]
    for key, value in machine.items():
        # Commands (free -h, df -h ...) show as a shell transcript, facts as key: value.
        if key.startswith(("free", "df ")):
            lines += [f"$ {key}", value]
        elif key == "nproc":
            lines += ["$ nproc", value]
        else:
            lines.append(f"{key}: {value}")
    lines += [f"{k}: {v}" for k, v in results["tools"].items()]
    lines += ["```", "", END, ""]
    return "\n".join(lines)


def _cell(text: str) -> str:
    """Markdown tables split cells on every "|", even inside backticks."""
    return text.replace("|", "\\|")


def write_out(path: Path, fragment: str) -> None:
    """Replace the generated block of `path`, or create/append it."""
    if path.exists():
        text = path.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            tail = rest.split(END, 1)[1]
            path.write_text(head + fragment.rstrip("\n") + tail)
            return
        path.write_text(text.rstrip("\n") + "\n\n" + fragment)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fragment)


# ------------------------------------------------------------------ helpers
def _default_vpack() -> str:
    beside = Path(sys.executable).with_name("vpack")
    found = str(beside) if beside.exists() else shutil.which("vpack")
    if not found:
        raise SystemExit("cannot find the vpack command; pass --vpack PATH")
    compile_sources(REPO / "src")
    return found


def compile_sources(src: Path) -> None:
    """Write vpack's bytecode, as a pip install does, before anything is timed.

    Python writes none itself where PYTHONDONTWRITEBYTECODE is set (this machine
    sets it), and compiling the sources at every start cost each run about 30 ms."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)


def _checked(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout


def _output(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False).stdout
    except OSError:
        return ""


def _json(out: str) -> dict[str, Any]:
    try:
        value = json.loads(out)
    except ValueError:
        raise BenchError(f"expected JSON from vpack, got: {out[:500]!r}") from None
    if not isinstance(value, dict):
        raise BenchError(f"expected a JSON object from vpack, got: {out[:500]!r}")
    return value


def _probe_errors(db: Path) -> str:
    """'N of M' videos vpack stored with a probe error (read from its SQLite file)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            total, failed = conn.execute(
                "SELECT count(*), count(probe_error) FROM videos"
            ).fetchone()
    except sqlite3.Error as exc:
        return f"unknown ({exc})"
    return f"{failed} of {total}"


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.local.run",
        description=__doc__,
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small smoke run (20 MB and 1,000 files, 1 run)"
    )
    parser.add_argument(
        "--out", type=Path, help="write the markdown results here (replaces its generated block)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/vpack-bench"),
        help="generated data and scratch copies (default: %(default)s)",
    )
    parser.add_argument(
        "--content",
        choices=["mp4", "random"],
        default="mp4",
        help="mp4: valid one-frame MP4s padded with random bytes; random: random bytes",
    )
    parser.add_argument("--repeats", type=int, help="runs per row (default 3, or 1 with --quick)")
    parser.add_argument(
        "--row-budget",
        type=float,
        default=100.0,
        help="stop repeating a row once its runs took this many seconds (default %(default)s)",
    )
    parser.add_argument(
        "--cases", default="abc", help="which of a, b, c to run (default %(default)s)"
    )
    parser.add_argument("--vpack", help="the vpack command (default: beside this python)")
    parser.add_argument(
        "--json",
        type=Path,
        help="raw results file (default: bench/results/local-<time>.json)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not set(args.cases) <= set(CASES):
        raise SystemExit(f"--cases takes letters from {''.join(CASES)}")
    for tool in ("cp", "rclone", "find", "sh"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed")
    try:
        results = Bench(args).run()
    except BenchError as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        return 1
    raw = args.json or REPO / "bench" / "results" / f"local-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2) + "\n")
    fragment = render(results)
    if args.out:
        write_out(args.out, fragment)
        _say(f"wrote {args.out} and {raw}")
    else:
        _say(f"wrote {raw}")
    print(fragment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
