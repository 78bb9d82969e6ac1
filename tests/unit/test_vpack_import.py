"""Switching from VPACK: real VPACK databases in, then a sync that downloads nothing twice."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.providers.google_drive.harness import GoogleDriveHarness
from tests.vpack_db import VpackDb
from vpack.cli.commands import main
from vpack.db.models import AuditEvent, Connection, ConnectionStatus, Source, Video, VideoState
from vpack.services import Services
from vpack.vpack_import import (
    ADOPTABLE_REVISION,
    ImportOptions,
    VpackDatabaseError,
    import_vpack,
)


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (time.time() - 3600,) * 2)  # settled: a local scan takes it
    return path


@pytest.fixture
async def drive(tmp_path: Path) -> AsyncIterator[GoogleDriveHarness]:
    harness = GoogleDriveHarness(tmp_path)
    try:
        yield harness
    finally:
        await harness.aclose()


def _downloads(harness: GoogleDriveHarness) -> int:
    return sum(1 for r in harness.drive.requests if r.query.get("alt") == "media")


async def _sign_in_again(services: Services, harness: GoogleDriveHarness, connection: int) -> None:
    """What "sign in again" does: the OAuth callback's reconnect onto the imported row."""
    await services.connections.connect_oauth(
        provider="google_drive",
        owner_id=None,  # type: ignore[arg-type]
        tokens=harness.tokens,
        name=None,
        reconnect_id=connection,
    )


def _drive_history(
    harness: GoogleDriveHarness, vpack: VpackDb, staging: Path, count: int
) -> tuple[int, str, list[dict[str, Any]]]:
    """`count` files on Drive, each downloaded by VPACK into its staging folder."""
    folder = harness.drive.add_folder("Cam1", harness.area)
    source = vpack.add_drive_source([(folder, "Cam1")], interval=15, email=harness.drive.email)
    rows = []
    for i in range(count):
        data = f"packing video {i:05d} ".encode() * 20
        name = f"cam1-{i:05d}.mp4"
        file_id = harness.drive.add_file(name, folder, data)
        local = _write(staging / "Cam1" / name, data)
        rows.append(
            {
                "source_id": source,
                "camera": "Cam1",
                "name": name,
                "path": str(local),
                "size": len(data),
                "drive_id": file_id,
            }
        )
    vpack.add_downloads(rows)
    return source, folder, rows


async def _counts(services: Services) -> dict[str, Any]:
    async with services.db.session() as session:
        videos = (
            await session.execute(
                select(Video.source_id, Video.remote_id, Video.revision, Video.state).order_by(
                    Video.id
                )
            )
        ).all()
        return {
            "connections": (await session.execute(select(Connection.id, Connection.status))).all(),
            "sources": (
                await session.execute(select(Source.id, Source.selections, Source.interval_s))
            ).all(),
            "videos": videos,
        }


async def test_a_history_of_1000_drive_downloads_syncs_with_no_download(
    services: Services, drive: GoogleDriveHarness, tmp_path: Path
) -> None:
    vpack = VpackDb(tmp_path / "events.db")
    _, folder, rows = _drive_history(drive, vpack, tmp_path / "vpack" / "CloudStorage_shop", 1000)

    report = await import_vpack(services.db, vpack.path, ImportOptions())

    assert report.counts == {"imported": 1000}
    (imported,) = [s for s in report.sources if s.outcome == "imported"]
    assert imported.kind == "google_drive" and imported.sign_in_again
    assert imported.interval_s == 15 * 60 and imported.selections == [folder]
    async with services.db.session() as session:
        connection = await session.get(Connection, imported.connection_id)
        assert connection is not None
        assert connection.status == ConnectionStatus.REAUTH_REQUIRED
        assert connection.secrets is None  # VPACK's tokens are VPACK's
        video = (await session.execute(select(Video).limit(1))).scalar_one()
        assert video.state == VideoState.DONE and video.local_path == rows[0]["path"]
        assert video.camera == "Cam1" and video.sha256 and video.remote_id == rows[0]["drive_id"]

    await _sign_in_again(services, drive, imported.connection_id or 0)
    drive.drive.reset_counts()
    sync = await services.engine.sync()

    assert _downloads(drive) == 0
    (tally,) = sync.sources
    assert (tally.new, tally.downloaded, tally.error) == (0, 0, None)


async def test_drive_files_vpack_lost_or_rewrote_are_not_downloaded_again(
    services: Services, drive: GoogleDriveHarness, tmp_path: Path
) -> None:
    vpack = VpackDb(tmp_path / "events.db")
    _, _, rows = _drive_history(drive, vpack, tmp_path / "vpack", 3)
    Path(rows[0]["path"]).unlink()  # gone
    Path(rows[1]["path"]).write_bytes(b"remuxed by ffmpeg")  # VPACK's rotate=0 rewrite

    report = await import_vpack(services.db, vpack.path, ImportOptions())
    assert report.counts == {"altered": 1, "imported": 1, "missing": 1}
    await _sign_in_again(services, drive, report.sources[-1].connection_id or 0)
    drive.drive.reset_counts()
    await services.engine.sync()

    assert _downloads(drive) == 0


async def test_lost_drive_copies_are_downloaded_when_asked(
    services: Services, drive: GoogleDriveHarness, tmp_path: Path
) -> None:
    vpack = VpackDb(tmp_path / "events.db")
    _, _, rows = _drive_history(drive, vpack, tmp_path / "vpack", 3)
    Path(rows[0]["path"]).unlink()

    report = await import_vpack(services.db, vpack.path, ImportOptions(redownload_missing=True))
    assert report.counts == {"imported": 2, "redownload": 1}
    await _sign_in_again(services, drive, report.sources[-1].connection_id or 0)
    drive.drive.reset_counts()
    sync = await services.engine.sync()

    assert _downloads(drive) == 1 and sync.sources[0].downloaded == 1


async def test_lost_drive_copies_are_reported_and_recorded(
    services: Services, drive: GoogleDriveHarness, tmp_path: Path
) -> None:
    vpack = VpackDb(tmp_path / "events.db")
    _, _, rows = _drive_history(drive, vpack, tmp_path / "vpack", 2)
    Path(rows[0]["path"]).unlink()

    report = await import_vpack(services.db, vpack.path, ImportOptions())

    (lost,) = report.as_dict()["not_imported"]
    assert lost["outcome"] == "missing" and lost["path"] == rows[0]["path"]
    async with services.db.session() as session:
        row = (
            await session.execute(select(Video).where(Video.remote_id == rows[0]["drive_id"]))
        ).scalar_one()
    assert (row.state, row.revision, row.local_path) == (
        VideoState.SKIPPED,
        ADOPTABLE_REVISION,
        None,
    )


async def test_local_sources_are_imported_and_sync_copies_nothing_vpack_had(
    services: Services, tmp_path: Path
) -> None:
    shop = tmp_path / "allowed" / "shop"
    had = [_write(shop / "Cam1" / f"{i}.mp4", b"x" * (100 + i)) for i in range(5)]
    new = _write(shop / "Cam2" / "new.mp4", b"new recording")
    outside = tmp_path / "elsewhere"
    _write(outside / "Cam9" / "a.mp4", b"y")
    vpack = VpackDb(tmp_path / "events.db")
    source = vpack.add_local_source(shop, interval=5)
    vpack.add_local_source(outside)
    vpack.add_local_source(tmp_path / "allowed", active=False)
    vpack.add_downloads(
        [
            {
                "source_id": source,
                "camera": "Cam1",
                "name": p.name,
                "path": str(p),
                "size": len(p.read_bytes()),
            }
            for p in had
        ]
        + [
            {
                "source_id": source,
                "camera": "Cam1",
                "name": "gone.mp4",
                "path": str(shop / "Cam1" / "gone.mp4"),
                "size": 9,
            }
        ]
    )
    options = ImportOptions(
        allowed_roots=[str(tmp_path / "allowed")], data_dir=services.settings.data_dir
    )

    report = await import_vpack(services.db, vpack.path, options)

    assert report.counts == {"imported": 5, "missing": 1}
    by_path = {s.selections[0] if s.selections else s.vpack_name: s for s in report.sources}
    assert by_path[str(shop)].outcome == "imported" and by_path[str(shop)].interval_s == 300
    skipped = {s.vpack_name: s.reason for s in report.sources if s.outcome == "skipped"}
    assert "outside the folders this server allows" in skipped["LocalStorage_elsewhere"]
    assert skipped["LocalStorage_allowed"] == "not active in VPACK"

    sync = await services.engine.sync()

    tally = next(t for t in sync.sources if t.source_id == by_path[str(shop)].source_id)
    assert (tally.new, tally.downloaded, tally.error) == (1, 1, None)  # only new.mp4
    async with services.db.session() as session:
        done = dict((await session.execute(select(Video.name, Video.local_path))).all())
    assert done["0.mp4"] == str(had[0])  # VPACK's file itself: no second copy
    assert done["new.mp4"] != str(new)


async def test_importing_twice_changes_nothing(
    services: Services, drive: GoogleDriveHarness, tmp_path: Path
) -> None:
    vpack = VpackDb(tmp_path / "events.db")
    _, _, rows = _drive_history(drive, vpack, tmp_path / "vpack", 5)
    Path(rows[4]["path"]).unlink()
    shop = tmp_path / "shop"
    clip = _write(shop / "Cam1" / "a.mp4", b"abc")
    local = vpack.add_local_source(shop)
    vpack.add_downloads(
        [{"source_id": local, "camera": "Cam1", "name": "a.mp4", "path": str(clip), "size": 3}]
    )

    first = await import_vpack(services.db, vpack.path, ImportOptions())
    before = await _counts(services)
    second = await import_vpack(services.db, vpack.path, ImportOptions())

    assert first.counts == {"imported": 5, "missing": 1}
    assert second.counts == {"already imported": 6}
    assert [s.outcome for s in second.sources if s.source_id] == ["already imported"] * 2
    assert await _counts(services) == before
    async with services.db.session() as session:
        audits = (
            await session.execute(select(func.count()).where(AuditEvent.action == "vpack_imported"))
        ).scalar_one()
    assert audits == 2


async def test_a_dry_run_changes_nothing_and_says_what_would_happen(
    services: Services, drive: GoogleDriveHarness, tmp_path: Path
) -> None:
    vpack = VpackDb(tmp_path / "events.db")
    _drive_history(drive, vpack, tmp_path / "vpack", 4)
    before = await _counts(services)

    report = await import_vpack(services.db, vpack.path, ImportOptions(dry_run=True))

    assert report.counts == {"imported": 4} and report.dry_run
    assert "dry run: nothing changed" in report.lines()[0]
    assert await _counts(services) == before


def _not_sqlite(path: Path) -> None:
    path.write_text("this is a CSV export, not a database\n" * 100)


def _empty_sqlite(path: Path) -> None:
    sqlite3.connect(path).close()


def _no_history(path: Path) -> None:
    VpackDb(path).execute("DROP TABLE downloaded_files")


def _wrong_columns(path: Path) -> None:
    db = VpackDb(path)
    db.execute("DROP TABLE downloaded_files")
    db.execute("CREATE TABLE downloaded_files (id INTEGER, source_id INTEGER, name TEXT)")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_not_sqlite, "is not a SQLite database"),
        (_empty_sqlite, "is not a VPACK database: it has no camera_configurations"),
        (_no_history, "has no downloaded_files table"),
        (_wrong_columns, "downloaded_files has no column camera_name"),
        (None, "no such file"),
    ],
)
async def test_a_bad_or_foreign_database_is_refused_and_changes_nothing(
    services: Services, tmp_path: Path, make: Any, message: str
) -> None:
    path = tmp_path / "events.db"
    if make is not None:
        make(path)
    before = await _counts(services)

    with pytest.raises(VpackDatabaseError, match=message):
        await import_vpack(services.db, path, ImportOptions())

    assert await _counts(services) == before


def test_the_command_reports_in_text_and_json(cli_env: dict[str, str], tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    clip = _write(shop / "Cam1" / "a.mp4", b"abc")
    vpack = VpackDb(tmp_path / "events.db")
    source = vpack.add_local_source(shop)
    vpack.add_downloads(
        [
            {"source_id": source, "camera": "Cam1", "name": "a.mp4", "path": str(clip), "size": 3},
            {
                "source_id": source,
                "camera": "Cam1",
                "name": "b.mp4",
                "path": str(shop / "b.mp4"),
                "size": 3,
            },
        ]
    )
    runner = CliRunner()

    dry = runner.invoke(main, ["import", "vpack", str(vpack.path), "--dry-run"], env=cli_env)
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing changed" in dry.output and "1 imported, 1 missing" in dry.output
    done = runner.invoke(main, ["import", "vpack", str(vpack.path), "--json"], env=cli_env)
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["videos"] == {"imported": 1, "missing": 1}
    assert body["not_imported"][0]["outcome"] == "missing"

    (tmp_path / "bad.db").write_text("nope")
    bad = runner.invoke(main, ["import", "vpack", str(tmp_path / "bad.db")], env=cli_env)
    assert bad.exit_code == 1 and "nothing was changed" in bad.output
    nobody = runner.invoke(
        main, ["import", "vpack", str(vpack.path), "--owner", "who@shop.vn"], env=cli_env
    )
    assert nobody.exit_code == 1 and "no user who@shop.vn" in nobody.output
