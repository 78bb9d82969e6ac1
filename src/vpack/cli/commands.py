"""The `vpack` command: set up, add sources, sync, list videos, run the worker or service."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import select

from vpack import __version__, catalog
from vpack.connections import secret_fields
from vpack.db.models import Connection, Role, User, Video, VideoState
from vpack.providers.base import AuthKind, BrowsePage
from vpack.providers.errors import ProviderError
from vpack.providers.registry import get_provider_class
from vpack.security.vault import KeyFiles, RotationResult, VaultError, rotate_keys
from vpack.services import Services, build, prepare
from vpack.settings import Settings
from vpack.sync.executors import LocalExecutor, install_stop_signals
from vpack.sync.progress import ProgressSink

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the bad variable
        raise click.ClickException(f"bad VPACK_* setting: {exc}") from None


def _run(work: Callable[[Services], Awaitable[T]]) -> T:
    """Prepare the data dir and schema, then run `work` with the services."""
    settings = _settings()
    try:
        prepare(settings)
    except Exception as exc:
        raise click.ClickException(f"cannot open the database: {exc}") from None

    async def main() -> T:
        services = build(settings)
        try:
            return await work(services)
        finally:
            await services.aclose()

    if not gc.get_freeze_count():
        # What start-up made (modules, classes, the schema) lives as long as the
        # command: kept out of the collector's scans, which otherwise walk it all
        # again on every full collection (about 9% of a sync of small files).
        gc.freeze()
    try:
        return asyncio.run(main())
    except (ProviderError, LookupError) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from None


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@click.group()
@click.version_option(__version__, prog_name="vpack")
@click.option("-v", "--verbose", is_flag=True, help="Log what the engine does.")
def main(verbose: bool) -> None:
    """VPACK Sources: keep a verified local copy of every new packing video."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.command()
def init() -> None:
    """Create the data folder and database, and apply migrations (safe to repeat)."""
    settings = _settings()
    key_file = KeyFiles.of(settings).current
    created_key = None if (settings.secret_key or key_file.exists()) else key_file
    try:
        prepare(settings)
    except Exception as exc:
        raise click.ClickException(f"cannot set up the database: {exc}") from None
    click.echo(f"data folder: {settings.data_dir}")
    if created_key is not None:
        click.echo(
            f"vault key:   {created_key} (new: back it up; without it stored "
            "credentials cannot be read)"
        )
    click.echo(f"database:    {_redact_url(settings.sqlalchemy_url)}")


# ---------------------------------------------------------------- sources
@main.group()
def sources() -> None:
    """Add, list and remove sources."""


@sources.group("add")
def sources_add() -> None:
    """Add a source of videos."""


# What every `sources add` takes and prints.
_INTERVAL = click.option(
    "--interval",
    default=300,
    show_default=True,
    type=click.IntRange(min=10),
    help="Seconds between scans.",
)


def _emit_id(source_id: int, as_json: bool) -> None:
    if as_json:
        _emit({"id": source_id})
    else:
        click.echo(source_id)


@sources_add.command("local")
@click.option("--name", required=True, help="A name people will recognise.")
@click.option(
    "--path",
    "path",
    required=True,
    type=click.Path(path_type=Path),
    help="The folder to keep in sync.",
)
@_INTERVAL
@click.option(
    "--settle",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a file must stay unchanged before it is copied.",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ...}.')
def add_local(name: str, path: Path, interval: int, settle: float, as_json: bool) -> None:
    """A folder on this machine (first-level sub-folders are cameras)."""
    folder = path.expanduser().absolute()

    async def work(s: Services) -> int:
        connection_id = await catalog.local_connection(s.db)
        return await catalog.add_source(
            s.db,
            s.connections,
            connection_id=connection_id,
            name=name,
            selections=[str(folder.resolve())],
            options={"settle_seconds": settle},
            interval_s=interval,
        )

    _emit_id(_run(work), as_json)


@sources_add.command("remote")
@click.option("--connection", "connection_id", required=True, type=int, help="Its id.")
@click.option("--name", required=True, help="A name people will recognise.")
@click.option(
    "--select",
    "selections",
    required=True,
    multiple=True,
    help="A folder, prefix or channel id from `vpack connections browse` (repeatable).",
)
@_INTERVAL
@click.option(
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A source option of the provider (e.g. cameras_from=selection).",
)
@click.option("--json", "as_json", is_flag=True, help='Print {"id": ...}.')
def add_remote(
    connection_id: int,
    name: str,
    selections: tuple[str, ...],
    interval: int,
    options: tuple[str, ...],
    as_json: bool,
) -> None:
    """Folders, prefixes or channels of a connection (see `vpack connections`)."""
    values = _pairs(options)

    async def work(s: Services) -> int:
        return await catalog.add_source(
            s.db,
            s.connections,
            connection_id=connection_id,
            name=name,
            selections=list(selections),
            options=values,
            interval_s=interval,
        )

    _emit_id(_run(work), as_json)


@sources.command("list")
@click.option("--json", "as_json", is_flag=True)
def sources_list(as_json: bool) -> None:
    """Every source with its state and video counts."""
    rows = _run(lambda s: catalog.list_sources(s.db))
    if as_json:
        _emit([r.as_dict() for r in rows])
        return
    if not rows:
        click.echo("no sources yet: add one with `vpack sources add local --name N --path DIR`")
        return
    for r in rows:
        c = r.counts
        click.echo(
            f"{r.id:>4}  {r.name}  [{r.provider}] {', '.join(r.selections)}  "
            f"every {r.interval_s}s  {r.status}  done {c['done']}, pending {c['pending']}, "
            f"failed {c['failed']}" + (f"  last error: {r.last_error}" if r.last_error else "")
        )


@sources.command("remove")
@click.argument("source_id", type=int)
@click.option("--purge", is_flag=True, help="Also delete the downloaded videos.")
def sources_remove(source_id: int, purge: bool) -> None:
    """Stop syncing a source. Downloaded files are kept unless --purge."""
    purged = _run(lambda s: catalog.remove_source(s.db, s.store, source_id, purge))
    if purge:
        click.echo(f"removed source {source_id} and deleted {purged} downloaded files")
    else:
        click.echo(f"removed source {source_id}; downloaded files were kept")


# ---------------------------------------------------------------- sync
class _Bar(ProgressSink):
    """A terminal progress bar over the bytes to fetch."""

    def __init__(self) -> None:
        self.bar: Any = None

    def planned(self, videos: int, total_bytes: int) -> None:
        if self.bar is not None:  # a scan found more while downloads were under way
            self.bar.length = max(total_bytes, 1)
            self.bar.label = f"{videos} videos"
        elif videos:
            self.bar = click.progressbar(
                length=max(total_bytes, 1),
                label=f"{videos} videos",
                file=sys.stderr,
                show_pos=False,
                show_percent=True,
                show_eta=True,
            )
            self.bar.__enter__()

    def advanced(self, video_id: int, nbytes: int) -> None:
        if self.bar is not None:
            self.bar.update(nbytes)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@main.command()
@click.argument("source_ids", nargs=-1, type=int)
@click.option("--json", "as_json", is_flag=True)
def sync(source_ids: tuple[int, ...], as_json: bool) -> None:
    """Scan and download now (all sources, or the given ids). Exit 1 if anything failed."""
    bar = _Bar() if (sys.stderr.isatty() and not as_json) else None

    async def work(s: Services) -> dict[str, Any]:
        if source_ids:
            known = {r.id for r in await catalog.list_sources(s.db)}
            missing = [i for i in source_ids if i not in known]
            if missing:
                raise LookupError(f"no source with id {', '.join(map(str, missing))}")
        stop = asyncio.Event()
        remove = install_stop_signals(stop)
        try:
            report = await s.engine.sync(list(source_ids) or None, progress=bar, stop=stop)
        finally:
            remove()
            if bar is not None:
                bar.close()
        # What a cron-driven `vpack sync` published reaches the sources' sinks too.
        return {**report.as_dict(), "handed_on": await s.deliverer.deliver_due()}

    result = _run(work)
    if as_json:
        _emit(result)
    else:
        click.echo(
            f"new {result['new']}, downloaded {result['downloaded']} "
            f"({_human(result['bytes'])}), failed {result['failed']}"
            + (f", handed on {result['handed_on']}" if result["handed_on"] else "")
        )
        for src in result["sources"]:
            if src["error"]:
                click.echo(f"source {src['id']} ({src['name']}): {src['error']}", err=True)
    if result["failed"]:
        sys.exit(1)


# ---------------------------------------------------------------- videos
@main.group()
def connections() -> None:
    """Accounts, buckets and recorders that sources read from."""


@connections.command("add")
@click.argument("provider")
@click.option("--name", default="", help="A name people will recognise.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help='A setting of the provider (repeatable); JSON for lists: prefixes=["a/"]. Secrets left '
    "out are asked for without echo.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the connection as JSON.")
def connections_add(provider: str, name: str, settings: tuple[str, ...], as_json: bool) -> None:
    """Check settings with the provider, then store them (secrets encrypted)."""
    try:
        cls = get_provider_class(provider)
    except ProviderError as exc:  # names the providers there are
        raise click.ClickException(str(exc)) from None
    if cls.auth == AuthKind.OAUTH2:
        raise click.ClickException(
            f"{cls.label} is connected by signing in with a browser: use the web UI "
            "(Connect a source) or POST /api/cloud/<provider>/auth"
        )
    if cls.name == "local":
        raise click.ClickException("local folders need no connection: `vpack sources add local`")
    config: dict[str, Any] = _pairs(settings)
    for secret in sorted(secret_fields(cls.Config)):
        required = cls.Config.model_fields[secret].is_required()
        if secret not in config and required:
            config[secret] = click.prompt(secret.replace("_", " "), hide_input=True)

    async def work(s: Services) -> dict[str, Any]:
        connection, identity = await s.connections.create(
            provider=provider, name=name, config=config, owner_id=None, from_api=False
        )
        return {
            "id": connection.id,
            "provider": provider,
            "name": connection.name,
            "account": identity.label,
        }

    made = _run(work)
    if as_json:
        _emit(made)
    else:
        click.echo(f"{made['id']}  {made['name']}  {made['account']}")


@connections.command("list")
@click.option("--json", "as_json", is_flag=True)
def connections_list(as_json: bool) -> None:
    """Every connection, with its state (secrets never shown)."""

    async def work(s: Services) -> list[dict[str, Any]]:
        async with s.db.session() as session:
            rows = (await session.execute(select(Connection).order_by(Connection.id))).scalars()
            return [
                {
                    "id": c.id,
                    "provider": c.provider,
                    "name": c.name,
                    "account": c.account,
                    "status": c.status,
                }
                for c in rows
            ]

    rows = _run(work)
    if as_json:
        _emit(rows)
        return
    for r in rows:
        account = r["account"] or ""
        click.echo(f"{r['id']:>4}  {r['name']}  [{r['provider']}] {account}  {r['status']}")


@connections.command("browse")
@click.argument("connection_id", type=int)
@click.argument("node", required=False)
@click.option("--page", help="The page token a previous answer gave.")
@click.option("--json", "as_json", is_flag=True)
def connections_browse(
    connection_id: int, node: str | None, page: str | None, as_json: bool
) -> None:
    """The folders (or channels) under NODE, or the top of the tree: ids to --select."""

    async def work(s: Services) -> BrowsePage:
        async with s.db.session() as session:
            connection = await session.get(Connection, connection_id)
        if connection is None:
            raise LookupError(f"no connection with id {connection_id}")
        provider = s.connections.build(connection)
        try:
            return await provider.browse(node, page)
        finally:
            await provider.aclose()

    listing = _run(work)
    if as_json:
        _emit(
            {
                "nodes": [dataclasses.asdict(n) for n in listing.nodes],
                "next_page": listing.next_page,
            }
        )
        return
    for n in listing.nodes:
        more = " +" if n.has_children else ""
        click.echo(f"{n.id}\t{n.kind}\t{n.name}{more}")
    if listing.next_page:
        click.echo(f"(more: --page {listing.next_page})")


def _pairs(items: tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE pairs: JSON values (true, 3, ["a","b"]) are read as JSON, the rest as
    text; the provider's model then checks them."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


@main.group()
def videos() -> None:
    """Look at downloaded and pending videos."""


@videos.command("list")
@click.option("--source", "source_id", type=int, help="Only this source.")
@click.option("--state", type=click.Choice([s.value for s in VideoState]))
@click.option("--json", "as_json", is_flag=True)
def videos_list(source_id: int | None, state: str | None, as_json: bool) -> None:
    """Videos with their state, size, checksum and local path."""

    async def work(s: Services) -> list[dict[str, Any]]:
        query = select(Video).order_by(Video.id)
        if source_id is not None:
            query = query.where(Video.source_id == source_id)
        if state is not None:
            query = query.where(Video.state == state)
        async with s.db.session() as session:
            rows = (await session.execute(query)).scalars().all()
        return [_video_dict(s, v) for v in rows]

    rows = _run(work)
    if as_json:
        _emit(rows)
        return
    for r in rows:
        where = r["path"] or r["error"] or ""
        click.echo(f"{r['id']:>6}  {r['state']:<11} {r['camera']}/{r['name']}  {where}")


def _video_dict(s: Services, v: Video) -> dict[str, Any]:
    return {
        "id": v.id,
        "source_id": v.source_id,
        "camera": v.camera,
        "name": v.name,
        "size": v.size,
        "sha256": v.sha256,
        "path": str(s.store.absolute(v.local_path)) if v.local_path else None,
        "state": v.state,
        "recorded_start": v.recorded_start.isoformat() if v.recorded_start else None,
        "duration_s": v.duration_s,
        "error": v.error or v.probe_error,
    }


# ---------------------------------------------------------------- users
@main.group()
def users() -> None:
    """Accounts for the web service."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--admin", is_flag=True, help="An administrator (sees and manages everyone).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, admin: bool, password_stdin: bool) -> None:
    """Create an account (the password is asked for, never taken as an argument)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    from vpack.accounts import AccountExists, create_user  # argon2 and JWT: this command only
    from vpack.security.auth import WeakPassword

    async def work(s: Services) -> int:
        async with s.db.transaction() as session:
            try:
                user = await create_user(
                    session,
                    email,
                    password,
                    Role.ADMIN if admin else Role.USER,
                    by=None,
                    via="cli",
                )
            except (AccountExists, WeakPassword) as exc:
                raise click.ClickException(str(exc)) from None
            return user.id

    user_id = _run(work)
    click.echo(
        f"created {'administrator' if admin else 'user'} {email.strip().lower()} (id {user_id})"
    )


# ---------------------------------------------------------------- import
@main.group("import")
def import_group() -> None:
    """Bring in what another tool already has."""


@import_group.command("vpack")
@click.argument("database", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Say what would happen; change nothing.")
@click.option("--owner", help="The user (email) who will own the sources; default: the operator.")
@click.option(
    "--redownload-missing",
    is_flag=True,
    help="Let the next sync download Drive files whose VPACK copy is gone or altered.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def import_vpack(
    database: Path, dry_run: bool, owner: str | None, redownload_missing: bool, as_json: bool
) -> None:
    """VPACK's sources, camera names and download history, from its events.db."""
    from vpack.vpack_import import ImportOptions, VpackDatabaseError, import_vpack

    path = database.expanduser().absolute()

    async def work(s: Services) -> dict[str, Any]:
        owner_id = None
        if owner:
            async with s.db.session() as session:
                owner_id = (
                    await session.execute(select(User.id).where(User.email == owner.lower()))
                ).scalar_one_or_none()
            if owner_id is None:
                raise click.ClickException(f"no user {owner}")
        roots = s.settings.allowed_local_roots
        options = ImportOptions(
            owner_id=owner_id,
            dry_run=dry_run,
            redownload_missing=redownload_missing,
            allowed_roots=roots or None,  # the CLI may add any folder unless roots are set
            data_dir=s.settings.data_dir,
            zone=s.settings.zone,
        )
        try:
            report = await import_vpack(s.db, path, options)
        except VpackDatabaseError as exc:
            raise click.ClickException(f"{exc}; nothing was changed") from None
        if not as_json:
            for line in report.lines():
                click.echo(line)
        return report.as_dict()

    result = _run(work)
    if as_json:
        _emit(result)


# ---------------------------------------------------------------- keys
@main.group()
def keys() -> None:
    """The vault key that encrypts stored credentials."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored credential under a new key, in one transaction."""

    async def work(s: Services) -> RotationResult:
        try:
            return await rotate_keys(s.db, s.settings)
        except VaultError as exc:
            raise click.ClickException(str(exc)) from None

    result = _run(work)
    click.echo(
        f"re-encrypted {result.connections_reencrypted} connection(s): key "
        f"{result.old_key_id} -> {result.new_key_id}. Back up the new key; running "
        "services pick it up by themselves."
    )


# ---------------------------------------------------------------- long-running
@main.command()
def worker() -> None:
    """Sync every source on its interval until SIGTERM or Ctrl-C."""

    async def work(s: Services) -> None:
        stop = asyncio.Event()
        remove = install_stop_signals(stop)
        click.echo(f"vpack worker {s.engine.worker_id} running; Ctrl-C to stop", err=True)
        try:
            executor = LocalExecutor(
                s.engine,
                s.settings.scheduler_tick_seconds,
                deliverer=s.deliverer,
                retention=s.retention,
                retention_every=s.settings.retention_check_seconds,
            )
            await executor.run(stop)
        finally:
            remove()
        click.echo("vpack worker stopped", err=True)

    _run(work)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """The web service (API) with the sync worker running inside it."""
    import uvicorn  # imported here: the other commands should not pay for the web stack

    from vpack.api.app import create_app

    settings = _settings()
    try:
        prepare(settings)
    except Exception as exc:
        raise click.ClickException(f"cannot open the database: {exc}") from None

    class Server(uvicorn.Server):
        """A SIGTERM that ended in a clean shutdown exits 0.

        uvicorn re-raises the caught signal after shutting down, which makes
        service managers and scripts see a crash (-15) for a clean stop.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    # Open event streams (a browser tab on the dashboard) never end by themselves:
    # without a grace limit, SIGTERM would wait on them forever.
    config = uvicorn.Config(
        create_app(settings), host=host, port=port, log_level="info", timeout_graceful_shutdown=5
    )
    Server(config).run()


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    main()
