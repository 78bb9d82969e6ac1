"""Retention deletes only copies past their days that every sink (and VPACK) is done with."""

from __future__ import annotations

import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from tests.api.test_sinks import VPACK_FILE_LIST
from vpack import catalog
from vpack.db.models import AuditEvent, Sink, SinkStatus, Source, Video, utcnow
from vpack.services import Services
from vpack.settings import Settings


async def _synced_source(
    services: Services, folder: Path, names: list[str], keep: int | None
) -> int:
    for name in names:
        path = folder / "Cam1" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1500))
        os.utime(path, (time.time() - 3600,) * 2)
    connection = await catalog.local_connection(services.db)
    source_id = await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection,
        name="shop",
        selections=[str(folder)],
        options={"settle_seconds": 0},
        interval_s=60,
        keep_days=keep,
    )
    report = await services.engine.sync([source_id])
    assert report.total("downloaded") == len(names)
    return source_id


async def _age(services: Services, names: list[str], days: float) -> None:
    async with services.db.transaction() as session:
        await session.execute(
            update(Video)
            .where(Video.name.in_(names))
            .values(downloaded_at=utcnow() - timedelta(days=days))
        )


async def _videos(services: Services) -> dict[str, Video]:
    async with services.db.session() as session:
        return {v.name: v for v in (await session.execute(select(Video))).scalars()}


async def test_copies_older_than_the_sources_days_go_and_the_rows_stay(
    services: Services, tmp_path: Path
) -> None:
    await _synced_source(services, tmp_path / "cams", ["old-1.mp4", "old-2.mp4", "new.mp4"], 2)
    await _age(services, ["old-1.mp4", "old-2.mp4"], 3)
    assert await services.retention.prune() == 2
    videos = await _videos(services)
    for name in ("old-1.mp4", "old-2.mp4"):
        assert videos[name].removed_local_at is not None
        assert not services.store.absolute(videos[name].local_path or "").exists()
    assert videos["new.mp4"].removed_local_at is None
    assert services.store.absolute(videos["new.mp4"].local_path or "").is_file()
    assert (tmp_path / "cams" / "Cam1" / "old-1.mp4").is_file(), "the original is never touched"
    async with services.db.session() as session:
        audited = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "copy_deleted"))
        ).scalars()
        assert sorted(int(e.target_id or 0) for e in audited) == sorted(
            videos[n].id for n in ("old-1.mp4", "old-2.mp4")
        )
    assert await services.retention.prune() == 0, "nothing twice"


async def test_a_copy_stays_until_every_sink_has_it_and_vpack_processed_it(
    services: Services, tmp_path: Path, settings: Settings
) -> None:
    source_id = await _synced_source(services, tmp_path / "cams", ["a.mp4"], 0)
    database = tmp_path / "events.db"
    with sqlite3.connect(database) as db:
        db.execute(VPACK_FILE_LIST)
    roots = settings.model_copy(update={"local_roots": str(tmp_path)})
    services.deliverer.settings = roots
    services.retention.settings = roots
    async with services.db.transaction() as session:
        session.add(
            Sink(
                source_id=source_id,
                kind="vpack_queue",
                name="queue",
                config={"database": str(database)},
                after_seq=0,
                status=SinkStatus.OK,
                failures=0,
                delivered=0,
            )
        )
    await _age(services, ["a.mp4"], 1)
    assert await services.retention.prune() == 0, "not yet handed on"
    assert await services.deliverer.deliver_due() == 1
    assert await services.retention.prune() == 0, "queued, but VPACK still reads our copy"
    with sqlite3.connect(database) as db:
        db.execute("UPDATE file_list SET is_processed = 1, status = 'completed'")
    assert await services.retention.prune() == 1
    assert (await _videos(services))["a.mp4"].removed_local_at is not None


async def test_no_days_set_keeps_everything_and_files_outside_ours_are_never_deleted(
    services: Services, tmp_path: Path
) -> None:
    source_id = await _synced_source(services, tmp_path / "cams", ["a.mp4", "b.mp4"], None)
    await _age(services, ["a.mp4", "b.mp4"], 400)
    assert await services.retention.prune() == 0
    theirs = tmp_path / "vpack-copy.mp4"  # a row imported from VPACK points at VPACK's file
    theirs.write_bytes(b"vpack's")
    async with services.db.transaction() as session:
        await session.execute(update(Source).where(Source.id == source_id).values(keep_days=1))
        await session.execute(
            update(Video).where(Video.name == "b.mp4").values(local_path=str(theirs))
        )
    assert await services.retention.prune() == 1
    assert theirs.read_bytes() == b"vpack's"
    assert (await _videos(services))["b.mp4"].removed_local_at is None
