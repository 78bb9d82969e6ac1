"""`vpack sync`'s first requests, sent while the rest of the program loads.

Importing what a sync needs (SQLAlchemy, pydantic, the models, the engine) takes some
0.35 s, and the store sat idle all that time: of a sync of 5,000 small objects from
S3, that was the whole difference to rclone, which starts in 0.07 s
(docs/benchmarks.md). So before those imports `launch.run` calls `begin`, which finds
the source the sync scans first, builds its provider and lets it send the scan's
first requests from a thread (Provider.start_scan_early). When the engine then needs
a provider for that connection, `adopt` hands it this one, if the connection's
settings are still the ones it was built with.

It reads the database with Python's sqlite3, since the data layer is what it runs
ahead of: only the default SQLite file, only at the schema revision this code was
written for (SCHEMA_HEAD; a test reads through it what the data layer wrote), only
two tables, read-only. Where any of that does not hold, or anything fails, it does
nothing, and the command does all the work as before and reports any error itself.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpack.db import SCHEMA_HEAD

if TYPE_CHECKING:
    from vpack.providers.base import Provider

log = logging.getLogger(__name__)

# connection id -> (the decrypted config it was built with, the provider)
_started: dict[int, tuple[dict[str, Any], Provider]] = {}

# The source `vpack sync` scans first: the engine takes sources in id order.
_FIRST_SOURCE = """
SELECT c.id, c.provider, c.config, c.secrets, s.selections
FROM sources AS s JOIN connections AS c ON c.id = s.connection_id
{where} ORDER BY s.id LIMIT 1
"""


def sync_source_ids(argv: Sequence[str]) -> tuple[int, ...] | None:
    """The ids a `vpack [-v] sync [--json] [ID...]` command line names (empty: every
    source); None for any other command line."""
    args = list(argv)
    while args and args[0] in ("-v", "--verbose"):
        args.pop(0)
    if not args or args[0] != "sync":
        return None
    ids = []
    for arg in args[1:]:
        if arg == "--json":
            continue
        if not arg.isascii() or not arg.isdigit():
            return None  # --help, a typo, other digits: for the command to answer
        ids.append(int(arg))
    return tuple(ids)


def begin(argv: Sequence[str]) -> None:
    """For a `vpack sync` command line, start the first scan's requests (see above)."""
    source_ids = sync_source_ids(argv)
    if source_ids is None:
        return
    try:
        _start(source_ids)
    except Exception:  # the command meets it again and reports it
        _started.clear()


def adopt(connection_id: int, config: dict[str, Any]) -> Provider | None:
    """The provider `begin` built for this connection, if it was built with `config`
    (decrypted); each is handed out once."""
    started = _started.pop(connection_id, None)
    if started is None or started[0] != config:
        return None  # changed meanwhile: a listing nobody takes soon ends by itself
    log.info("connection %d: its scan began while the program loaded", connection_id)
    return started[1]


def _start(source_ids: tuple[int, ...]) -> None:
    from vpack.settings import Settings

    settings = Settings()
    path = settings.default_database_file
    if path is None or not path.is_file():
        return
    row = _first_source(path, source_ids)
    if row is None:
        return
    connection_id, provider_name, config_text, secrets, selections_text = row
    selections = json.loads(selections_text)
    if not selections:
        return

    from vpack.providers.base import AuthKind, Provider
    from vpack.providers.registry import build_provider, get_provider_class

    cls = get_provider_class(provider_name)
    # OAuth accounts need the data layer to keep refreshed tokens.
    if cls.auth == AuthKind.OAUTH2 or cls.start_scan_early is Provider.start_scan_early:
        return
    config: dict[str, Any] = json.loads(config_text)
    if secrets:
        from vpack.security.vault import Vault

        config.update(Vault.from_settings(settings).decrypt(connection_id, secrets))
    provider = build_provider(provider_name, config)
    provider.start_scan_early(selections[0])
    _started[connection_id] = (config, provider)


def _first_source(path: Path, source_ids: tuple[int, ...]) -> tuple[Any, ...] | None:
    """(connection id, provider, config, secrets, selections) of the source a sync of
    `source_ids` (empty: all) scans first, if the schema is the one this reads."""
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        version = db.execute("SELECT version_num FROM alembic_version").fetchone()
        if version is None or version[0] != SCHEMA_HEAD:
            return None
        where = f"WHERE s.id IN ({', '.join('?' * len(source_ids))})" if source_ids else ""
        row: tuple[Any, ...] | None = db.execute(
            _FIRST_SOURCE.format(where=where), source_ids
        ).fetchone()
        return row
    finally:
        db.close()
