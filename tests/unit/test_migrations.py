"""Upgrading a database that already holds data loses none of it."""

from __future__ import annotations

import json

from sqlalchemy import text

from vpack.db.session import make_sync_engine, migrate


def test_upgrade_keeps_sources_and_videos(database_url: str) -> None:
    migrate(database_url, "0001")
    engine = make_sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO connections (id, provider, name, config, status, created_at,"
                " updated_at)"
                " VALUES (1, 'local', 'Local folders', '{}', 'ok', '2025-01-01', '2025-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO sources (id, connection_id, name, selections, cameras, options,"
                " filters,"
                " interval_s, cursors, status, created_at, updated_at) VALUES (1, 1, 'shop', '[]',"
                " '{}', '{}', '{}', 60, '{}', 'idle', '2025-01-01', '2025-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO videos (source_id, selection, remote_id, revision, camera, name,"
                " remote_path, extra, state, attempts, bytes_done, created_at, updated_at)"
                " VALUES (1, '/x', 'a.mp4', '1-1', 'cam', 'a.mp4', '', '{}', 'done', 0, 0,"
                " '2025-01-01', '2025-01-01')"
            )
        )
    migrate(database_url)
    migrate(database_url)  # again: nothing to do
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM sources")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM videos")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 0
        names = conn.execute(text("SELECT selection_names FROM sources")).scalar()
        # A video done before the feed existed joins it; the counter goes on from it.
        seq = conn.execute(text("SELECT published_seq FROM videos")).scalar()
        last = conn.execute(text("SELECT last_seq FROM feed_counter WHERE id = 1")).scalar()
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert version == "0007"
    assert names in ("{}", {})  # JSON text on SQLite, a dict on PostgreSQL
    assert (seq, last) == (1, 1)


def test_the_schema_head_named_in_code_is_alembics(database_url: str) -> None:
    """migrate() skips Alembic when the database is at SCHEMA_HEAD: it must be the head."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from vpack.db.session import MIGRATIONS, SCHEMA_HEAD

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_HEAD]
    migrate(database_url, "0002")
    migrate(database_url)  # not at the head: Alembic runs
    engine = make_sync_engine(database_url)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0007"
    engine.dispose()


def test_upgrade_repairs_values_no_answer_could_serve(database_url: str) -> None:
    """Stored by a version without the edge's checks: a lone surrogate and a NUL in JSON,
    a first day in year 1. After the upgrade they can be served and scanned."""
    migrate(database_url, "0003")
    engine = make_sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO connections (id, provider, name, config, status, created_at,"
                " updated_at) VALUES (1, 'local', 'Local', :config, 'ok', '2025-01-01',"
                " '2025-01-01')"
            ),
            {"config": '{"roots": ["/srv/cams\\u0000"]}'},
        )
        conn.execute(
            text(
                "INSERT INTO sources (id, connection_id, name, selections, selection_names,"
                " cameras, options, filters, interval_s, cursors, status, created_at,"
                " updated_at) VALUES (1, 1, 'shop', :selections, '{}', '{}', '{}', :filters,"
                " 60, '{}', 'idle', '2025-01-01', '2025-01-01')"
            ),
            {
                "selections": '["/srv/cams/Kho \\ud800", "/srv/cams/ok"]',
                "filters": '{"since": "0001-01-01", "min_size_mb": 2}',
            },
        )
    migrate(database_url)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT selections, filters FROM sources")).one()
        config = conn.execute(text("SELECT config FROM connections")).scalar()
    engine.dispose()
    selections, filters = (json.loads(v) if isinstance(v, str) else v for v in row)
    config = json.loads(config) if isinstance(config, str) else config
    assert selections == ["/srv/cams/Kho \ufffd", "/srv/cams/ok"]
    assert filters == {"min_size_mb": 2}, "the impossible first day is dropped, the rest kept"
    assert config == {"roots": ["/srv/cams\ufffd"]}
    json.dumps(selections).encode()  # servable: no lone surrogate left


def test_the_migrations_build_the_schema_the_models_describe(database_url: str) -> None:
    """A model changed without its migration (or the reverse) fails here, not in a user's
    upgrade."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from vpack.db.models import Base

    migrate(database_url)
    engine = make_sync_engine(database_url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert differences == []
