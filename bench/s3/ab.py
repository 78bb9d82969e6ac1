"""A/B of vpack revisions on case (b) of the S3 benchmark: small objects from moto's server.

    .venv/bin/python -m bench.s3.ab --objects 2000 --rounds 6 HEAD~1 .    # rclone too
    .venv/bin/python -m bench.s3.ab --no-rclone 59916ba .
    .venv/bin/python -m bench.s3.ab --objects 1000 --rounds 2 --delay-ms 10 HEAD~1 .

Each revision is checked out in a git worktree under the work dir ("." is the
working tree as it is) and run with this checkout's virtualenv, through the
same `vpack sync` run and checks as `bench.s3.run`. The order of the revisions
alternates from round to round: the second `vpack sync` of a round runs about
0.1 s and 0.25 CPU-seconds slower than the first, whatever its code, so a fixed
order would favour the first revision. rclone, if asked for, runs last in each
round. Prints each run, then the medians of wall time, CPU seconds and the time
from launch to the first request moto saw (bench.s3.moto_clock).

`--delay-ms D` puts moto behind a relay that holds every chunk D ms each way
(bench/s3/delay.py): a far endpoint, where each small object costs a round trip.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench.local.data import TreeSpec
from bench.local.run import REPO, compile_sources
from bench.s3.run import Bench, Case, parse_args

# The revision's own entry point, in whichever place that revision keeps it.
_ENTRY = (
    "import importlib, importlib.util, sys; sys.argv[0] = 'vpack'\n"
    "names = ['vpack.cli.launch', 'vpack.launch', 'vpack.cli']\n"
    "for name in names:\n"
    "    try:\n"
    "        if importlib.util.find_spec(name): break\n"
    "    except ImportError: pass  # vpack.cli a module, not a package\n"
    "sys.exit(importlib.import_module(name).main())"
)


def _git(*argv: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout.strip()


def wrappers(revision: str, workdir: Path, trees: list[Path]) -> Path:
    """A `vpack` and a `python` running `revision` with this virtualenv's interpreter;
    a worktree made for it is added to `trees`."""
    if revision == ".":
        src, label = REPO / "src", "working-tree"
    else:
        label = _git("rev-parse", "--verify", f"{revision}^{{commit}}")[:12]
        tree = workdir / "trees" / label
        if not tree.exists():
            _git("worktree", "add", "--detach", str(tree), label)
            trees.append(tree)
        src = tree / "src"
    compile_sources(src)  # both sides start from bytecode, as installed
    folder = workdir / "bin" / label
    folder.mkdir(parents=True, exist_ok=True)
    run = f'export PYTHONPATH="{src}"\nexec "{sys.executable}"'
    (folder / "python").write_text(f'#!/bin/sh\n{run} "$@"\n')
    (folder / "vpack").write_text(f'#!/bin/sh\n{run} -c "{_ENTRY}" "$@"\n')
    for name in ("python", "vpack"):
        (folder / name).chmod(0o755)
    return folder / "vpack"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.s3.ab", description=__doc__)
    parser.add_argument("revisions", nargs=2, help="two git revisions ('.': the working tree)")
    parser.add_argument("--objects", type=int, default=2000, help="64 KiB objects (2000)")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--no-rclone", action="store_true", help="leave rclone out")
    parser.add_argument("--delay-ms", type=float, default=0, help="added each way (0)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/vpack-bench-s3-ab"))
    args = parser.parse_args(argv)
    if not args.no_rclone and shutil.which("rclone") is None:
        raise SystemExit("rclone is not installed (Debian: apt-get install -y rclone)")
    workdir = args.workdir.resolve()
    trees: list[Path] = []
    try:
        commands = {rev: str(wrappers(rev, workdir, trees)) for rev in args.revisions}
        return _compare(commands, args, workdir)
    finally:
        for tree in trees:
            _git("worktree", "remove", "--force", str(tree))


def _compare(commands: dict[str, str], args: argparse.Namespace, workdir: Path) -> int:
    bench = Bench(parse_args(["--workdir", str(workdir)]))
    try:
        # Leftovers of an A/B that was cut short. An A/B that ends removes its own
        # (below): on an ext4 without a journal, as on these machines, creating a
        # file skips the inodes freed in the last minute or more, and 20,000 files
        # removed just before cost the next 5,000 creations 2.9 CPU-s instead of 0.3.
        shutil.rmtree(bench.runs, ignore_errors=True)
        spec = TreeSpec(f"s3-b-{args.objects}", args.objects, 64 * 1024, 64 * 1024, 4, "mp4")
        bench.scale = (spec,)  # the one case: upload() makes the bucket for the first
        case = bench.upload(spec)
        with contextlib.ExitStack() as stack:
            if args.delay_ms:
                bench.place_far(case, args.delay_ms / 1000, stack)
            return _rounds(bench, case, commands, args)
    finally:
        bench.moto.stop()
        shutil.rmtree(bench.runs, ignore_errors=True)


def _rounds(bench: Bench, case: Case, commands: dict[str, str], args: argparse.Namespace) -> int:
    walls: dict[str, list[float]] = {name: [] for name in [*commands, "rclone"]}
    cpus: dict[str, list[float]] = {name: [] for name in walls}
    firsts: dict[str, list[float]] = {name: [] for name in walls}  # launch to first request
    for attempt in range(args.rounds):
        order = list(commands) if attempt % 2 == 0 else list(reversed(commands))
        for revision in order:
            bench.vpack = commands[revision]
            shutil.rmtree(bench.runs / f"{case.letter}-vpack-{attempt}", ignore_errors=True)
            ran, logged = bench.run_vpack(case, attempt)
            walls[revision].append(ran.wall)
            cpus[revision].append(ran.cpu)
            firsts[revision].append(logged.first)
            print(_run_line(attempt, revision, ran.wall, logged.first), flush=True)
        if not args.no_rclone:
            ran, logged = bench.run_rclone(case, attempt)
            walls["rclone"].append(ran.wall)
            cpus["rclone"].append(ran.cpu)
            firsts["rclone"].append(logged.first)
            print(_run_line(attempt, "rclone", ran.wall, logged.first), flush=True)
    for name, seen in walls.items():
        if seen:
            runs = ", ".join(f"{w:.2f}" for w in seen)
            print(
                f"{name}: wall {statistics.median(seen):.2f} s ({runs}), "
                f"CPU {statistics.median(cpus[name]):.2f} s, "
                f"first request {statistics.median(firsts[name]):.2f} s"
            )
    return 0


def _run_line(attempt: int, name: str, wall: float, first: float) -> str:
    return f"round {attempt + 1}: {name} {wall:.2f} s (first request {first:.2f} s)"


if __name__ == "__main__":
    sys.exit(main())
