"""The service: health, and the background worker keeping a source in sync."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from vpack import catalog
from vpack.api.app import create_app
from vpack.db.models import Video, VideoState
from vpack.services import Services
from vpack.settings import Settings
from vpack.sync.executors import LocalExecutor


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 3600,) * 2)
    return path


def test_health_reports_database_and_worker(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/health").json()
        assert body["status"] == "ok" and body["database"] == "ok"
        assert body["worker"] == "running"
        assert client.get("/api/openapi.json").status_code == 200
    with TestClient(create_app(settings, run_worker=False)) as client:
        assert client.get("/api/health").json()["worker"] == "stopped"


async def _wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _shop_with_one_video(services: Services, tmp_path: Path, interval_s: int) -> Path:
    src = tmp_path / "shop"
    _write(src / "Cam1" / "a.mp4", b"first")
    connection = await catalog.local_connection(services.db)
    await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection,
        name="shop",
        selections=[str(src)],
        options={"settle_seconds": 0},
        interval_s=interval_s,
    )
    return src


async def test_executor_syncs_on_its_interval(services: Services, tmp_path: Path) -> None:
    src = await _shop_with_one_video(services, tmp_path, interval_s=10)

    async def done_count() -> int:
        async with services.db.session() as session:
            rows = await session.execute(select(Video).where(Video.state == VideoState.DONE))
            return len(rows.all())

    stop = asyncio.Event()
    executor = LocalExecutor(services.engine, tick_seconds=0.1)
    runner = asyncio.create_task(executor.run(stop))
    try:
        await _wait_for(lambda: _at_least(done_count, 1))
        _write(src / "Cam1" / "b.mp4", b"second")
        # Not due yet (interval 10 s): a scan now would be early. Make it due.
        from sqlalchemy import update

        from vpack.db.models import Source

        async with services.db.transaction() as session:
            await session.execute(update(Source).values(next_scan_at=None))
        await _wait_for(lambda: _at_least(done_count, 2))
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)


async def test_what_a_scan_finds_is_fetched_without_waiting_for_a_tick(
    services: Services, tmp_path: Path
) -> None:
    await _shop_with_one_video(services, tmp_path, interval_s=3600)

    async def fetched() -> bool:
        async with services.db.session() as session:
            states = (await session.execute(select(Video.state))).scalars().all()
        return states == [VideoState.DONE]

    stop = asyncio.Event()
    # An hour between ticks: only the scan's own wake-up can start the download.
    runner = asyncio.create_task(LocalExecutor(services.engine, tick_seconds=3600).run(stop))
    try:
        await _wait_for(fetched)
    finally:
        stop.set()
        await asyncio.wait_for(runner, 10)


async def _at_least(count, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await count() >= n)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_runs_the_worker_and_stops_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "VPACK_SCHEDULER_TICK_SECONDS": "0.2"}
    _write(tmp_path / "shop" / "Cam1" / "a.mp4", b"recorded")
    cmd = [sys.executable, "-m", "vpack.cli"]
    subprocess.run(
        [
            *cmd,
            "sources",
            "add",
            "local",
            "--name",
            "Shop",
            "--path",
            str(tmp_path / "shop"),
            "--settle",
            "0",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [*cmd, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "serve died"
                time.sleep(0.1)
        assert health["status"] == "ok" and health["worker"] == "running"
        while True:  # the worker inside the service copies the video by itself
            listed = subprocess.run(
                [*cmd, "videos", "list", "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            videos = json.loads(listed.stdout)
            if videos and videos[0]["state"] == "done":
                break
            assert time.monotonic() < deadline, videos
            time.sleep(0.2)
        assert Path(videos[0]["path"]).read_bytes() == b"recorded"
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=20)[0]
    assert server.returncode == 0, output
