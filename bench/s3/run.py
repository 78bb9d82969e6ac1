"""Benchmark `vpack sync` against `rclone copy` from one local S3 server (moto's), same objects.

Cases: (a) 200 objects of 8 MiB, (b) 5,000 objects of 64 KiB, (c) 1,000 objects of
64 KiB behind a relay that holds every chunk 10 ms each way, a far endpoint (fewer
with VPACK_BENCH_S3_BIG / VPACK_BENCH_S3_SMALL / VPACK_BENCH_S3_FAR or --quick).
Each tool runs alone, in round-robin (the order turning each round), into a fresh
destination; wall time and peak RSS come from the same launcher as the local
benchmark. moto is kept on one CPU (`server_core`) and started through
bench.s3.moto_clock, whose access log gives each request's arrival: requests are
counted from it, and its first line after a launch says when the tool's first
request came. A third row in (a) and
(b), "moto alone", fetches every object with bare urllib3 GETs (no signing,
hashing or disk) at the same concurrency: the server's own ceiling, which no
client can beat, so client overhead = tool time - that floor.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from bench.local.data import Tree, TreeSpec, ensure_tree
from bench.local.run import (
    REPO,
    BenchError,
    Spawned,
    _checked,
    _default_vpack,
    _json,
    _output,
    _say,
    count_files,
    evict,
    machine_facts,
    spawn,
)
from bench.s3.delay import DelayRelay

MB = 1_000_000
MIB = 1024 * 1024
BUCKET = "bench"
KEY_ID, SECRET = "AKIAVPACKBENCH", "vpack-bench-secret"
CONCURRENCY = 4  # vpack's default VPACK_CONCURRENCY and rclone's default --transfers
FAR_DELAY_MS = 10  # (c): each way, so a request and its answer take 20 ms more
_GOALS = "ab"  # the cases issue 5 sets a goal for (>= 1.0x rclone)
BEGIN = "<!-- bench-s3:begin -->"
END = "<!-- bench-s3:end -->"
# A line of moto's access log as bench.s3.moto_clock writes it: when the request
# arrived (CLOCK_MONOTONIC seconds), then werkzeug's request line and status.
_ACCESS = re.compile(r'\[(\d+\.\d+)\] "(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+" (\d{3})')

# The floor row: a separate process fetching presigned URLs (signed beforehand,
# untimed) with plain urllib3 GETs: no SDK, hashing or disk.
_FLOOR = """
import sys, urllib3
from concurrent.futures import ThreadPoolExecutor
workers, urls = int(sys.argv[1]), open(sys.argv[2]).read().split()
pool = urllib3.PoolManager(maxsize=workers)
def fetch(url):
    response = pool.request("GET", url, preload_content=False)
    size = 0
    for chunk in response.stream(1 << 20):
        size += len(chunk)
    response.release_conn()
    if response.status != 200:
        raise SystemExit(f"{url}: HTTP {response.status}")
    return size
with ThreadPoolExecutor(workers) as threads:
    print(sum(threads.map(fetch, urls)))
"""

# Untimed: one S3 connection and source in a fresh data dir, as `vpack` would store them.
_ADD_SOURCE = """
import asyncio, json, sys
from vpack import catalog
from vpack.services import build, prepare
from vpack.settings import Settings
config, prefix = json.loads(sys.argv[1]), sys.argv[2]
async def main():
    settings = Settings()
    prepare(settings)
    services = build(settings)
    try:
        connection, _ = await services.connections.create(
            provider="s3", name="bench", config=config, owner_id=None, from_api=False
        )
        await catalog.add_source(
            services.db, services.connections, connection_id=connection.id, name="bench",
            selections=[prefix], options={}, interval_s=300,
        )
    finally:
        await services.aclose()
asyncio.run(main())
"""


@dataclass
class Case:
    letter: str
    tree: Tree
    keys: list[str]
    endpoint: str | None = None  # where the tools go, when not straight to moto

    @property
    def prefix(self) -> str:
        return f"{self.tree.root.name}/"

    @property
    def title(self) -> str:
        size = self.tree.bytes / self.tree.files
        each = f"{size / MIB:.0f} MiB" if size >= MIB else f"{size / 1024:.0f} KiB"
        far = f", {FAR_DELAY_MS} ms away" if self.endpoint else ""
        return f"({self.letter}) {self.tree.files:,} objects of {each}{far}"


@dataclass
class Row:
    case: Case
    tool: str
    walls: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # the tool's CPU seconds per run
    server_cpu: list[float] = field(default_factory=list)  # moto's CPU seconds per run
    requests: Counter[str] = field(default_factory=Counter)
    firsts: list[float] = field(default_factory=list)  # launch to first request, per run

    @property
    def median(self) -> float:
        return statistics.median(self.walls)


class Mark(NamedTuple):
    """Where moto's log stood, and the clock, as a tool was about to be launched."""

    offset: int
    clock: float


class Logged(NamedTuple):
    """What moto logged of one tool's run."""

    requests: Counter[str]  # by S3 operation
    first: float  # seconds from launch to the tool's first request


class MotoServer:
    """moto's S3 server in its own process; its access log tells what each tool asked."""

    def __init__(self, log: Path, core: int | None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(log, "wb")  # noqa: SIM115 - open for the server's lifetime
        argv = [sys.executable, "-m", "bench.s3.moto_clock", "-H", "127.0.0.1", "-p", str(port)]
        self.process = subprocess.Popen(argv, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT)
        self.core = core
        if core is not None:  # before moto starts a thread: each new one inherits it
            os.sched_setaffinity(self.process.pid, {core})
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise BenchError("moto's server did not start") from None
                time.sleep(0.1)

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far (all its threads, user + system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime and stime are fields 14 and 15 of stat(5); [0] here is field 3.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def mark(self) -> Mark:
        self._out.flush()
        return Mark(self.log.stat().st_size, time.monotonic())

    def logged_since(self, mark: Mark) -> Logged:
        """The requests logged since `mark`, and when the first of them came."""
        time.sleep(0.2)  # let the server write its last lines
        with open(self.log, "rb") as log:
            log.seek(mark.offset)
            text = log.read().decode(errors="replace")
        counts: Counter[str] = Counter()
        first = math.inf
        for arrived, method, target, _status in _ACCESS.findall(text):
            first = min(first, float(arrived))
            path, _, query = target.partition("?")
            has_key = "/" in path.strip("/")
            if method == "GET" and has_key:
                counts["GetObject"] += 1
            elif method == "GET" and "list-type=2" in query:
                counts["ListObjectsV2"] += 1
            elif method == "GET" and not has_key:
                counts["ListObjects"] += 1  # version 1, as rclone lists by default
            else:
                counts[f"{method} {'object' if has_key else 'bucket'}"] += 1
        return Logged(counts, first - mark.clock)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._out.close()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir: Path = args.workdir.resolve()
        self.vpack: str = args.vpack or _default_vpack()
        # The AWS_* variables of this shell (a CA bundle, a profile) stay out of both tools.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("VPACK_", "AWS_"))}
        self.runs = self.workdir / "runs"
        self.logs = self.workdir / "logs"
        big = int(os.environ.get("VPACK_BENCH_S3_BIG", 20 if args.quick else 200))
        small = int(os.environ.get("VPACK_BENCH_S3_SMALL", 500 if args.quick else 5000))
        far = int(os.environ.get("VPACK_BENCH_S3_FAR", 100 if args.quick else 1000))
        self.scale: tuple[TreeSpec, ...] = (
            TreeSpec(f"s3-a-{big}", big, 8 * MIB, 8 * MIB, 4, "mp4"),
            TreeSpec(f"s3-b-{small}", small, 64 * 1024, 64 * 1024, 4, "mp4"),
            TreeSpec(f"s3-c-{far}", far, 64 * 1024, 64 * 1024, 4, "mp4"),
        )
        self.moto = MotoServer(self.logs / "moto.log", None if args.no_pin else server_core())

    def rclone_env(self, case: Case) -> dict[str, str]:
        remote = {
            "TYPE": "s3",
            "PROVIDER": "Other",
            "ENDPOINT": case.endpoint or self.moto.endpoint,
            "REGION": "us-east-1",
            "FORCE_PATH_STYLE": "true",
            "ACCESS_KEY_ID": KEY_ID,
            "SECRET_ACCESS_KEY": SECRET,
        }
        config = {f"RCLONE_CONFIG_MOTO_{k}": v for k, v in remote.items()}
        return {**self.env, "RCLONE_CONFIG": os.devnull, **config}

    def place_far(self, case: Case, delay: float, stack: contextlib.ExitStack) -> None:
        """Send both tools to `case`'s objects through a relay `delay` seconds each way,
        until `stack` closes."""
        port = int(self.moto.endpoint.rsplit(":", 1)[1])
        relay = stack.enter_context(DelayRelay(port, delay))
        case.endpoint = f"http://127.0.0.1:{relay.port}"

    def s3_config(self, case: Case) -> dict[str, Any]:
        return {
            "bucket": BUCKET,
            "endpoint_url": case.endpoint or self.moto.endpoint,
            "path_style": True,
            "access_key_id": KEY_ID,
            "secret_access_key": SECRET,
        }

    # ---------------------------------------------------------- data
    def upload(self, spec: TreeSpec) -> Case:
        """Generate the tree (or reuse it) and put every file into the bucket. Untimed."""
        tree = ensure_tree(spec, self.workdir / "data")
        client = self.client()
        if spec is self.scale[0]:
            client.create_bucket(Bucket=BUCKET)
        files = sorted(p for p in tree.root.rglob("*") if p.is_file())
        keys = [f"{tree.root.name}/{p.relative_to(tree.root).as_posix()}" for p in files]

        def put(item: tuple[Path, str]) -> None:
            client.put_object(Bucket=BUCKET, Key=item[1], Body=item[0].read_bytes())

        with ThreadPoolExecutor(8) as threads:
            list(threads.map(put, zip(files, keys, strict=True)))
        return Case("abc"[self.scale.index(spec)], tree, keys)

    # ---------------------------------------------------------- one run of each tool
    def run_vpack(self, case: Case, attempt: int) -> tuple[Spawned, Logged]:
        data = self.runs / f"{case.letter}-vpack-{attempt}"
        env = {**self.env, "VPACK_DATA_DIR": str(data)}
        python = str(Path(self.vpack).with_name("python"))
        _checked([python, "-c", _ADD_SOURCE, json.dumps(self.s3_config(case)), case.prefix], env)
        mark = self.moto.mark()
        log = self.logs / f"{case.letter}-vpack-{attempt}"
        ran = spawn([self.vpack, "sync", "--json"], env, log)
        logged = self.moto.logged_since(mark)
        out = Path(f"{log}.out").read_text(errors="replace")
        if ran.code != 0:
            error = Path(f"{log}.err").read_text()[-2000:]
            raise BenchError(f"vpack sync exited {ran.code}: {error}")
        report = _json(out)
        got = (report.get("downloaded"), report.get("bytes"), report.get("failed"))
        if got != (case.tree.files, case.tree.bytes, 0):
            raise BenchError(
                f"vpack sync reported {got}, wanted {case.tree.files, case.tree.bytes, 0}"
            )
        if count_files(data / "videos") != (case.tree.files, case.tree.bytes):
            raise BenchError(f"{data}/videos does not hold the {case.tree.files} objects")
        evict(data)
        return ran, logged

    def run_rclone(self, case: Case, attempt: int) -> tuple[Spawned, Logged]:
        dest = self.runs / f"{case.letter}-rclone-{attempt}"
        mark = self.moto.mark()
        argv = ["rclone", "copy", f"moto:{BUCKET}/{case.prefix}", str(dest)]
        ran = spawn(argv, self.rclone_env(case), self.logs / f"{case.letter}-rclone-{attempt}")
        logged = self.moto.logged_since(mark)
        if ran.code != 0:
            raise BenchError(f"rclone exited {ran.code}")
        if count_files(dest) != (case.tree.files, case.tree.bytes):
            raise BenchError(f"{dest} does not hold the {case.tree.files} objects")
        evict(dest)
        return ran, logged

    def run_floor(self, case: Case, attempt: int) -> tuple[Spawned, Logged]:
        urls = self.workdir / f"{case.letter}-urls.txt"
        urls.write_text("\n".join(self.presigned(case)))
        argv = [sys.executable, "-c", _FLOOR, str(CONCURRENCY), str(urls)]
        mark = self.moto.mark()
        log = self.logs / f"{case.letter}-floor-{attempt}"
        ran = spawn(argv, self.env, log)
        logged = self.moto.logged_since(mark)
        fetched = Path(f"{log}.out").read_text().strip()
        if ran.code != 0 or fetched != str(case.tree.bytes):
            error = Path(f"{log}.err").read_text()[-500:]
            raise BenchError(f"the floor run fetched {fetched!r} bytes (exit {ran.code}): {error}")
        return ran, logged

    def presigned(self, case: Case) -> list[str]:
        client = self.client(signature_version="s3v4")
        return [
            client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key})
            for key in case.keys
        ]

    def client(self, **options: Any) -> Any:
        """The bench's own boto3 client, for arranging data and signing URLs."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.moto.endpoint,
            region_name="us-east-1",
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
            config=Config(max_pool_connections=16, s3={"addressing_style": "path"}, **options),
        )

    def ranged_get_ms(self, case: Case) -> float:
        """One 1 MiB ranged GET from the middle of an object, as resumes and split
        downloads do (moto reads the whole object for it)."""
        import urllib3

        pool = urllib3.PoolManager()
        url = self.presigned(case)[0]
        size = case.tree.bytes // case.tree.files
        start = max(0, size // 2 - MIB // 2)
        header = {"Range": f"bytes={start}-{start + MIB - 1}"}
        times = []
        for _ in range(5):
            began = time.perf_counter()
            response = pool.request("GET", url, headers=header)
            times.append(time.perf_counter() - began)
            if response.status != 206:
                raise BenchError(f"a ranged GET answered HTTP {response.status}")
        return statistics.median(times) * 1000

    # ---------------------------------------------------------- the run
    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        repeats = self.args.repeats or (1 if self.args.quick else 3)
        self.runs.mkdir(parents=True, exist_ok=True)
        stack = contextlib.ExitStack()
        try:
            counts = " + ".join(str(spec.files) for spec in self.scale)
            _say(f"moto at {self.moto.endpoint}; uploading {counts} objects (untimed)")
            cases = [self.upload(spec) for spec in self.scale]
            ranged = {c.letter: self.ranged_get_ms(c) for c in cases if c.letter != "c"}
            rows = [
                Row(case, tool)
                for case in cases
                for tool in ("vpack sync", "rclone copy", "moto alone (urllib3 GETs)")
                if case.letter != "c" or not tool.startswith("moto")  # (c) has no floor row
            ]
            self.place_far(cases[-1], FAR_DELAY_MS / 1000, stack)
            runner = {
                "vpack sync": self.run_vpack,
                "rclone copy": self.run_rclone,
                "moto alone (urllib3 GETs)": self.run_floor,
            }
            for attempt in range(1, repeats + 1):
                for row in _rotated(rows, attempt - 1):
                    os.sync()
                    server_before = self.moto.cpu_seconds()
                    ran, logged = runner[row.tool](row.case, attempt)
                    row.server_cpu.append(self.moto.cpu_seconds() - server_before)
                    row.walls.append(ran.wall)
                    row.rss.append(ran.rss)
                    row.cpu.append(ran.cpu)
                    row.requests = logged.requests
                    row.firsts.append(logged.first)
                    total = sum(logged.requests.values())
                    _say(
                        f"{row.case.title:<30} {row.tool:<26} run {attempt}/{repeats}: "
                        f"{ran.wall:7.2f} s (first request {logged.first:.2f} s), "
                        f"{ran.rss:6.1f} MB, {total} requests, "
                        f"CPU {ran.cpu:.2f} s + moto {row.server_cpu[-1]:.2f} s"
                    )
        finally:
            stack.close()
            self.moto.stop()
            shutil.rmtree(self.runs, ignore_errors=True)
        return self.results(rows, ranged, repeats, time.monotonic() - started)

    def results(
        self, rows: list[Row], ranged: dict[str, float], repeats: int, took: float
    ) -> dict[str, Any]:
        return {
            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "took_s": round(took, 1),
            "repeats": repeats,
            "concurrency": CONCURRENCY,
            "moto_core": self.moto.core,
            "machine": machine_facts(self.workdir),
            "tools": {
                "vpack": _output([self.vpack, "--version"], self.env).strip(),
                "vpack git": _output(
                    ["git", "-C", str(REPO), "describe", "--always", "--dirty"]
                ).strip(),
                "rclone": _output(["rclone", "version"], self.env).splitlines()[0],
                "moto": _output(
                    [sys.executable, "-c", "import moto; print(moto.__version__)"]
                ).strip(),
                "boto3": _output(
                    [sys.executable, "-c", "import boto3; print(boto3.__version__)"]
                ).strip(),
            },
            "ranged_get_ms": {k: round(v, 1) for k, v in ranged.items()},
            "rows": [
                {
                    "case": r.case.letter,
                    "title": r.case.title,
                    "objects": r.case.tree.files,
                    "bytes": r.case.tree.bytes,
                    "tool": r.tool,
                    "walls": [round(w, 3) for w in r.walls],
                    "median_wall": round(r.median, 3),
                    "peak_rss_mb": round(max(r.rss), 1),
                    "median_cpu_s": round(statistics.median(r.cpu), 2),
                    "median_server_cpu_s": round(statistics.median(r.server_cpu), 2),
                    "median_first_request_s": round(statistics.median(r.firsts), 3),
                    "requests": dict(r.requests),
                }
                for r in rows
            ],
        }


def server_core() -> int | None:
    """The CPU moto is kept on, or None with only one to run on.

    moto answers each connection in a thread of one process, under one GIL. Free to
    run on either core of this 2-core machine, its threads hand the GIL to each other
    across cores, and its pace follows how the tool's threads happen to be placed: a
    tool's 5,000 GETs and listing of (b) cost moto 12.5-13.5 CPU-s instead of
    10.4-10.8, and one tool's runs of (b) ranged over 4 s in one full run. On a core
    of its own (the tools still run anywhere) it is the steadier server that a real
    store is to its clients, which do not share its CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0] if len(cpus) > 1 else None


def _rotated(rows: list[Row], turn: int) -> list[Row]:
    """The rows, each case's tools in an order that turns by one each round: the
    same tool first every time would be favoured by moto, which slows as it ages
    (the floor row of (b) went 11.1 -> 15.2 s from one round to the next)."""
    ordered: list[Row] = []
    for case in dict.fromkeys(row.case.letter for row in rows):
        mine = [row for row in rows if row.case.letter == case]
        shift = turn % len(mine)
        ordered += mine[shift:] + mine[:shift]
    return ordered


# ------------------------------------------------------------------ markdown
def render(results: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "",
        f"Generated by `python -m bench.s3.run` on {results['when']} "
        f"({results['took_s'] / 60:.1f} min), vpack git {results['tools']['vpack git']}. "
        f"Median of {results['repeats']} runs per row, one tool at a time, "
        f"{results['concurrency']} transfers at once for every tool. {_placement(results)} "
        "CPU is user + system "
        "seconds: the tool's whole process tree (`wait4`), and moto's server process over the "
        "same run (`/proc/PID/stat`).",
        "",
        "| case | tool | runs | wall (median) | first request | throughput | "
        "CPU: tool / moto | requests / object | peak RSS |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for row in results["rows"]:
        by_key[row["case"], row["tool"]] = row
        walls = ", ".join(f"{w:.2f}" for w in row["walls"])
        mb_s = row["bytes"] / MB / row["median_wall"]
        per_s = row["objects"] / row["median_wall"]
        total = sum(row["requests"].values())
        detail = ", ".join(f"{k} {v}" for k, v in sorted(row["requests"].items()))
        lines.append(
            f"| {row['title']} | {row['tool']} | {len(row['walls'])} | "
            f"{row['median_wall']:.2f} s <sub>({walls})</sub> | "
            f"{_first(row)} | "
            f"{mb_s:,.0f} MB/s, {per_s:,.0f} objects/s | "
            f"{row['median_cpu_s']:.2f} s / {row['median_server_cpu_s']:.2f} s | "
            f"{total / row['objects']:.3f} <sub>({detail})</sub> | {row['peak_rss_mb']:.0f} MB |"
        )
    lines += ["", "| ratio | value | goal | met |", "|---|---:|---:|:---:|"]
    for case in sorted({r["case"] for r in results["rows"]}):
        vpack = by_key[case, "vpack sync"]["median_wall"]
        rclone = by_key[case, "rclone copy"]["median_wall"]
        floor = by_key.get((case, "moto alone (urllib3 GETs)"))
        ratio = rclone / vpack
        met = ("yes" if ratio >= 1 else "**no**") if case in _GOALS else "-"
        lines.append(
            f"| ({case}) throughput, vpack / rclone | {ratio:.2f}x | "
            f"{'>= 1x' if case in _GOALS else '-'} | {met} |"
        )
        if floor is not None:
            lines.append(
                f"| ({case}) time above moto alone: vpack / rclone | "
                f"{vpack - floor['median_wall']:.2f} s / "
                f"{rclone - floor['median_wall']:.2f} s | - | - |"
            )
        if "median_first_request_s" in by_key[case, "vpack sync"]:
            after = {
                t: by_key[case, t]["median_wall"] - by_key[case, t]["median_first_request_s"]
                for t in ("vpack sync", "rclone copy")
            }
            lines.append(
                f"| ({case}) wall after the first request: vpack / rclone | "
                f"{after['vpack sync']:.2f} s / {after['rclone copy']:.2f} s | - | - |"
            )
        objects = by_key[case, "vpack sync"]["objects"]
        cpu = {
            t: by_key[case, t]["median_cpu_s"] * 1000 / objects
            for t in ("vpack sync", "rclone copy")
        }
        lines.append(
            f"| ({case}) client CPU per object: vpack / rclone | "
            f"{cpu['vpack sync']:.2f} ms / {cpu['rclone copy']:.2f} ms | - | - |"
        )
    ranged = results["ranged_get_ms"]
    lines += [
        "",
        f"One 1 MiB ranged GET from the middle of an object takes moto {ranged.get('a', 0):.0f} ms "
        f"(8 MiB objects) and {ranged.get('b', 0):.0f} ms (64 KiB objects).",
        "",
        "```console",
        *(f"{k}: {v}" for k, v in results["tools"].items()),
        f"cpu: {results['machine']['cpu']} x {results['machine']['nproc']}",
        "```",
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def _first(row: dict[str, Any]) -> str:
    """When moto saw the tool's first request, counted from its launch (median)."""
    first = row.get("median_first_request_s")  # not in results from before 2026-11-25
    return "-" if first is None else f"{first:.2f} s"


def _placement(results: dict[str, Any]) -> str:
    core = results.get("moto_core")
    if core is None:
        return "moto's server ran on any CPU."
    return f"moto's server was kept on CPU {core} (`server_core`), the tools ran on any CPU."


def write_block(path: Path, fragment: str) -> None:
    """Replace this benchmark's generated block in `path`, or append one."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + fragment.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + fragment
    path.write_text(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.s3.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 + 500 objects, 1 run each")
    parser.add_argument("--out", type=Path, help="markdown file whose S3 block is replaced")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vpack-bench-s3"))
    parser.add_argument("--repeats", type=int, help="runs per row (default 3, 1 with --quick)")
    parser.add_argument("--vpack", help="the vpack command (default: beside this python)")
    parser.add_argument(
        "--no-pin", action="store_true", help="let moto run on any CPU (see server_core)"
    )
    parser.add_argument("--json", type=Path, help="raw results (default bench/results/s3-*.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("rclone") is None:
        raise SystemExit("rclone is not installed (Debian: apt-get install -y rclone)")
    try:
        results = Bench(args).run()
    except BenchError as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        return 1
    raw = args.json or REPO / "bench" / "results" / f"s3-{time.strftime('%Y%m%d-%H%M%S')}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(results, indent=2) + "\n")
    fragment = render(results)
    if args.out:
        write_block(args.out, fragment)
    _say(f"wrote {raw}" + (f" and {args.out}" if args.out else ""))
    print(fragment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
