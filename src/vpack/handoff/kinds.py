"""The kinds of sink: what each needs configured, and how it hands one video on.

Each delivery is idempotent, because a crash between the hand-off and the record of
it repeats the hand-off: the folder sink finds its link already there, the VPACK
queue sink its row, and a webhook receiver the event id it has already seen."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import string
import time
from abc import ABC, abstractmethod
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from vpack.db.models import Video
from vpack.security.destinations import check_destination
from vpack.settings import Settings
from vpack.store import VideoStore, safe_name

# What VPACK's own scanner writes into file_list (backend/modules/scheduler/file_lister.py
# in Binhnguyen041280/VPACK): a normal scan's program_type, and the status it sets.
VPACK_PROGRAM_TYPE = "default"
VPACK_PENDING = "pending"


class DeliveryFailed(Exception):
    """This attempt failed; the message is shown to the sink's owner."""


@dataclass(frozen=True)
class Published:
    """A published video as sinks receive it."""

    seq: int
    video_id: int
    source_id: int
    camera: str
    name: str
    path: Path  # the verified copy, absolute
    size: int | None
    sha256: str | None
    recorded_start: datetime | None
    recorded_end: datetime | None
    published_at: datetime | None

    @classmethod
    def of(cls, row: Video, store: VideoStore) -> Published:
        """A published video row as sinks see it."""
        return cls(
            seq=int(row.published_seq or 0),
            video_id=row.id,
            source_id=row.source_id,
            camera=row.camera,
            name=row.name,
            path=store.absolute(row.local_path or ""),
            size=row.size,
            sha256=row.sha256,
            recorded_start=row.recorded_start,
            recorded_end=row.recorded_end,
            published_at=row.downloaded_at,
        )

    def event(self) -> dict[str, Any]:
        """The JSON a webhook receives; `id` is the same on every retry."""
        return {
            "id": f"video-{self.video_id}",
            "type": "video.published",
            "seq": self.seq,
            "video": {
                "id": self.video_id,
                "source_id": self.source_id,
                "camera": self.camera,
                "name": self.name,
                "path": str(self.path),
                "content_url": f"/api/videos/{self.video_id}/content",
                "size": self.size,
                "sha256": self.sha256,
                "recorded_start": _iso(self.recorded_start),
                "recorded_end": _iso(self.recorded_end),
                "published_at": _iso(self.published_at),
            },
        }


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


class SinkKind(ABC):
    """One kind of sink. `Config` is stored in the row; its SecretStr fields go to
    the vault."""

    name: ClassVar[str]
    label: ClassVar[str]
    Config: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, settings: Settings, zone: tzinfo | None) -> None:
        self.config = config
        self.settings = settings
        self.zone = zone

    @abstractmethod
    def check(self) -> None:
        """Refuse a configuration that cannot work (raise DeliveryFailed)."""

    @abstractmethod
    async def deliver(self, video: Published) -> str:
        """Hand the video on; return what was done, for the delivery log."""

    async def done_with(self, video: Published) -> bool:
        """May our copy go? Once delivered, yes, unless the consumer still reads it
        where we keep it (VPACK's queue names our path until VPACK has processed it)."""
        return True


def _inside_allowed_roots(path: Path, settings: Settings, what: str) -> Path:
    """`path` resolved, if it lies under one of the operator's VPACK_LOCAL_ROOTS."""
    if not path.is_absolute():
        raise DeliveryFailed(f"{what} must be an absolute path: {path}")
    resolved = path.resolve()
    for root in settings.allowed_local_roots:
        if resolved == Path(root) or resolved.is_relative_to(root):
            return resolved
    raise DeliveryFailed(f"{what} {path} is outside the folders this server allows")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FolderConfig(_Strict):
    path: str = Field(
        min_length=1,
        max_length=4096,
        description="VPACK's input folder; each video goes into a folder named after its camera",
    )


class FolderSink(SinkKind):
    """Place the copy where VPACK's scanner looks: `<path>/<camera>/<name>`, hard-linked
    on the same filesystem, copied (then renamed into place) across filesystems."""

    name = "vpack_folder"
    label = "VPACK input folder"
    Config = FolderConfig

    def check(self) -> None:
        assert isinstance(self.config, FolderConfig)
        root = _inside_allowed_roots(Path(self.config.path), self.settings, "the folder")
        if not root.is_dir():
            raise DeliveryFailed(f"the folder {root} does not exist")

    async def deliver(self, video: Published) -> str:
        return await asyncio.to_thread(self._place, video)

    def _place(self, video: Published) -> str:
        self.check()
        assert isinstance(self.config, FolderConfig)
        folder = Path(self.config.path) / safe_name(video.camera)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / safe_name(video.name)
        try:
            source_stat = video.path.stat()
        except FileNotFoundError:
            raise DeliveryFailed(f"the copy {video.path} is no longer on disk") from None
        n = 1
        while True:
            try:
                existing = target.stat()
            except FileNotFoundError:
                break
            if existing.st_ino == source_stat.st_ino and existing.st_dev == source_stat.st_dev:
                return f"already in place: {target}"  # an earlier attempt got this far
            n += 1
            target = folder / f"{target.stem.rsplit(' (', 1)[0]} ({n}){target.suffix}"
        try:
            os.link(video.path, target)
            return f"linked {target}"
        except OSError:
            pass  # another filesystem (or links not allowed): copy, then rename in
        temporary = folder / f".{target.name}.vpack-part"
        shutil.copyfile(video.path, temporary)
        os.replace(temporary, target)
        return f"copied to {target}"


class QueueConfig(_Strict):
    database: str = Field(
        min_length=1,
        max_length=4096,
        description="VPACK's database (backend/database/events.db)",
    )


class VpackQueueSink(SinkKind):
    """Insert the row VPACK's pipeline consumes into its `file_list`, as VPACK's own
    scanner does: skipped when a row for the same file is already there (in one
    transaction, so two attempts cannot both insert)."""

    name = "vpack_queue"
    label = "VPACK processing queue"
    Config = QueueConfig

    def _path(self) -> Path:
        assert isinstance(self.config, QueueConfig)
        return _inside_allowed_roots(Path(self.config.database), self.settings, "the database")

    def check(self) -> None:
        path = self._path()
        if not path.is_file():
            raise DeliveryFailed(f"no VPACK database at {path}")
        with closing(_vpack_db(path)) as db:
            _columns(db)

    async def deliver(self, video: Published) -> str:
        return await asyncio.to_thread(self._insert, video)

    def _insert(self, video: Published) -> str:
        path = self._path()
        if not path.is_file():
            raise DeliveryFailed(f"no VPACK database at {path}")
        when = video.recorded_start or video.published_at
        with closing(_vpack_db(path)) as db:
            columns = _columns(db)
            db.execute("BEGIN IMMEDIATE")  # one writer: the check and the insert go together
            try:
                if db.execute(
                    "SELECT id FROM file_list WHERE file_path = ?", (str(video.path),)
                ).fetchone():
                    db.execute("ROLLBACK")
                    return f"already queued: {video.path}"
                row = {
                    "program_type": VPACK_PROGRAM_TYPE,
                    "file_path": str(video.path),
                    "ctime": self._local(when) if when else None,
                    "created_at": self._local(datetime.now(self.zone)),
                    "priority": 0,
                    "camera_name": video.camera,
                    "status": VPACK_PENDING,
                    "is_processed": 0,
                }
                row = {k: v for k, v in row.items() if k in columns}
                names = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                db.execute(f"INSERT INTO file_list ({names}) VALUES ({marks})", list(row.values()))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return f"queued {video.path}"

    async def done_with(self, video: Published) -> bool:
        return await asyncio.to_thread(self._processed, video)

    def _processed(self, video: Published) -> bool:
        """Has VPACK marked the file processed (is_processed = 1)? Unknown is no."""
        try:
            with closing(_vpack_db(self._path())) as db:
                row = db.execute(
                    "SELECT is_processed FROM file_list WHERE file_path = ?", (str(video.path),)
                ).fetchone()
        except (DeliveryFailed, sqlite3.Error):
            return False
        return row is not None and row[0] == 1

    def _local(self, when: datetime) -> str:
        """A time as VPACK stores its own: the shop's wall clock with its offset."""
        return when.astimezone(self.zone).isoformat(sep=" ")


def _vpack_db(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE above).
        return sqlite3.connect(path, timeout=30, isolation_level=None)
    except sqlite3.Error as exc:
        raise DeliveryFailed(f"cannot open VPACK's database {path}: {exc}") from None


def _columns(db: sqlite3.Connection) -> set[str]:
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(file_list)")}
    except sqlite3.DatabaseError as exc:
        raise DeliveryFailed(f"not a VPACK database: {exc}") from None
    needed = {"program_type", "file_path"}
    if not needed <= columns:
        raise DeliveryFailed("not a VPACK database: it has no file_list table VPACK reads")
    return columns


class WebhookConfig(_Strict):
    url: str = Field(min_length=1, max_length=2000, description="https:// (or http://) address")
    secret: SecretStr = Field(
        min_length=16, max_length=200, description="signs each event (HMAC-SHA256)"
    )

    @field_validator("url")
    @classmethod
    def _scheme_and_host(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// address with a host")
        return url


SIGNATURE_HEADER = "X-VPACK-Signature"
TIMESTAMP_HEADER = "X-VPACK-Timestamp"
EVENT_HEADER = "X-VPACK-Event-Id"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>`: a receiver checks it and
    refuses old timestamps, so a captured request cannot be replayed later."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookSink(SinkKind):
    """POST a signed JSON event; any 2xx is delivered. The event id repeats on retry,
    so the receiver can drop a duplicate."""

    name = "webhook"
    label = "Webhook"
    Config = WebhookConfig
    timeout = 15.0

    def check(self) -> None:
        assert isinstance(self.config, WebhookConfig)
        host = urlsplit(self.config.url).hostname or ""
        try:
            check_destination(host, self.settings.blocked)
        except Exception as exc:  # BadConfig with the reason
            raise DeliveryFailed(str(exc)) from None

    async def deliver(self, video: Published) -> str:
        assert isinstance(self.config, WebhookConfig)
        await asyncio.to_thread(self.check)  # resolves the host: blocking
        event = video.event()
        body = json.dumps(event, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            EVENT_HEADER: event["id"],
            SIGNATURE_HEADER: sign(self.config.secret.get_secret_value(), timestamp, body),
        }
        import httpx  # here: the CLI and most sinks never load the HTTP stack

        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as http:
                answer = await http.post(self.config.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{self.config.url}: {exc.__class__.__name__}: {exc}") from None
        if not 200 <= answer.status_code < 300:
            raise DeliveryFailed(f"{self.config.url} answered {answer.status_code}")
        return f"{self.config.url} answered {answer.status_code}"


# What a command's arguments may name, filled in per video.
PLACEHOLDERS = ("path", "camera", "name", "id", "seq", "recorded_start", "sha256")


class CommandConfig(_Strict):
    program: str = Field(
        min_length=1, max_length=4096, description="one of the programs the operator allows"
    )
    args: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=lambda: ["{path}"],
        max_length=20,
        description="its arguments; {path}, {camera}, {name}, {id}, {seq}, {recorded_start} "
        "and {sha256} are filled in",
    )
    timeout_s: int = Field(default=300, ge=1, le=3600)

    @field_validator("args")
    @classmethod
    def _known_placeholders(cls, args: list[str]) -> list[str]:
        for arg in args:
            try:
                names = [field for _, field, _, _ in string.Formatter().parse(arg) if field]
            except ValueError as exc:
                raise ValueError(f"{arg!r}: {exc}") from None
            unknown = sorted(set(names) - set(PLACEHOLDERS))
            if unknown:
                raise ValueError(f"{arg!r} names {', '.join(unknown)}; known: {PLACEHOLDERS}")
        return args


class CommandSink(SinkKind):
    """Run a program the operator allows (VPACK_SINK_COMMANDS) with the video's path and
    facts as arguments and VPACK_* variables: no shell, a timeout, exit 0 = delivered.
    VPACK_EVENT_ID repeats on retry, so the program can skip what it has done."""

    name = "command"
    label = "Command"
    Config = CommandConfig

    def check(self) -> None:
        assert isinstance(self.config, CommandConfig)
        allowed = [p for p in self.settings.sink_commands.split(":") if p]
        if not allowed:
            raise DeliveryFailed("this server runs no commands (VPACK_SINK_COMMANDS is empty)")
        if self.config.program not in allowed:
            raise DeliveryFailed(
                f"{self.config.program} is not a program this server allows "
                f"(VPACK_SINK_COMMANDS: {', '.join(allowed)})"
            )
        if not os.access(self.config.program, os.X_OK):
            raise DeliveryFailed(f"{self.config.program} is not an executable file here")

    async def deliver(self, video: Published) -> str:
        assert isinstance(self.config, CommandConfig)
        self.check()
        facts = {
            "path": str(video.path),
            "camera": video.camera,
            "name": video.name,
            "id": str(video.video_id),
            "seq": str(video.seq),
            "recorded_start": _iso(video.recorded_start) or "",
            "sha256": video.sha256 or "",
        }
        argv = [arg.format_map(facts) for arg in self.config.args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env |= {f"VPACK_VIDEO_{k.upper()}": v for k, v in facts.items()}
        env["VPACK_EVENT_ID"] = f"video-{video.video_id}"
        process = await asyncio.create_subprocess_exec(
            self.config.program,
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), self.config.timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise DeliveryFailed(
                f"{self.config.program} ran past {self.config.timeout_s} s and was stopped"
            ) from None
        if process.returncode != 0:
            tail = err.decode("utf-8", "replace").strip()[-500:]
            raise DeliveryFailed(f"{self.config.program} exited {process.returncode}: {tail}")
        return f"{self.config.program} exited 0"


KINDS: dict[str, type[SinkKind]] = {
    k.name: k for k in (FolderSink, VpackQueueSink, WebhookSink, CommandSink)
}
