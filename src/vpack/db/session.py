"""Opening the database (SQLite or PostgreSQL), and applying migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from vpack.db import SCHEMA_HEAD

MIGRATIONS = Path(__file__).parent / "migrations"


# backend -> (sync driver for Alembic, asyncio driver for the service and engine);
# psycopg 3 is both.
_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "postgresql+psycopg"),
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
}


def _with_driver(url: str, asynchronous: bool) -> URL:
    parsed = make_url(url)
    drivers = _DRIVERS.get(parsed.get_backend_name())
    return parsed.set(drivername=drivers[asynchronous]) if drivers else parsed


def sync_url(url: str) -> URL:
    return _with_driver(url, asynchronous=False)


def async_url(url: str) -> URL:
    return _with_driver(url, asynchronous=True)


def _sqlite_pragmas(foreign_keys: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the API read while the worker writes; busy_timeout makes a
        # second process wait for the write lock instead of failing at once.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return on_connect


def _prepare_sqlite_file(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def make_sync_engine(url: str, *, foreign_keys: bool = True) -> Engine:
    parsed = sync_url(url)
    _prepare_sqlite_file(parsed)
    engine = create_engine(parsed)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(foreign_keys))
    return engine


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (default: the newest; idempotent).

    On SQLite, Alembic's batch mode rebuilds a table to alter it: with foreign
    keys enforced, dropping the old `connections` would cascade-delete every
    source. So migrations run with enforcement off.
    """
    engine = make_sync_engine(url, foreign_keys=False)
    try:
        if revision == "head" and _version(engine) == SCHEMA_HEAD:
            # Every command starts here: importing Alembic and reading its scripts
            # costs some 130 ms, to learn there is nothing to do.
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _version(engine: Engine) -> str | None:
    """The schema revision Alembic recorded, or None (a new database)."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # no such table yet: each driver says so its own way
            return None


class Database:
    """The async engine and a session factory for one database URL."""

    def __init__(self, url: str) -> None:
        parsed = async_url(url)
        _prepare_sqlite_file(parsed)
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(foreign_keys=True))
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
