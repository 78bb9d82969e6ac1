"""Shared fixtures: a database on SQLite (always) and PostgreSQL (when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from vpack.services import Services, build, prepare
from vpack.settings import Settings

PG_URL = os.environ.get("VPACK_TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


def _pg_schema_url(schema: str) -> str:
    assert PG_URL is not None
    url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    # Named after its schema, so the teardown can find every connection a test left open.
    query = {"options": f"-csearch_path={schema}", "application_name": schema}
    return url.update_query_dict(query).render_as_string(hide_password=False)


def _drop_schema(admin: Engine, schema: str) -> None:
    """Drop a test's schema; a connection it left open (a killed worker's, a leak) cannot
    hold the drop, and so the suite, waiting on its locks."""
    with admin.begin() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = :schema AND pid <> pg_backend_pid()"
            ),
            {"schema": schema},
        )
        conn.execute(text("SET LOCAL lock_timeout = '30s'"))
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'vpack.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        _drop_schema(admin, schema)
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        concurrency=3,
        lease_seconds=60,
        retry_base_seconds=0.05,
        retry_cap_seconds=0.2,
        max_attempts=3,
        scheduler_tick_seconds=0.2,
        min_free="0",  # CI disks can be small; the guard's own tests set a floor
    )


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Services]:
    """The services on `settings`, the schema prepared; closed on leaving."""
    prepare(settings)
    built = build(settings)
    try:
        yield built
    finally:
        await built.aclose()


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with running(settings) as built:
        yield built


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running `vpack` against the test's data dir and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPACK_")}
    env.update(
        VPACK_DATA_DIR=str(settings.data_dir),
        VPACK_DATABASE_URL=settings.sqlalchemy_url,
        VPACK_RETRY_BASE_SECONDS="0.05",
        VPACK_RETRY_CAP_SECONDS="0.2",
        VPACK_MAX_ATTEMPTS="3",
        VPACK_MIN_FREE="0",
        # The Makefile exports VPACK_LOCAL_ROOTS for `make run`; CliRunner would keep
        # the outer one (its env only adds), so the default (none) is said outright.
        VPACK_LOCAL_ROOTS="",
    )
    return env
