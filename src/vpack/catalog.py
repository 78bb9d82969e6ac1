"""Adding, listing and removing sources and their connections (shared by CLI and API)."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from vpack.connections import ConnectionManager
from vpack.db.models import Connection, Source, Video, VideoState
from vpack.db.session import Database
from vpack.providers.errors import BadConfig
from vpack.providers.local.provider import LocalProvider
from vpack.providers.registry import source_options
from vpack.store import VideoStore
from vpack.sync.filters import SourceFilters

LOCAL_CONNECTION_NAME = "Local folders"


@dataclass(frozen=True)
class SourceSummary:
    id: int
    name: str
    provider: str
    selections: list[str]
    interval_s: int
    status: str
    last_error: str | None
    last_scan_at: str | None
    counts: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


async def local_connection(db: Database) -> int:
    """The operator's local-folder connection (created on first use)."""
    async with db.transaction() as session:
        existing = (
            await session.execute(
                select(Connection.id)
                .where(Connection.provider == "local", Connection.owner_id.is_(None))
                .order_by(Connection.id)
                .limit(1)
            )
        ).scalar_one_or_none()
        if existing is not None:
            return existing
        connection = Connection(provider="local", name=LOCAL_CONNECTION_NAME, config={})
        session.add(connection)
        await session.flush()
        return connection.id


def refuse_store_overlap(folder: Path, data_dir: Path) -> None:
    """A source inside the data dir, or holding it, would copy its own copies forever."""
    folder, data_dir = folder.resolve(), data_dir.resolve()
    if folder == data_dir or data_dir in folder.parents:
        raise BadConfig(f"{folder} is inside VPACK's data folder {data_dir}; pick another folder")
    if folder in data_dir.parents:
        raise BadConfig(
            f"{folder} contains VPACK's data folder {data_dir}; pick a folder beside it, "
            "or move the data folder (VPACK_DATA_DIR)"
        )


async def validate_selections(
    connections: ConnectionManager, connection: Connection, selections: list[str]
) -> dict[str, str]:
    """BadConfig unless every selection can be synced: asked of the provider, and for
    folders on this machine, never one holding or inside VPACK's own data folder.
    Returns each selection's display name, as the provider gives it."""
    provider = connections.build(connection)
    names: dict[str, str] = {}
    try:
        for selection in selections:
            names[selection] = await provider.validate_selection(selection)
    finally:
        await provider.aclose()
    if connection.provider == LocalProvider.name:
        for selection in selections:
            refuse_store_overlap(Path(selection), connections.settings.data_dir)
    return names


async def add_source(
    db: Database,
    connections: ConnectionManager,
    *,
    connection_id: int,
    name: str,
    selections: list[str],
    options: dict[str, Any],
    interval_s: int,
    cameras: dict[str, str] | None = None,
    owner_id: int | None = None,
    filters: dict[str, Any] | None = None,
    keep_days: int | None = None,
) -> int:
    """Validate with the provider, then store the source. Returns its id."""
    name = name.strip()
    if not name:
        raise BadConfig("a source needs a name")
    if not selections:
        raise BadConfig("pick at least one folder or channel")
    if interval_s < 10:
        raise BadConfig("the sync interval must be at least 10 seconds")
    if keep_days is not None and keep_days < 0:
        raise BadConfig("copies can be kept 0 days or more (none: for ever)")
    async with db.session() as session:
        connection = await session.get(Connection, connection_id)
        if connection is None:
            raise BadConfig(f"no connection with id {connection_id}")
    validated = source_options(connection.provider, options).model_dump(mode="json")
    kept = SourceFilters.stored(filters)
    selection_names = await validate_selections(connections, connection, selections)
    async with db.transaction() as session:
        source = Source(
            owner_id=owner_id,
            connection_id=connection_id,
            name=name,
            selections=selections,
            selection_names=selection_names,
            options=validated,
            interval_s=interval_s,
            cameras=cameras or {},
            filters=kept.model_dump(mode="json", exclude_defaults=True),
            keep_days=keep_days,
        )
        session.add(source)
        await session.flush()
        return source.id


async def list_sources(db: Database) -> list[SourceSummary]:
    async with db.session() as session:
        sources = (
            await session.execute(
                select(Source).options(selectinload(Source.connection)).order_by(Source.id)
            )
        ).scalars()
        counts: dict[int, dict[str, int]] = {}
        for source_id, state, n in await session.execute(
            select(Video.source_id, Video.state, func.count(Video.id)).group_by(
                Video.source_id, Video.state
            )
        ):
            counts.setdefault(source_id, {})[state] = n
        return [
            SourceSummary(
                id=s.id,
                name=s.name,
                provider=s.connection.provider,
                selections=list(s.selections),
                interval_s=s.interval_s,
                status=s.status,
                last_error=s.last_error,
                last_scan_at=s.last_scan_at.isoformat() if s.last_scan_at else None,
                counts={
                    state.value: counts.get(s.id, {}).get(state.value, 0) for state in VideoState
                },
            )
            for s in sources
        ]


async def remove_source(db: Database, store: VideoStore, source_id: int, purge: bool) -> int:
    """Forget a source and its video rows; its files stay unless `purge`. Returns files purged."""
    async with db.transaction() as session:
        source = await session.get(Source, source_id)
        if source is None:
            raise LookupError(f"no source with id {source_id}")
        ids = list(
            (await session.execute(select(Video.id).where(Video.source_id == source_id))).scalars()
        )
        await session.delete(source)
    for video_id in ids:
        store.discard(video_id)  # unfinished .part files are ours, never the user's
    if not purge:
        return 0
    return await asyncio.to_thread(_purge_folder, store.videos_dir / str(source_id))


def _purge_folder(folder: Path) -> int:
    if not folder.exists():
        return 0
    count = sum(len(files) for _, _, files in os.walk(folder))
    shutil.rmtree(folder)
    return count
