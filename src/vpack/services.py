"""Wiring: settings -> database, store and engine, shared by the CLI and the service."""

from __future__ import annotations

from dataclasses import dataclass

from vpack.connections import ConnectionManager
from vpack.db.session import Database, migrate
from vpack.handoff.deliverer import Deliverer
from vpack.retention import Retention
from vpack.security.vault import ensure_key_file
from vpack.settings import Settings
from vpack.store import VideoStore
from vpack.sync.engine import SyncEngine


@dataclass
class Services:
    settings: Settings
    db: Database
    store: VideoStore
    engine: SyncEngine
    connections: ConnectionManager
    deliverer: Deliverer
    retention: Retention

    async def aclose(self) -> None:
        await self.engine.aclose()
        await self.db.dispose()


def prepare(settings: Settings) -> None:
    """Data dir and schema, idempotent: what `vpack init` does and start-up repeats."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    ensure_key_file(settings)
    settings.videos_dir.mkdir(parents=True, exist_ok=True)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.sqlalchemy_url)


def build(settings: Settings) -> Services:
    db = Database(settings.sqlalchemy_url)
    store = VideoStore(
        settings.videos_dir, settings.staging_dir, fsync=settings.fsync, zone=settings.zone
    )
    connections = ConnectionManager(db, settings)
    engine = SyncEngine(db, store, settings, connections)
    deliverer = Deliverer(db, store, settings, lambda: connections.vault, engine.worker_id)
    retention = Retention(db, store, settings, lambda: connections.vault)
    return Services(settings, db, store, engine, connections, deliverer, retention)
