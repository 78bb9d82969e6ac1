"""One VPACK process scanning a Drive source twice (first scan, then no-change rescan).

Started by bench.google_drive.run, which owns the emulator and counts its requests;
this process says when each round is done on stdout and waits on stdin between
rounds, so the counts are per round. Its own peak RSS is what the benchmark reports.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from vpack import catalog
from vpack.providers.kit.oauth import TokenSet
from vpack.services import build, prepare
from vpack.settings import Settings


def _peak() -> float:
    """This process's own peak RSS (VmHWM) in MB. Not the runner's RUSAGE_CHILDREN: a
    child that is forked before its exec is charged the parent's pages (the emulator's
    100,000 files) for that instant."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


async def main(data_dir: Path, saved_tokens: str, selection: str) -> None:
    settings = Settings(data_dir=data_dir)
    prepare(settings)
    services = build(settings)
    tokens = TokenSet.from_dict(json.loads(saved_tokens))
    connection, _, _ = await services.connections.connect_oauth(
        provider="google_drive", owner_id=None, tokens=tokens, name="bench", reconnect_id=None
    )  # type: ignore[arg-type]
    source = await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection.id,
        name="bench",
        selections=[selection],
        options={},
        interval_s=3600,
    )
    for round_name in ("first", "rescan"):
        started = time.perf_counter()
        tally = await services.engine.scan_source(source)
        seconds = time.perf_counter() - started
        result = {"round": round_name, "seconds": seconds, "new": tally.new, "peak_rss_mb": _peak()}
        print(json.dumps(result), flush=True)
        sys.stdin.readline()  # the runner reads the emulator's counts meanwhile
    await services.engine.aclose()
    await services.db.engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]).read_text(), sys.argv[3]))
