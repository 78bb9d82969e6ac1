"""A Dahua NVR or IP camera speaking Dahua's HTTP API (CGI) over HTTP, to test clients.

Where each behaviour comes from:
- Dahua's HTTP API for IPC & SD & NVR (v2.x; "DAHUA HTTP API FOR DVR" v1.29 before
  it), as ../shared/PROVIDERS.md ("Dahua") and issue 24 transcribe it (the
  document's own text was not at hand here beyond v1.29's history and contents):
  Digest on every `/cgi-bin/*` URL, MD5 with qop="auth"; answers are text, one
  `key=value` per line, CRLF; a malformed request answers `Error\r\nBad Request!`,
  a user without the right for it `Error\r\nInvalid Authority!`; some firmware
  answers a search with no match as HTTP 200 and an `Error` body.
  `magicBox.cgi?action=getSystemInfo` (deviceType, processor, serialNumber,
  updateSerial), `getDeviceType` (type=), `getSoftwareVersion`
  (version=<v>,build:<date>, v1.29 §9.8.9), `getSerialNo` (sn=), `getMachineName`
  (name=). `configManager.cgi?action=getConfig&name=ChannelTitle` ->
  `table.ChannelTitle[<index from 0>].Name=<name>` (searches count channels from 1).
  `global.cgi?action=getCurrentTime` -> `result=<local time>`: the device's own
  wall clock, in the zone it is set to, without an offset (written here with month
  and day unpadded, as the document's example `2011-7-3 21:02:32`, so clients
  parse both forms).
  Find media files: `mediaFileFind.cgi?action=factory.create` -> `result=<object>`;
  `action=findFile&object=<o>&condition.Channel=<n>&condition.StartTime=<local>&
  condition.EndTime=<local>&condition.Types[0]=dav` -> `OK`;
  `action=findNextFile&object=<o>&count=<at most 100>` -> `found=<n>` then
  `items[<i>].Channel|StartTime|EndTime|Type|FilePath|Length|Duration|Events[0]|
  Flags[0]`, until `found=0`; then `action=close` and `action=destroy`, each `OK`.
  Load file: `GET /cgi-bin/RPC_Loadfile<FilePath>` -> the file's bytes;
  `loadfile.cgi?action=startLoad&channel=<n>&startTime=<local>&endTime=<local>&
  subtype=0` -> the recording of that time range as a DAV stream.
- pyintelbras' example "4.10.5 Find Media Files" (Intelbras runs Dahua firmware):
  factory.create answers the object number, which findFile then names.
- node-dahua-api (nayrnet) README: findFiles' `count` is at most 100; Types are
  `dav`, `jpg`, `mp4` (newer firmware stores `.mp4`); the shape of FilePath
  (`/mnt/sd/2018-05-19/001/dav/10/10.36.45-10.45.00[R][0@0][0].dav`).
- scottlamb/retina issue #62: the challenge's realm is `Login to <serial>`; this
  emulator also sends an `opaque`, which the answer must echo (RFC 7616 §3.3), as
  Dahua's web server does.
- FFmpeg's `dhav` demuxer (libavformat/dhav.c) for the `.dav` media (see dhav.py).

Behaviour of real devices the documents leave open, and this emulator's choices:
a device keeps only a few finder objects (`max_finders`); past it factory.create
answers `Error\\r\\nBad Request!`, and objects not destroyed stay taken until it
reboots (so a client that leaks them stops finding anything). Five refused logins
lock the user for 30 minutes (the usual factory setting of the devices' account
lock); while locked every request answers 401, and insisting starts the lock
again. The body of that 401, `Error\\r\\nUser is locked!`, is this emulator's
choice: firmware words it differently or not at all. A recording still being
written is listed with its end at the device clock. A user without the playback
right gets 403 and `Invalid Authority!` on searches and downloads.

Knobs: a request refused (refuse_next), a recording still being written
(start_recording/finish_recording), a dropped stream (cut_next_downloads), a slow
device (delay), a lockout (lock_account), clock skew (clock_skew), no download by
file (by_file=False), an empty search as an Error body (empty_as_error).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import secrets
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.emulators.device_login import Challenge, DeviceDisk, DeviceLogins, LoginLock
from tests.emulators.serving import BackgroundServer, Cut, ServedEmulator, send_bytes
from tests.media import make_recording
from tests.providers.dahua.dhav import write_dhav

BAD_REQUEST = "Error\r\nBad Request!\r\n"
INVALID_AUTHORITY = "Error\r\nInvalid Authority!\r\n"
LOCKED = "Error\r\nUser is locked!\r\n"
UNAUTHORIZED = "Error\r\n401 Unauthorized\r\n"
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')
_LOCAL = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})")


@dataclass
class User:
    name: str
    password: str
    playback: bool = True


@dataclass
class Recording:
    """One file on the device's disk: a time range of one channel."""

    channel: int  # from 1, as searches count
    start: datetime  # aware
    end: datetime | None  # None while it is still being written
    kind: str = "dav"  # "dav" | "mp4"
    data: bytes = b""
    path: str = ""


@dataclass
class _Finder:
    user: str
    results: list[Recording] | None = None  # None until findFile
    position: int = 0


class DahuaDevice(DeviceLogins, DeviceDisk[Recording], ServedEmulator):
    """One NVR or camera; `with DahuaDevice() as dev:` serves it on a free port."""

    def __init__(
        self,
        *,
        users: list[User] | None = None,
        device_type: str = "DHI-NVR4108-8P-4KS2",
        serial: str = "7J0A2B3PAZ4C5D6",
        version: str = "4.001.0000000.3",
        build: str = "2023-08-21",
        machine_name: str = "NVR-Packing",
        time_zone: str = "Asia/Ho_Chi_Minh",
        channels: int = 8,
        max_finders: int = 4,
        page_max: int = 100,
        lock_after: int = 5,
        lock_seconds: float = 1800.0,
        nonce_ttl: float = 300.0,
        by_file: bool = True,
        empty_as_error: bool = True,
    ) -> None:
        self.users = {u.name: u for u in users or [User("admin", "Vpack-12345")]}
        self.device_type, self.serial = device_type, serial
        self.version, self.build, self.machine_name = version, build, machine_name
        self.tz = ZoneInfo(time_zone)
        self.capacity = channels
        self.max_finders, self.page_max = max_finders, page_max
        self.lock_after, self.lock_seconds, self.nonce_ttl = lock_after, lock_seconds, nonce_ttl
        self.by_file, self.empty_as_error = by_file, empty_as_error
        self.realm = f"Login to {serial}"
        self.opaque = secrets.token_hex(16)
        self.clock_skew = timedelta(0)  # the device clock minus the true time
        self.delay = 0.0  # seconds every answer waits
        self.credentialed_requests = 0
        self.failed_logins = 0
        self.calls: Counter[str] = Counter()  # "findFile", "RPC_Loadfile", ... per request
        self.finders_created = 0
        self._lock = threading.RLock()
        self._titles: dict[int, str] = {}
        self._recordings: list[Recording] = []
        self._finders: dict[int, _Finder] = {}
        self._next_object = 8137
        self._locks: dict[str, LoginLock] = {}
        self._nonces: dict[str, Challenge] = {}
        self._cuts: list[Cut] = []
        self._refusals: Counter[str] = Counter()
        self._server = BackgroundServer(self._app(), "dahua-emulator")

    # ------------------------------------------------------------ arranging
    def add_channel(self, name: str) -> int:
        with self._lock:
            if len(self._titles) >= self.capacity:
                raise ValueError(f"the device has {self.capacity} channels")
            number = max(self._titles, default=0) + 1
            self._titles[number] = name
            return number

    def channel_named(self, name: str) -> int:
        with self._lock:
            for number, title in self._titles.items():
                if title == name:
                    return number
        raise KeyError(name)

    def add_recording(
        self, channel: int, start: datetime, seconds: float, *, kind: str = "dav"
    ) -> Recording:
        """A finished recording of `seconds` from `start` (aware, by the device clock)."""
        recording = Recording(channel, start, start + timedelta(seconds=seconds), kind)
        recording.data = self._media(recording)
        recording.path = self._file_path(recording)
        with self._lock:
            self._check(channel)
            self._recordings.append(recording)
        return recording

    def start_recording(self, channel: int, start: datetime) -> Recording:
        """A recording still being written: listed with its end at the device clock."""
        recording = Recording(channel, start, None)
        with self._lock:
            self._check(channel)
            self._recordings.append(recording)
        return recording

    def finish_recording(self, recording: Recording, end: datetime | None = None) -> None:
        end = end or self.now()
        closed = Recording(recording.channel, recording.start, end, recording.kind)
        data = self._media(closed)
        with self._lock:
            recording.end, recording.data = end, data
            recording.path = self._file_path(recording)

    def open_finders(self) -> int:
        """Finder objects created and not yet destroyed."""
        with self._lock:
            return len(self._finders)

    # ------------------------------------------------------------ knobs
    def refuse_next(self, action: str, times: int = 1) -> None:
        """The next `times` requests of `action` (e.g. "findNextFile") answer Bad Request."""
        with self._lock:
            self._refusals[action] += times

    # ------------------------------------------------------------ clock
    def local_text(self, when: datetime) -> str:
        """A time as the device writes it: its own zone, month and day not padded."""
        t = when.astimezone(self.tz)
        return f"{t.year}-{t.month}-{t.day} {t:%H:%M:%S}"

    def _parse_local(self, text: str) -> datetime | None:
        found = _LOCAL.fullmatch(text.strip())
        if found is None:
            return None
        y, mo, d, h, mi, s = (int(p) for p in found.groups())
        try:
            return datetime(y, mo, d, h, mi, s, tzinfo=self.tz)
        except ValueError:
            return None

    # ------------------------------------------------------------ running
    def _app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=["GET", "POST"])])

    async def _handle(self, request: Request) -> Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        user = self.users[self._username(request)]
        path: str = request.scope["path"]
        if path.startswith("/cgi-bin/RPC_Loadfile/"):
            self.calls["RPC_Loadfile"] += 1
            if not self.by_file:
                return _text(BAD_REQUEST, 404)
            return await self._load_file(user, path.removeprefix("/cgi-bin/RPC_Loadfile"))
        handlers = {
            "/cgi-bin/magicBox.cgi": self._magic_box,
            "/cgi-bin/configManager.cgi": self._config,
            "/cgi-bin/global.cgi": self._global,
            "/cgi-bin/mediaFileFind.cgi": self._find,
            "/cgi-bin/loadfile.cgi": self._load_by_time,
        }
        handler = handlers.get(path)
        if handler is None:
            return _text(BAD_REQUEST, 404)
        query = {k: v for k, v in request.query_params.items()}
        action = query.get("action", "")
        self.calls[action] += 1
        with self._lock:
            refuse = self._refusals[action] > 0
            self._refusals[action] -= refuse
        if refuse:
            return _text(BAD_REQUEST, 400)
        result: Response = await handler(user, query)
        return result

    # ------------------------------------------------------------ authentication
    def _username(self, request: Request) -> str:
        params = _params(request.headers.get("authorization", ""))
        return params.get("username", "")

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return self._challenge()
        with self._lock:
            self.credentialed_requests += 1
        verdict = self._verify(header, request)  # "ok" | "stale" | "wrong"
        refused = self._judge_login(self._username(request), verdict != "wrong")
        if refused is not None:
            return self._challenge(LOCKED if refused.until else UNAUTHORIZED)
        if verdict == "stale":
            return self._challenge(stale=True)
        return None

    def _verify(self, header: str, request: Request) -> str:
        scheme, _, rest = header.partition(" ")
        p = _params(rest)
        user = self.users.get(p.get("username", ""))
        needed = ("realm", "nonce", "uri", "response", "qop", "nc", "cnonce", "opaque")
        if scheme.lower() != "digest" or user is None or any(k not in p for k in needed):
            return "wrong"
        if p.get("algorithm", "MD5").upper() != "MD5" or p["qop"] != "auth":
            return "wrong"
        target = request.scope["raw_path"].decode("latin-1")
        if request.scope.get("query_string"):
            target += "?" + request.scope["query_string"].decode("latin-1")
        if p["uri"] != target or p["realm"] != self.realm or p["opaque"] != self.opaque:
            return "wrong"
        ha1 = _md5(f"{user.name}:{self.realm}:{user.password}")
        ha2 = _md5(f"{request.method}:{p['uri']}")
        expected = _md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
        if not secrets.compare_digest(expected, p["response"].lower()):
            return "wrong"
        return "stale" if self._nonce_stale(p["nonce"], p["nc"]) else "ok"

    def _challenge(self, body: str = UNAUTHORIZED, stale: bool = False) -> Response:
        nonce = self._new_nonce()
        header = (
            f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", opaque="{self.opaque}"'
            + (', stale="TRUE"' if stale else "")
        )
        return _text(body, 401, {"WWW-Authenticate": header})

    # ------------------------------------------------------------ device
    async def _magic_box(self, user: User, query: dict[str, str]) -> Response:
        answers = {
            "getSystemInfo": {
                "deviceType": self.device_type,
                "processor": "ST7108",
                "serialNumber": self.serial,
                "updateSerial": self.device_type.removeprefix("DHI-"),
            },
            "getDeviceType": {"type": self.device_type},
            "getSoftwareVersion": {"version": f"{self.version},build:{self.build}"},
            "getSerialNo": {"sn": self.serial},
            "getMachineName": {"name": self.machine_name},
        }
        found = answers.get(query.get("action", ""))
        return _lines(found) if found is not None else _text(BAD_REQUEST, 400)

    async def _config(self, user: User, query: dict[str, str]) -> Response:
        if query.get("action") != "getConfig" or query.get("name") != "ChannelTitle":
            return _text(BAD_REQUEST, 400)
        with self._lock:
            titles = dict(self._titles)
        return _lines({f"table.ChannelTitle[{n - 1}].Name": t for n, t in sorted(titles.items())})

    async def _global(self, user: User, query: dict[str, str]) -> Response:
        if query.get("action") != "getCurrentTime":
            return _text(BAD_REQUEST, 400)
        return _lines({"result": self.local_text(self.now())})

    # ------------------------------------------------------------ search
    async def _find(self, user: User, query: dict[str, str]) -> Response:
        action = query.get("action", "")
        if action == "factory.create":
            with self._lock:
                if len(self._finders) >= self.max_finders:
                    return _text(BAD_REQUEST, 400)
                self._next_object += 1
                self.finders_created += 1
                self._finders[self._next_object] = _Finder(user.name)
                return _lines({"result": str(self._next_object)})
        try:
            number = int(query.get("object", ""))
        except ValueError:
            return _text(BAD_REQUEST, 400)
        with self._lock:
            finder = self._finders.get(number)
        if finder is None or finder.user != user.name:
            return _text(BAD_REQUEST, 400)
        if action == "findFile":
            return self._find_file(user, finder, query)
        if action == "findNextFile":
            return self._find_next(finder, query)
        if action == "close":
            finder.results, finder.position = None, 0
            return _text("OK\r\n")
        if action == "destroy":
            with self._lock:
                self._finders.pop(number, None)
            return _text("OK\r\n")
        return _text(BAD_REQUEST, 400)

    def _find_file(self, user: User, finder: _Finder, query: dict[str, str]) -> Response:
        if not user.playback:
            return _text(INVALID_AUTHORITY, 403)
        since = self._parse_local(query.get("condition.StartTime", ""))
        until = self._parse_local(query.get("condition.EndTime", ""))
        try:
            channel = int(query.get("condition.Channel", ""))
        except ValueError:
            return _text(BAD_REQUEST, 400)
        if since is None or until is None or until < since:
            return _text(BAD_REQUEST, 400)
        types = {v for k, v in query.items() if k.startswith("condition.Types[")} or {"dav"}
        now = self.now()
        with self._lock:
            matches = [
                r
                for r in self._recordings
                if r.channel == channel
                and r.kind in types
                and r.start <= until
                and (r.end or now) >= since
            ]
        matches.sort(key=lambda r: r.start)
        finder.results, finder.position = matches, 0
        if not matches and self.empty_as_error:
            return _text("Error\r\n")  # HTTP 200: firmware that says "nothing found" so
        return _text("OK\r\n")

    def _find_next(self, finder: _Finder, query: dict[str, str]) -> Response:
        if finder.results is None:
            return _text(BAD_REQUEST, 400)
        try:
            count = int(query.get("count", "100"))
        except ValueError:
            return _text(BAD_REQUEST, 400)
        if count < 1:
            return _text(BAD_REQUEST, 400)
        count = min(count, self.page_max)
        page = finder.results[finder.position : finder.position + count]
        finder.position += len(page)
        now = self.now()
        lines: dict[str, str] = {"found": str(len(page))}
        for i, r in enumerate(page):
            end = r.end or now
            item = f"items[{i}]."
            lines.update(
                {
                    item + "Channel": str(r.channel),
                    item + "StartTime": self.local_text(r.start),
                    item + "EndTime": self.local_text(end),
                    item + "Type": r.kind,
                    item + "FilePath": r.path or self._file_path(r, end),
                    item + "Length": str(len(r.data)),
                    item + "Duration": str(int((end - r.start).total_seconds())),
                    item + "Events[0]": "AlarmLocal" if i % 2 else "Manual",
                    item + "Flags[0]": "Timing",
                }
            )
        return _lines(lines)

    # ------------------------------------------------------------ download
    async def _load_file(self, user: User, file_path: str) -> Response:
        if not user.playback:
            return _text(INVALID_AUTHORITY, 403)
        wanted = unquote(file_path)
        with self._lock:
            found = [r for r in self._recordings if r.path and r.path == wanted]
        if not found:
            return _text(BAD_REQUEST, 404)
        return self._send(found[0].data)

    async def _load_by_time(self, user: User, query: dict[str, str]) -> Response:
        if query.get("action") != "startLoad":
            return _text(BAD_REQUEST, 400)
        if not user.playback:
            return _text(INVALID_AUTHORITY, 403)
        since = self._parse_local(query.get("startTime", ""))
        until = self._parse_local(query.get("endTime", ""))
        try:
            channel = int(query.get("channel", ""))
        except ValueError:
            return _text(BAD_REQUEST, 400)
        if since is None or until is None:
            return _text(BAD_REQUEST, 400)
        with self._lock:
            found = [
                r
                for r in self._recordings
                if r.channel == channel and r.kind == "dav" and r.end is not None
                and r.start <= since and r.end >= until
            ]  # fmt: skip
        if not found:
            return _text(BAD_REQUEST, 404)
        # The range of one file: the device sends that file's DAV stream.
        return self._send(found[0].data)

    def _send(self, data: bytes) -> Response:
        with self._lock:
            cut = self._cuts.pop(0) if self._cuts else None
        headers = {"Content-Length": str(len(data))}
        return StreamingResponse(
            send_bytes(data, cut), media_type="Application/octet-stream", headers=headers
        )

    # ------------------------------------------------------------ media
    def _media(self, recording: Recording) -> bytes:
        assert recording.end is not None
        seconds = (recording.end - recording.start).total_seconds()
        buffer = io.BytesIO()
        if recording.kind == "mp4":
            make_recording(buffer, seconds=seconds, container="mp4", audio_codec="aac")
        else:
            local = recording.start.astimezone(self.tz).replace(tzinfo=None)
            write_dhav(buffer, local, seconds, channel=recording.channel - 1)
        return buffer.getvalue()

    def _file_path(self, recording: Recording, end: datetime | None = None) -> str:
        start = recording.start.astimezone(self.tz)
        stop = (end or recording.end or self.now()).astimezone(self.tz)
        return (
            f"/mnt/dvr/mmc0p2_0/{start:%Y-%m-%d}/{recording.channel - 1:03d}/"
            f"{recording.kind}/{start:%H}/{start:%H.%M.%S}-{stop:%H.%M.%S}"
            f"[R][0@0][0].{recording.kind}"
        )

    def _check(self, channel: int) -> None:
        if channel not in self._titles:
            raise KeyError(f"no channel {channel}")

    def days_with_recordings(self, channel: int) -> set[date]:
        with self._lock:
            return {
                r.start.astimezone(self.tz).date() for r in self._recordings if r.channel == channel
            }


def _params(text: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(text)
    }


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - Digest's own MD5


def _text(body: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="text/plain")


def _lines(values: dict[str, str]) -> Response:
    return _text("".join(f"{k}={v}\r\n" for k, v in values.items()))
