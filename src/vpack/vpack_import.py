"""Switching from VPACK: its sources, camera names and download history, read from its events.db.

Facts about VPACK's tables come from its own `backend/database.py` and the code that
fills them (Binhnguyen041280/VPACK): `video_sources` rows are 'local' or 'cloud'; the
cloud (Google Drive) row's `config` JSON lists its folders under `selected_tree_folders`
(and the older `selected_folders`), each `{id, name, path}`, and every selected folder
is one camera named after it; `downloaded_files` is that sync's history, keyed by
`drive_file_id`, with `file_size_bytes` the size Drive reported and `local_file_path`
VPACK's copy (which VPACK may have rewritten with ffmpeg to drop rotation metadata);
`sync_status.sync_interval_minutes` is the sync interval. VPACK's sign-in tokens are its
own: never read here.

The VPACK database is only read (SQLite, read-only). Everything written here is written
in one transaction: a bad database, or a failure half-way, changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vpack.catalog import LOCAL_CONNECTION_NAME, refuse_store_overlap
from vpack.db.models import Connection, ConnectionStatus, Source, Video, VideoState, utcnow
from vpack.db.session import Database
from vpack.providers.errors import BadConfig
from vpack.providers.kit.files import camera_folder
from vpack.providers.local.provider import encode_relpath, file_revision
from vpack.providers.registry import source_options
from vpack.security import audit
from vpack.security.audit import Action
from vpack.sync.scan import ADOPTABLE_REVISION

# An imported Drive row whose bytes we cannot vouch for (its copy is gone, or VPACK
# rewrote it) gets ADOPTABLE_REVISION: Drive's revision is the file's md5, which only the
# API gives, and the first scan after sign-in adopts the row instead of adding one.

DRIVE_CONNECTION_NAME = "Google Drive (from VPACK)"
SIGN_IN_AGAIN = (
    "imported from VPACK: sign in again (VPACK's Google sign-in stays with VPACK and is not copied)"
)
DEFAULT_INTERVAL_MINUTES = 10  # VPACK's sync_status default

# What this import reads; VPACK adds columns with ALTER TABLE over time, so only these
# must be there (drive_file_id and the timestamps are read when present).
REQUIRED_COLUMNS: dict[str, set[str]] = {
    "video_sources": {"id", "source_type", "name", "path", "config", "active"},
    "camera_configurations": {"source_id", "camera_name", "folder_path"},
    "sync_status": {"source_id", "sync_interval_minutes"},
    "downloaded_files": {
        "id",
        "source_id",
        "camera_name",
        "original_filename",
        "local_file_path",
        "file_size_bytes",
    },
}
OPTIONAL_FILE_COLUMNS = (
    "drive_file_id",
    "download_timestamp",
    "recording_start_time",
    "recording_end_time",
)
_READ_BYTES = 1024 * 1024


class VpackDatabaseError(Exception):
    """The file is not a VPACK database this import can read; nothing was changed."""


# ---------------------------------------------------------------- what VPACK has


@dataclass(frozen=True)
class DriveFolder:
    id: str
    name: str


@dataclass(frozen=True)
class VpackSource:
    id: int
    kind: str  # "local" | "cloud"
    name: str
    path: str
    active: bool
    folders: tuple[DriveFolder, ...]
    cameras: dict[str, str]  # folder id / path -> VPACK's camera name
    interval_minutes: int | None
    account: str | None  # config.user_email, when VPACK recorded it


@dataclass(frozen=True)
class VpackFile:
    id: int
    source_id: int
    camera: str
    filename: str
    local_path: str
    size: int
    drive_file_id: str | None
    downloaded_at: str | None
    recording_start: str | None
    recording_end: str | None


@dataclass(frozen=True)
class VpackHistory:
    sources: list[VpackSource]
    files: list[VpackFile]


def read_vpack(path: Path) -> VpackHistory:
    """VPACK's sources and download history, or VpackDatabaseError saying what is wrong."""
    if not path.is_file():
        raise VpackDatabaseError(f"{path}: no such file")
    try:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise VpackDatabaseError(f"{path}: cannot open it as SQLite: {exc}") from None
    try:
        conn.row_factory = sqlite3.Row
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            raise VpackDatabaseError(f"{path} is not a SQLite database ({exc})") from None
        missing = sorted(set(REQUIRED_COLUMNS) - tables)
        if missing:
            raise VpackDatabaseError(
                f"{path} is not a VPACK database: it has no {', '.join(missing)} "
                "table" + ("s" if len(missing) > 1 else "")
            )
        columns = {t: {r[1] for r in conn.execute(f"PRAGMA table_info({t})")} for t in tables}
        for table, wanted in REQUIRED_COLUMNS.items():
            lacking = sorted(wanted - columns[table])
            if lacking:
                raise VpackDatabaseError(
                    f"{path} is not a VPACK database this import knows: "
                    f"{table} has no column {', '.join(lacking)}"
                )
        try:
            return VpackHistory(_read_sources(conn), _read_files(conn, columns["downloaded_files"]))
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise VpackDatabaseError(f"{path}: cannot read VPACK's tables: {exc}") from None
    finally:
        conn.close()


def _read_sources(conn: sqlite3.Connection) -> list[VpackSource]:
    intervals = {
        int(r["source_id"]): r["sync_interval_minutes"]
        for r in conn.execute("SELECT source_id, sync_interval_minutes FROM sync_status")
    }
    cameras: dict[int, dict[str, str]] = {}
    for r in conn.execute("SELECT source_id, camera_name, folder_path FROM camera_configurations"):
        if r["folder_path"] and r["camera_name"]:
            cameras.setdefault(int(r["source_id"]), {})[str(r["folder_path"])] = str(
                r["camera_name"]
            )
    out = []
    for r in conn.execute(
        "SELECT id, source_type, name, path, config, active FROM video_sources ORDER BY id"
    ):
        config = _json_object(r["config"])
        interval = intervals.get(int(r["id"]))
        out.append(
            VpackSource(
                id=int(r["id"]),
                kind=str(r["source_type"]),
                name=str(r["name"] or ""),
                path=str(r["path"] or ""),
                active=bool(r["active"]),
                folders=tuple(_drive_folders(config)),
                cameras=cameras.get(int(r["id"]), {}),
                interval_minutes=int(interval) if interval is not None else None,
                account=str(config["user_email"]) if config.get("user_email") else None,
            )
        )
    return out


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _drive_folders(config: dict[str, Any]) -> Iterable[DriveFolder]:
    """VPACK syncs `selected_folders + selected_tree_folders`, each a dict or a bare id."""
    seen: set[str] = set()
    for key in ("selected_folders", "selected_tree_folders"):
        items = config.get(key) or []
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                folder_id, name = str(item.get("id") or ""), str(item.get("name") or "")
            else:
                folder_id, name = str(item), ""
            if folder_id and folder_id not in seen:
                seen.add(folder_id)
                yield DriveFolder(folder_id, name or folder_id)


def _read_files(conn: sqlite3.Connection, columns: set[str]) -> list[VpackFile]:
    optional = [c if c in columns else f"NULL AS {c}" for c in OPTIONAL_FILE_COLUMNS]
    query = (
        "SELECT id, source_id, camera_name, original_filename, local_file_path, "
        f"file_size_bytes, {', '.join(optional)} FROM downloaded_files ORDER BY id"
    )
    return [
        VpackFile(
            id=int(r["id"]),
            source_id=int(r["source_id"]),
            camera=str(r["camera_name"] or ""),
            filename=str(r["original_filename"] or Path(str(r["local_file_path"])).name),
            local_path=str(r["local_file_path"] or ""),
            size=int(r["file_size_bytes"] or 0),
            drive_file_id=str(r["drive_file_id"]) if r["drive_file_id"] else None,
            downloaded_at=r["download_timestamp"],
            recording_start=r["recording_start_time"],
            recording_end=r["recording_end_time"],
        )
        for r in conn.execute(query)
    ]


# ---------------------------------------------------------------- the report


@dataclass
class SourceOutcome:
    vpack_id: int
    vpack_name: str
    kind: str  # local | google_drive | other
    outcome: str  # imported | already imported | skipped
    reason: str | None = None
    source_id: int | None = None
    connection_id: int | None = None
    sign_in_again: bool = False
    interval_s: int | None = None
    selections: list[str] = field(default_factory=list)


@dataclass
class FileOutcome:
    vpack_id: int
    path: str
    outcome: str  # imported | already imported | missing | altered | changed | redownload | skipped
    reason: str | None = None


@dataclass
class ImportReport:
    database: str
    dry_run: bool
    sources: list[SourceOutcome] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.outcome] = counts.get(f.outcome, 0) + 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "dry_run": self.dry_run,
            "sources": [asdict(s) for s in self.sources],
            "videos": self.counts,
            # Every file not imported, with why; imported ones are only counted.
            "not_imported": [asdict(f) for f in self.files if f.outcome != "imported"],
        }

    def lines(self, limit: int = 20) -> list[str]:
        """The report for people: what happened to each source, counts, and why not."""
        head = "Would import" if self.dry_run else "Imported"
        out = [
            f"{head} from {self.database}" + (" (dry run: nothing changed)" if self.dry_run else "")
        ]
        for s in self.sources:
            where = f" -> source {s.source_id}" if s.source_id else ""
            why = f": {s.reason}" if s.reason else ""
            out.append(
                f"  VPACK source {s.vpack_id} {s.vpack_name!r} ({s.kind}): {s.outcome}{where}{why}"
            )
            if s.sign_in_again:
                out.append("    sign in to Google Drive again before it syncs")
        counts = ", ".join(f"{n} {k}" for k, n in self.counts.items()) or "none"
        out.append(f"  videos: {counts}")
        problems = [f for f in self.files if f.outcome != "imported"]
        for f in problems[:limit]:
            out.append(f"    {f.outcome}: {f.path}" + (f" ({f.reason})" if f.reason else ""))
        if len(problems) > limit:
            out.append(f"    ... and {len(problems) - limit} more (--json lists them all)")
        return out


# ---------------------------------------------------------------- the import


@dataclass(frozen=True)
class Copy:
    """What the import learnt of a file on disk: enough to call it a verified copy."""

    size: int
    mtime: datetime
    sha256: str
    md5: str
    revision: str  # the local provider's (size-mtime_ns)


def inspect(path: str) -> Copy | os.stat_result | None:
    """None when the file is gone; its stat when it cannot be read; else its hashes."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_READ_BYTES):
                sha.update(chunk)
                md5.update(chunk)
    except OSError:
        return st
    return Copy(
        size=st.st_size,
        mtime=datetime.fromtimestamp(st.st_mtime, tz=UTC),
        sha256=sha.hexdigest(),
        md5=md5.hexdigest(),
        revision=file_revision(st),
    )


@dataclass
class ImportOptions:
    owner_id: int | None = None
    dry_run: bool = False
    redownload_missing: bool = False
    # Folders local sources may be on; None: any (the CLI's rule when VPACK_LOCAL_ROOTS is empty).
    allowed_roots: list[str] | None = None
    data_dir: Path | None = None  # VPACK's own data folder: never a source
    zone: tzinfo | None = None  # VPACK writes local times without a zone
    user_id: int | None = None  # who ran it, for the audit trail
    ip: str | None = None


async def import_vpack(db: Database, path: Path, options: ImportOptions) -> ImportReport:
    """Import one VPACK database (idempotent). `dry_run` does it all and rolls it back."""
    history = await asyncio.to_thread(read_vpack, path)
    report = ImportReport(database=str(path), dry_run=options.dry_run)
    inspected = await asyncio.to_thread(
        lambda: {f.local_path: inspect(f.local_path) for f in history.files if f.local_path}
    )
    async with db.sessions() as session:
        tx = await session.begin()
        try:
            await _apply(session, history, inspected, options, report)
            audit.record(
                session,
                Action.VPACK_IMPORTED,
                user_id=options.user_id,
                target_type="vpack_database",
                target_id=str(path)[:100],
                ip=options.ip,
                dry_run=options.dry_run,
                sources=[(s.vpack_id, s.outcome, s.source_id) for s in report.sources],
                videos=report.counts,
            )
            if options.dry_run:
                await tx.rollback()
            else:
                await tx.commit()
        except BaseException:
            await tx.rollback()
            raise
    return report


async def _apply(
    session: AsyncSession,
    history: VpackHistory,
    inspected: dict[str, Copy | os.stat_result | None],
    options: ImportOptions,
    report: ImportReport,
) -> None:
    targets: dict[int, tuple[str, Source, VpackSource]] = {}
    for vs in history.sources:
        imported, source = await _import_source(session, vs, options)
        report.sources.append(imported)
        if source is not None:
            targets[vs.id] = (imported.kind, source, vs)
    known = await _known_remote_ids(session, [s.id for _, s, _ in targets.values()])
    for f in history.files:
        target = targets.get(f.source_id)
        if target is None:
            report.files.append(
                FileOutcome(f.id, f.local_path, "skipped", "its VPACK source was not imported")
            )
            continue
        kind, source, vs = target
        if kind == "google_drive":
            outcome = _drive_row(
                session, source, vs, f, inspected.get(f.local_path), known, options
            )
        else:
            outcome = _local_row(session, source, f, inspected.get(f.local_path), known, options)
        report.files.append(outcome)
    await session.flush()


async def _import_source(
    session: AsyncSession, vs: VpackSource, options: ImportOptions
) -> tuple[SourceOutcome, Source | None]:
    interval_s = max(10, (vs.interval_minutes or DEFAULT_INTERVAL_MINUTES) * 60)
    if vs.kind == "local":
        outcome = SourceOutcome(vs.id, vs.name, "local", "skipped", interval_s=interval_s)
        if not vs.active:
            outcome.reason = "not active in VPACK"
            return outcome, None
        try:
            folder = _local_folder(vs.path, options)
        except BadConfig as exc:
            outcome.reason = str(exc)
            return outcome, None
        outcome.selections = [folder]
        connection = await _local_connection(session, folder, options)
        return await _source(session, outcome, connection, vs, [folder], {}, {}, {})
    if vs.kind == "cloud":
        outcome = SourceOutcome(vs.id, vs.name, "google_drive", "skipped", interval_s=interval_s)
        if not vs.folders:
            outcome.reason = "no Google Drive folders selected in VPACK"
            return outcome, None
        connection = await _drive_connection(session, vs, options)
        outcome.sign_in_again = connection.status == ConnectionStatus.REAUTH_REQUIRED
        selections = [f.id for f in vs.folders]
        outcome.selections = selections
        names = {f.id: f.name for f in vs.folders}
        # Each VPACK folder is one camera named after it; camera_configurations may rename.
        cameras = {
            f.name: vs.cameras[f.id] for f in vs.folders if vs.cameras.get(f.id, f.name) != f.name
        }
        opts = source_options("google_drive", {"cameras_from": "selection"}).model_dump(mode="json")
        return await _source(session, outcome, connection, vs, selections, names, cameras, opts)
    outcome = SourceOutcome(vs.id, vs.name, vs.kind, "skipped", reason="unknown VPACK source type")
    return outcome, None


def _local_folder(path: str, options: ImportOptions) -> str:
    if not path or not os.path.isabs(path):
        raise BadConfig(f"its folder {path!r} is not an absolute path")
    real = Path(os.path.realpath(path))
    if options.allowed_roots is not None and not any(
        real == Path(r) or Path(r) in real.parents for r in options.allowed_roots
    ):
        raise BadConfig(f"{path} is outside the folders this server allows (VPACK_LOCAL_ROOTS)")
    if not real.is_dir():
        raise BadConfig(f"folder {path} does not exist here")
    if options.data_dir is not None:
        refuse_store_overlap(real, options.data_dir)
    return str(real)


async def _local_connection(
    session: AsyncSession, folder: str, options: ImportOptions
) -> Connection:
    """The owner's local connection whose roots hold `folder` (made when there is none)."""
    query = select(Connection).where(Connection.provider == "local").order_by(Connection.id)
    query = query.where(
        Connection.owner_id.is_(None)
        if options.owner_id is None
        else Connection.owner_id == options.owner_id
    )
    for connection in (await session.execute(query)).scalars():
        roots = connection.config.get("roots")
        if options.owner_id is None and not roots:
            return connection  # the operator's: any folder (the CLI's rule)
        if roots and any(Path(folder) == Path(r) or Path(r) in Path(folder).parents for r in roots):
            return connection
    # A user's local connection is bounded: by the operator's roots, or the folder itself.
    config = {} if options.owner_id is None else {"roots": options.allowed_roots or [folder]}
    connection = Connection(
        provider="local", name=LOCAL_CONNECTION_NAME, config=config, owner_id=options.owner_id
    )
    session.add(connection)
    await session.flush()
    return connection


async def _drive_connection(
    session: AsyncSession, vs: VpackSource, options: ImportOptions
) -> Connection:
    """The owner's Drive connection for VPACK's account; a new one waits for sign-in."""
    query = select(Connection).where(
        Connection.provider == "google_drive",
        Connection.owner_id.is_(None)
        if options.owner_id is None
        else Connection.owner_id == options.owner_id,
    )
    if vs.account:
        # Signing in to the same account later (connect or reconnect) lands on this row.
        query = query.where(Connection.account == vs.account)
    else:
        query = query.where(Connection.name == DRIVE_CONNECTION_NAME)
    found = (await session.execute(query.order_by(Connection.id).limit(1))).scalar_one_or_none()
    if found is not None:
        return found
    connection = Connection(
        provider="google_drive",
        owner_id=options.owner_id,
        name=DRIVE_CONNECTION_NAME,
        config={},
        account=vs.account,
        status=ConnectionStatus.REAUTH_REQUIRED,
        status_detail=SIGN_IN_AGAIN,
    )
    session.add(connection)
    await session.flush()
    return connection


async def _source(
    session: AsyncSession,
    outcome: SourceOutcome,
    connection: Connection,
    vs: VpackSource,
    selections: list[str],
    names: dict[str, str],
    cameras: dict[str, str],
    opts: dict[str, Any],
) -> tuple[SourceOutcome, Source]:
    """The connection's source on exactly these selections: found, or made."""
    outcome.connection_id = connection.id
    existing = (
        await session.execute(
            select(Source).where(Source.connection_id == connection.id).order_by(Source.id)
        )
    ).scalars()
    for source in existing:
        if sorted(source.selections) == sorted(selections):
            outcome.outcome, outcome.source_id = "already imported", source.id
            return outcome, source
    source = Source(
        owner_id=connection.owner_id,
        connection_id=connection.id,
        name=vs.name or f"VPACK source {vs.id}",
        selections=selections,
        selection_names=names or {s: Path(s).name or s for s in selections},
        cameras=cameras,
        options=opts or source_options("local", {}).model_dump(mode="json"),
        interval_s=outcome.interval_s or DEFAULT_INTERVAL_MINUTES * 60,
    )
    session.add(source)
    await session.flush()
    outcome.outcome, outcome.source_id = "imported", source.id
    return outcome, source


async def _known_remote_ids(session: AsyncSession, source_ids: list[int]) -> set[tuple[int, str]]:
    if not source_ids:
        return set()
    rows = await session.execute(
        select(Video.source_id, Video.remote_id).where(Video.source_id.in_(source_ids))
    )
    return {(source_id, remote_id) for source_id, remote_id in rows}


def _drive_row(
    session: AsyncSession,
    source: Source,
    vs: VpackSource,
    f: VpackFile,
    copy: Copy | os.stat_result | None,
    known: set[tuple[int, str]],
    options: ImportOptions,
) -> FileOutcome:
    if not f.drive_file_id:
        return FileOutcome(f.id, f.local_path, "skipped", "VPACK recorded no Drive file id")
    if (source.id, f.drive_file_id) in known:
        return FileOutcome(f.id, f.local_path, "already imported")
    known.add((source.id, f.drive_file_id))
    selection = _selection_of(vs, f.camera)
    base = {
        "source_id": source.id,
        "selection": selection,
        "remote_id": f.drive_file_id,
        "camera": f.camera or selection,
        "name": f.filename,
        "remote_path": f.filename,
        "size": f.size,
        "recorded_start": _when(f.recording_start, options.zone),
        "recorded_end": _when(f.recording_end, options.zone),
        "extra": {"vpack": {"downloaded_file_id": f.id, "local_file_path": f.local_path}},
    }
    if isinstance(copy, Copy) and copy.size == f.size:
        # The bytes Drive sent, as VPACK kept them: their md5 is Drive's md5Checksum,
        # which is the revision our Drive provider gives this file.
        session.add(
            Video(
                **base,
                revision=copy.md5,
                remote_hash=copy.md5,
                state=VideoState.DONE,
                bytes_done=copy.size,
                sha256=copy.sha256,
                local_path=os.path.abspath(f.local_path),
                modified_at=copy.mtime,
                downloaded_at=_when(f.downloaded_at, options.zone) or utcnow(),
            )
        )
        return FileOutcome(f.id, f.local_path, "imported")
    if copy is None:
        outcome, reason = "missing", "VPACK's copy is gone"
    elif isinstance(copy, Copy):
        outcome = "altered"
        reason = (
            f"VPACK's copy has {copy.size} bytes, Drive's file {f.size} "
            "(VPACK rewrites some videos with ffmpeg): not the bytes Drive has"
        )
    else:
        outcome, reason = "missing", "VPACK's copy cannot be read"
    if options.redownload_missing:
        known.discard((source.id, f.drive_file_id))
        return FileOutcome(
            f.id, f.local_path, "redownload", reason + "; the next sync downloads it"
        )
    # Recorded so it is not downloaded again; the revision is Drive's to give (see
    # ADOPTABLE_REVISION).
    session.add(
        Video(
            **base,
            revision=ADOPTABLE_REVISION,
            state=VideoState.SKIPPED,
            error=f"imported from VPACK: {reason}",
        )
    )
    return FileOutcome(f.id, f.local_path, outcome, reason)


def _selection_of(vs: VpackSource, camera: str) -> str:
    """The selected folder a VPACK file came from: VPACK names the camera after it."""
    for folder in vs.folders:
        if vs.cameras.get(folder.id, folder.name) == camera or folder.name == camera:
            return folder.id
    return vs.folders[0].id


def _local_row(
    session: AsyncSession,
    source: Source,
    f: VpackFile,
    copy: Copy | os.stat_result | None,
    known: set[tuple[int, str]],
    options: ImportOptions,
) -> FileOutcome:
    root = source.selections[0]
    real = os.path.realpath(f.local_path) if f.local_path else ""
    if not real.startswith(root.rstrip("/") + "/"):
        return FileOutcome(f.id, f.local_path, "skipped", f"not under the source's folder {root}")
    rel = os.fsencode(os.path.relpath(real, root))
    remote_id = encode_relpath(rel)
    if (source.id, remote_id) in known:
        return FileOutcome(f.id, f.local_path, "already imported")
    if copy is None or not isinstance(copy, Copy):
        return FileOutcome(f.id, f.local_path, "missing", "the file is gone from its folder")
    if copy.size != f.size:
        return FileOutcome(
            f.id,
            f.local_path,
            "changed",
            f"{copy.size} bytes now, {f.size} when VPACK took it: the next sync copies it",
        )
    known.add((source.id, remote_id))
    folder = camera_folder(rel)
    text = rel.decode("utf-8", errors="backslashreplace")
    session.add(
        Video(
            source_id=source.id,
            selection=root,
            remote_id=remote_id,
            revision=copy.revision,
            camera=(folder.decode("utf-8", "backslashreplace") if folder else Path(root).name),
            name=os.path.basename(text),
            remote_path=text,
            size=copy.size,
            modified_at=copy.mtime,
            recorded_start=_when(f.recording_start, options.zone),
            recorded_end=_when(f.recording_end, options.zone),
            extra={"root": root, "vpack": {"downloaded_file_id": f.id}},
            state=VideoState.DONE,
            bytes_done=copy.size,
            sha256=copy.sha256,
            local_path=real,
            downloaded_at=_when(f.downloaded_at, options.zone) or utcnow(),
        )
    )
    return FileOutcome(f.id, f.local_path, "imported")


def _when(text: str | None, zone: tzinfo | None) -> datetime | None:
    """VPACK's timestamps: ISO text, local time unless it says otherwise."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone) if zone is not None else value.astimezone()
    return value.astimezone(UTC)
