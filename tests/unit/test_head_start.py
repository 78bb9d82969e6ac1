"""A `vpack sync`'s first listing leaves before the program has loaded (vpack.head_start),
and the scan takes its pages; where the early reading cannot be trusted, nothing starts."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.conformance.s3_harness import S3Harness, put_many
from tests.conftest import running
from vpack import catalog, head_start
from vpack.providers.s3 import S3Provider
from vpack.services import Services
from vpack.settings import Settings

_LAUNCH = "import sys; sys.argv[0] = 'vpack'; from vpack.launch import main; main()"


@pytest.mark.parametrize(
    ("argv", "ids"),
    [
        (["sync"], ()),
        (["-v", "sync", "3", "--json", "5"], (3, 5)),
        (["--verbose", "sync", "--json"], ()),
        (["sync", "--help"], None),
        (["sync", "x"], None),
        (["sync", "²"], None),  # a digit to str.isdigit, not to int(): left to the command
        (["sync", "٣"], None),  # int() reads it; so may click, which then says what it means
        (["sources", "list"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_only_sync_command_lines_start_early(argv: list[str], ids: tuple[int, ...] | None) -> None:
    assert head_start.sync_source_ids(argv) == ids


# ---------------------------------------------------------------- in one process
@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment of a user on the default database (SQLite in the data dir)."""
    for name in ("VPACK_DATABASE_URL", "VPACK_SECRET_KEY", "VPACK_PREVIOUS_SECRET_KEYS"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "data"
    monkeypatch.setenv("VPACK_DATA_DIR", str(folder))
    return folder


@pytest.fixture
async def default_services(data_dir: Path) -> AsyncIterator[Services]:
    settings = Settings()
    assert settings.default_database_file == data_dir / "vpack.db"
    async with running(settings) as built:
        yield built


@pytest.fixture(autouse=True)
def nothing_started() -> Iterator[None]:
    head_start._started.clear()
    yield
    head_start._started.clear()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


async def _clips(s3: S3Harness, count: int) -> list[str]:
    keys = [f"{s3.prefix}Cam1/clip-{i:04d}.mp4" for i in range(count)]
    await asyncio.to_thread(put_many, s3.client, s3.bucket, keys, b"x")
    return keys


def _begin(*argv: str) -> None:
    """`begin` as launch.run calls it; its thread starts at once."""
    head_start.begin(argv)


async def test_the_first_source_is_listed_before_the_engine_and_the_scan_takes_it(
    default_services: Services, s3: S3Harness
) -> None:
    keys = await _clips(s3, 2100)
    source_id = await s3.add_source(default_services)
    s3.proxy.reset_counts()
    _begin("sync")
    (connection_id,) = head_start._started
    early = head_start._started[connection_id][1]
    assert isinstance(early, S3Provider)
    # With no engine, no session, no scan: the listing is under way on its own.
    await _until(lambda: s3.proxy.counts["ListObjectsV2"] >= 1)

    report = await default_services.engine.sync()
    assert report.ok and report.total("new") == report.total("downloaded") == len(keys)
    assert default_services.engine._providers[connection_id] is early, "the engine took it"
    assert s3.proxy.counts["ListObjectsV2"] == 3, "each of the 3 pages asked for once"
    assert head_start._started == {}
    again = await default_services.engine.sync([source_id])
    assert again.ok and again.total("new") == 0


async def test_the_source_named_on_the_command_line_is_the_one_started(
    default_services: Services, s3: S3Harness, tmp_path: Path
) -> None:
    await _clips(s3, 3)
    first = await s3.add_source(default_services)
    (tmp_path / "local" / "cam").mkdir(parents=True)
    local = await catalog.add_source(
        default_services.db,
        default_services.connections,
        connection_id=await catalog.local_connection(default_services.db),
        name="L",
        selections=[str(tmp_path / "local")],
        options={"settle_seconds": 0},
        interval_s=60,
    )
    assert local > first
    _begin("sync", str(local))
    assert head_start._started == {}, "a local folder has nothing to send early"
    _begin("sync", "999")
    assert head_start._started == {}, "no such source"
    _begin("-v", "sync", str(local), str(first), "--json")
    assert len(head_start._started) == 1, "the S3 source, first in id order"


async def test_a_connection_changed_since_is_built_again(
    default_services: Services, s3: S3Harness
) -> None:
    await _clips(s3, 3)
    await s3.add_source(default_services)
    _begin("sync")
    ((connection_id, (config, early)),) = head_start._started.items()
    assert head_start.adopt(connection_id, {**config, "bucket": "another"}) is None
    assert head_start.adopt(connection_id, config) is None, "handed out once, if at all"
    await early.aclose()


async def test_nothing_starts_unless_the_database_is_read_as_the_data_layer_wrote_it(
    default_services: Services,
    s3: S3Harness,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _clips(s3, 3)
    source_id = await s3.add_source(default_services)
    database = data_dir / "vpack.db"
    s3.proxy.reset_counts()

    monkeypatch.setenv("VPACK_DATABASE_URL", f"sqlite:///{database}")
    _begin("sync")
    assert head_start._started == {}, "only the default database is read early"
    monkeypatch.delenv("VPACK_DATABASE_URL")

    monkeypatch.setenv("VPACK_SECRET_KEY", "A" * 43 + "=")  # not the key the secret is under
    _begin("sync")
    assert head_start._started == {}, "a secret it cannot decrypt: the command reports it"
    monkeypatch.delenv("VPACK_SECRET_KEY")

    monkeypatch.setenv("VPACK_CONCURRENCY", "lots")
    _begin("sync")
    assert head_start._started == {}, "bad settings: the command reports them"
    monkeypatch.delenv("VPACK_CONCURRENCY")

    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = '0001'")
    _begin("sync")
    assert head_start._started == {}, "a schema this code was not written for"
    with sqlite3.connect(database) as db:
        db.execute("DROP TABLE alembic_version")
    _begin("sync")
    assert head_start._started == {}
    database.rename(data_dir / "moved.db")
    _begin("sync")
    assert head_start._started == {}, "no database yet"
    assert s3.proxy.counts["ListObjectsV2"] == 0
    assert source_id


# ---------------------------------------------------------------- through the command
@pytest.mark.slow
async def test_the_vpack_command_lists_once_and_copies_everything(
    default_services: Services, s3: S3Harness, data_dir: Path
) -> None:
    keys = await _clips(s3, 1500)
    await s3.add_source(default_services)
    s3.proxy.reset_counts()
    env = dict(os.environ)  # the data dir's, from the fixture
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _LAUNCH, "-v", "sync", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["downloaded"] == len(keys)
    assert "began while the program loaded" in done.stderr, "the early listing was taken"
    assert s3.proxy.counts["ListObjectsV2"] == 2, "each page once"
