"""Scale benchmark: a 100,000-file Google Drive in the emulator, scanned by VPACK.

Reports the first scan's API requests (goal: pages of 1000), its time and the
scanning process's peak RSS (goal: flat, <= 150 MB), and the no-change rescan's
requests (goal: one). No peer tool can take part: rclone's drive backend cannot
be pointed at another API host, so this one is measured against its goals only.

    python -m bench.google_drive.run [--files 100000] [--folders 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tests.providers.google_drive.emulator import DriveEmulator
from tests.providers.google_drive.harness import CLIENT_ID, CLIENT_SECRET, REDIRECT, sign_in

from vpack.providers.kit.oauth import env_name

GOAL_RSS_MB = 150.0


def _requests_by_path(drive: DriveEmulator) -> dict[str, int]:
    return dict(Counter(r.path for r in drive.requests))


def run(files: int, folders: int) -> dict[str, Any]:
    with (
        DriveEmulator(
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[REDIRECT]
        ) as drive,
        tempfile.TemporaryDirectory(prefix="vpack-bench-drive-") as tmp,
    ):
        area = drive.add_folder("Area")
        per_folder = files // folders
        for i in range(folders):
            camera = drive.add_folder(f"Cam{i:03d}", area)
            drive.add_many(camera, per_folder, size=0, name_format=f"cam{i:03d}-{{:06d}}.mp4")
        tokens = Path(tmp, "tokens.json")
        tokens.write_text(json.dumps(sign_in(drive).to_dict()))
        env = {
            **os.environ,
            env_name("google_drive", "CLIENT_ID"): CLIENT_ID,
            env_name("google_drive", "CLIENT_SECRET"): CLIENT_SECRET,
            env_name("google_drive", "TOKEN_URL"): drive.token_url,
            env_name("google_drive", "AUTH_URL"): drive.authorize_url,
            env_name("google_drive", "API_URL"): drive.api_url,
            "VPACK_SECRET_KEY": "",
        }
        env.pop("VPACK_SECRET_KEY")
        drive.reset_counts()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.google_drive.scan",
                str(Path(tmp, "data")),
                str(tokens),
                area,
            ],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        rounds = []
        for _ in range(2):
            line = child.stdout.readline()
            if not line:
                raise RuntimeError("the scanning process stopped early")
            result = json.loads(line)
            result["requests"] = _requests_by_path(drive)
            result["total_requests"] = len(drive.requests)
            rounds.append(result)
            drive.reset_counts()
            child.stdin.write("\n")
            child.stdin.flush()
        child.wait(timeout=120)
        peak_mb = max(r["peak_rss_mb"] for r in rounds)
    return {"files": files, "folders": folders, "rounds": rounds, "peak_rss_mb": peak_mb}


def render(result: dict[str, Any]) -> str:
    first, rescan = result["rounds"]
    listing = first["requests"].get("/drive/v3/files", 0)
    met = result["peak_rss_mb"] <= GOAL_RSS_MB
    lines = [
        f"Drive scale benchmark: {result['files']:,} files in {result['folders']} camera folders",
        f"- first scan: {first['seconds']:.1f} s, {first['new']:,} videos recorded, "
        f"{first['total_requests']} requests ({listing} files.list pages; "
        f"{result['files'] / max(1, listing):.0f} files per page), by path {first['requests']}",
        f"- no-change rescan: {rescan['seconds']:.2f} s, {rescan['total_requests']} request(s) "
        f"{rescan['requests']} (goal: 1)",
        f"- peak RSS of the scanning process: {result['peak_rss_mb']:.0f} MB "
        f"(goal <= {GOAL_RSS_MB:.0f} MB: {'met' if met else 'NOT met'})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--folders", type=int, default=100)
    args = parser.parse_args(argv)
    result = run(args.files, args.folders)
    print(render(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
