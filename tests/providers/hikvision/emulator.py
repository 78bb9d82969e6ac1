"""A Hikvision NVR or IP camera speaking ISAPI over HTTP(S), served by uvicorn, to test clients.

Follows Hikvision's own documents:
- ISAPI Developer Guide, quick start: §4.1 digest authentication (RFC 7616);
  §4.2.1 XML bodies, UTF-8, namespace http://www.isapi.org/ver20/XMLSchema
  (older firmware: http://www.hikvision.com/ver20/XMLSchema, `namespace=`);
  §4.2.4 ISO 8601 times; §4.2.6 errors: an HTTP status plus `ResponseStatus`
  {requestURL, statusCode, statusString, subStatusCode};
  §4.4 playback: `POST /ISAPI/ContentMgmt/record/tracks/<track>/dailyDistribution`
  (trackDailyParam -> trackDailyDistribution/dayList), `POST /ISAPI/ContentMgmt/search`
  (CMSearchDescription with searchID, trackIDList or trackList, timeSpanList,
  maxResults, `searchResultPostion` as the devices spell it -> CMSearchResult with
  searchID in braces, responseStatus, responseStatusStrg OK | MORE | NO MATCHES,
  numOfMatches, matchList/searchMatchItem{sourceID, trackID, timeSpan,
  mediaSegmentDescriptor{contentType, codecType, playbackURI, lockStatus, name}});
  track id = channel * 100 + stream (1 = main).
- Intelligent Security API, NVR request URL reference (chapter 15):
  `GET /ISAPI/ContentMgmt/download` with an XML_downloadRequest body -> the file;
  `/ISAPI/ContentMgmt/download/capabilities` (isSupportDownloadbyFileName,
  isSupportDownloadbyTime); `/ISAPI/ContentMgmt/InputProxy/channels`
  (XML_InputProxyChannelList, NVR digital channels); `/ISAPI/Streaming/channels`;
  `/ISAPI/System/deviceInfo`; `/ISAPI/System/time`; XML_ResponseStatus status codes
  1 OK, 2 Device Busy, 3 Device Error, 4 Invalid Operation, 5 Invalid XML Format,
  6 Invalid XML Content, 7 Reboot Required; `GET /ISAPI/ContentMgmt/capabilities`
  "Get storage capability" -> XML_RacmCap (§15.2.1), whose `isSupportIOInputProxy`
  is returned "true" only where ContentMgmt/IOProxy is served (§13.1 I/O settings);
  `GET /ISAPI/System/capabilities` -> XML_DeviceCap, with SysCap and
  `isSupportSubscribeEvent` (§12, alarm/event subscription).
- Hikvision's NVR web client (its device-served JavaScript) for DeviceCap's nodes:
  SysCap/VideoCap/videoInputPortNums (analog inputs), RacmCap/inputProxyNums
  (digital channels), RacmCap/isSupportIOInputProxy|isSupportIOOutputProxy,
  EventCap/isSupportVideoLoss, isSupportSnapshot.
- Intelligent Security API (Access Control on Person) Developer Guide §6.2.35,
  §6.2.37: `GET /ISAPI/Event/triggers` -> EventTriggerList of EventTrigger {id
  ("VMD-1"), eventType (VMD, videoloss, ...), eventDescription ("VMD Event trigger
  Information"), videoInputChannelID, dynVideoInputChannelID,
  EventTriggerNotificationList}; Device Network SDK (Behavior Analysis) Developer
  Guide V6.1.4, XML_EventTriggerNotification {id, notificationMethod (center,
  record, beep, ...), notificationRecurrence beginning, videoInputID (required
  with "record")}.
- `/ISAPI/Security/userCheck` and the illegal-login lock: a refused login answers
  401 with `userCheck` {statusValue, statusString, lockStatus lock|unlock,
  unlockTime (seconds), retryLoginTime (tries left)}.
- RFC 7616 (Digest): challenge realm, nonce, qop="auth", algorithm="MD5" (what
  NVRs offer: hikvision_next issue #50); the answer must use that algorithm and
  qop with nc and cnonce; a correct answer to an expired nonce, or one repeating
  a nonce count (a replay, §3.4), gets stale=TRUE (§3.3) and costs no try;
  nonces past their lifetime are forgotten. RFC 7617 Basic, where configured.

Behaviour integrators report from real devices, which the documents leave open:
times written with "Z" in searches and playback URIs are the device's local wall
clock (`z_is_local=False` for firmware that really means UTC); searchID must be
GUID-shaped; at most 64 matches per page; a search without the position element
starts at 0 (HikLoad, hikload/hikvisionapi/_ContentMgmt.py, sends none), so the
dictionary spelling `searchResultPosition` (pyHik's) is an unknown element and
every page is the first; some firmware take the download as GET with a
body, some only as POST (`download_methods`); the download answers
`Content-Type: Opaque/data` without a Content-Length, and the stream starts with
Hikvision's 40-byte "IMKH" header before the MPEG-PS pack headers; the recording
being written appears in searches with its end moving with the clock; retrying
a wrong password during a lock starts the lock again. Choices of this emulator
where nothing is documented: a missing file answers 404 with subStatusCode
`notFound`; a user without playback rights gets 403 `lowPrivilege`; the
capabilities advertise only what this emulator serves (no snapshots, no event
subscription or alertStream, no IOProxy); every channel has motion detection,
linked to the centre and to recording, and video loss, linked to the centre.

Fault knobs: cut the next downloads after N bytes (dropped connection or a
clean early end), slow every answer, answer Device Busy, lock the account.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import re
import secrets
import tempfile
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.emulators.device_login import Challenge, DeviceDisk, DeviceLogins, LoginLock
from tests.emulators.serving import (
    BackgroundServer,
    Cut,
    ServedEmulator,
    self_signed_certificate,
    send_bytes,
)
from tests.media import make_recording

ISAPI_NS = "http://www.isapi.org/ver20/XMLSchema"
HIKVISION_NS = "http://www.hikvision.com/ver20/XMLSchema"
IMKH_HEADER = b"IMKH" + bytes(36)  # Hikvision's media header before the PS pack headers
_GUID = re.compile(
    r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?"
)
_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')
_DIGESTS: dict[str, Callable[[bytes], Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_STATUS_STRINGS = {
    1: "OK",
    2: "Device Busy",
    3: "Device Error",
    4: "Invalid Operation",
    5: "Invalid XML Format",
    6: "Invalid XML Content",
    7: "Reboot Required",
}


@dataclass
class Channel:
    number: int
    name: str
    address: str  # the IP camera behind an NVR channel


@dataclass
class Recording:
    """One file on the device's disk: a time range of one channel."""

    channel: int
    start: datetime  # aware
    end: datetime | None  # None while it is still being written
    name: str
    data: bytes = b""  # the stream as downloaded (IMKH header + MPEG-PS) once closed
    audio: bool = True

    @property
    def track(self) -> int:
        return self.channel * 100 + 1


@dataclass
class User:
    name: str
    password: str
    playback: bool = True  # the "remote playback" permission


class HikvisionDevice(DeviceLogins, DeviceDisk[Recording], ServedEmulator):
    """One NVR (kind="nvr") or camera (kind="camera"); `with HikvisionDevice() as dev:`."""

    def __init__(
        self,
        *,
        kind: str = "nvr",
        users: list[User] | None = None,
        model: str = "DS-7608NI-K2",
        serial: str = "DS-7608NI-K20820231130CCRRJ12345678WCVU",
        firmware: str = "V4.62.210",
        device_name: str = "Network Video Recorder",
        time_zone: str = "Asia/Ho_Chi_Minh",
        auth: str = "digest",  # "digest" | "basic"
        namespace: str = ISAPI_NS,
        z_is_local: bool = True,
        max_results: int = 64,
        download_methods: frozenset[str] = frozenset({"GET", "POST"}),
        nonce_ttl: float = 300.0,
        lock_after: int = 5,
        lock_seconds: float = 1800.0,
        lan_address: str = "192.168.1.64",
        channel_capacity: int = 8,  # IP cameras the NVR takes: the "08" of DS-7608NI
        https: bool = False,
        cert_dir: Path | None = None,
    ) -> None:
        if kind not in ("nvr", "camera") or auth not in ("digest", "basic"):
            raise ValueError("kind is nvr|camera, auth is digest|basic")
        self.kind = kind
        self.users = {u.name: u for u in users or [User("admin", "Vpack-12345")]}
        self.model, self.serial, self.firmware = model, serial, firmware
        self.device_name = device_name
        self.tz = ZoneInfo(time_zone)
        self.auth_scheme = auth
        self.namespace = namespace
        self.z_is_local = z_is_local
        self.max_results = max_results
        self.download_methods = download_methods
        self.nonce_ttl = nonce_ttl
        self.lock_after = lock_after
        self.lock_seconds = lock_seconds
        self.lan_address = lan_address
        self.channel_capacity = channel_capacity if kind == "nvr" else 0
        self.realm = model
        self.https = https
        self.cert_dir = cert_dir
        self.clock_skew = timedelta(0)  # the device clock minus the true time
        self.credentialed_requests = 0  # requests that carried an Authorization header
        self._started = time.monotonic()  # deviceUpTime counts from here
        self.delay = 0.0  # seconds every answer waits (a slow device or link)
        self.calls: Counter[str] = Counter()  # "search", "download", ... per request made
        self.failed_logins = 0  # requests whose credentials were refused
        self.download_requests: list[tuple[str, str]] = []  # (method, playbackURI)
        self._lock = threading.RLock()  # knobs run on the test's thread, handlers on uvicorn's
        self._channels: dict[int, Channel] = {}
        self._recordings: list[Recording] = []
        self._sequence = 0
        self._nonces: dict[str, Challenge] = {}
        self._locks: dict[str, LoginLock] = {}
        self._cuts: list[Cut] = []
        self._busy = 0
        self._server = BackgroundServer(self._app(), "hikvision-emulator")
        if kind == "camera":
            self._channels[1] = Channel(1, "Camera 01", "127.0.0.1")

    # ------------------------------------------------------------ arranging
    def add_channel(self, name: str) -> int:
        """An IP camera added to the NVR; returns its channel number."""
        if self.kind != "nvr":
            raise ValueError("a camera has one channel")
        with self._lock:
            if len(self._channels) >= self.channel_capacity:
                raise ValueError(f"the NVR takes {self.channel_capacity} cameras")
            number = max(self._channels, default=0) + 1
            self._channels[number] = Channel(number, name, f"192.168.254.{number + 1}")
            return number

    def rename_channel(self, number: int, name: str) -> None:
        with self._lock:
            self._channels[number].name = name

    def channel_named(self, name: str) -> int:
        with self._lock:
            for channel in self._channels.values():
                if channel.name == name:
                    return channel.number
        raise KeyError(name)

    def add_recording(
        self, channel: int, start: datetime, seconds: float, *, audio: bool = True
    ) -> Recording:
        """A finished recording of `seconds` from `start` (aware) on `channel`."""
        end = start + timedelta(seconds=seconds)
        recording = Recording(channel, start, end, self._next_name(channel), audio=audio)
        recording.data = _stream(seconds, audio)
        with self._lock:
            self._check_channel(channel)
            self._recordings.append(recording)
        return recording

    def start_recording(self, channel: int, start: datetime, *, audio: bool = True) -> Recording:
        """A recording still being written: its end follows the device clock until closed."""
        recording = Recording(channel, start, None, self._next_name(channel), audio=audio)
        with self._lock:
            self._check_channel(channel)
            self._recordings.append(recording)
        return recording

    def finish_recording(self, recording: Recording, end: datetime | None = None) -> None:
        end = end or self.now()
        data = _stream((end - recording.start).total_seconds(), recording.audio)
        with self._lock:
            recording.data, recording.end = data, end

    # ------------------------------------------------------------ fault knobs
    def busy_next(self, requests: int) -> None:
        """The next requests answer 503 Device Busy (statusCode 2)."""
        with self._lock:
            self._busy += requests

    # ------------------------------------------------------------ clock
    def device_text(self, when: datetime) -> str:
        """A time as the device writes it in XML."""
        shown = when.astimezone(self.tz if self.z_is_local else UTC)
        return shown.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _uri_time(self, when: datetime) -> str:
        return when.astimezone(self.tz if self.z_is_local else UTC).strftime("%Y%m%dT%H%M%SZ")

    def _parse_time(self, text: str) -> datetime:
        text = text.strip()
        if text.endswith("Z"):
            naive = datetime.strptime(text[:-1].split(".")[0], "%Y-%m-%dT%H:%M:%S")
            return naive.replace(tzinfo=self.tz if self.z_is_local else UTC)
        parsed = datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=self.tz)

    # ------------------------------------------------------------ running
    def start(self) -> HikvisionDevice:
        if self.https:
            folder = self.cert_dir or Path(tempfile.mkdtemp(prefix="hikvision-tls-"))
            certfile, keyfile = self_signed_certificate(folder)
            self._server.start(certfile=certfile, keyfile=keyfile)
        else:
            self._server.start()
        return self

    def _app(self) -> Starlette:
        methods = ["GET", "POST", "PUT", "DELETE"]
        return Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    # ------------------------------------------------------------ dispatch
    async def _handle(self, request: Request) -> Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        path = request.url.path
        denied = self._authenticate(request)
        if isinstance(denied, Response):
            return denied
        user = denied
        with self._lock:
            busy = self._busy > 0
            self._busy -= busy
        if busy:
            return self._status(path, 503, 2, "deviceBusy")
        routes: dict[str, tuple[frozenset[str], Callable[..., Any]]] = {
            "/ISAPI/System/deviceInfo": (frozenset({"GET"}), self._device_info),
            "/ISAPI/System/time": (frozenset({"GET"}), self._time),
            "/ISAPI/System/status": (frozenset({"GET"}), self._device_status),
            "/ISAPI/System/capabilities": (frozenset({"GET"}), self._device_cap),
            "/ISAPI/Event/triggers": (frozenset({"GET"}), self._event_triggers),
            "/ISAPI/Security/userCheck": (frozenset({"GET"}), self._user_check_ok),
            "/ISAPI/Streaming/channels": (frozenset({"GET"}), self._streaming_channels),
            "/ISAPI/ContentMgmt/InputProxy/channels": (frozenset({"GET"}), self._proxy_channels),
            "/ISAPI/ContentMgmt/search": (frozenset({"POST"}), self._search),
            "/ISAPI/ContentMgmt/download": (self.download_methods, self._download),
            "/ISAPI/ContentMgmt/capabilities": (frozenset({"GET"}), self._content_cap),
            "/ISAPI/ContentMgmt/download/capabilities": (frozenset({"GET"}), self._capabilities),
        }
        daily = re.fullmatch(r"/ISAPI/ContentMgmt/record/tracks/(\d+)/dailyDistribution", path)
        if daily:
            route: tuple[frozenset[str], Callable[..., Any]] | None = (
                frozenset({"GET", "POST"}),
                lambda r, u: self._daily(r, int(daily.group(1))),
            )
        else:
            route = routes.get(path)
        if route is None:
            return self._status(path, 403, 4, "notSupport")
        allowed, handler = route
        if request.method not in allowed:
            return self._status(path, 405, 4, "methodNotAllowed")
        self.calls[path.rsplit("/", 1)[-1]] += 1
        result: Response = await handler(request, user)
        return result

    # ------------------------------------------------------------ authentication
    def _authenticate(self, request: Request) -> User | Response:
        header = request.headers.get("authorization", "")
        scheme, _, rest = header.partition(" ")
        if not header:
            return self._challenge(stale=False)
        with self._lock:
            self.credentialed_requests += 1  # what a lock-out counts against
        if scheme.lower() != self.auth_scheme:
            return self._challenge(stale=False)
        if scheme.lower() == "basic":
            name, right, stale = self._basic(rest)
        else:
            name, right, stale = self._digest(rest, request)
        user = self.users.get(name)
        refused = self._judge_login(name, user is not None and right)
        if refused is not None:
            return self._refused(refused, time.monotonic())
        if stale:
            return self._challenge(stale=True)
        assert user is not None
        return user

    def _basic(self, token: str) -> tuple[str, bool, bool]:
        try:
            name, _, password = base64.b64decode(token).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", False, False
        user = self.users.get(name)
        return name, user is not None and secrets.compare_digest(user.password, password), False

    def _digest(self, text: str, request: Request) -> tuple[str, bool, bool]:
        """(user name, answer right?, nonce stale?) for a Digest Authorization header."""
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _AUTH_PARAM.finditer(text)
        }
        name = params.get("username", "")
        user = self.users.get(name)
        # The challenge offers MD5 with qop="auth" (as NVRs do: hikvision_next issue #50,
        # MissiaL/hikvision-client's cassettes): another algorithm, or an RFC 2069
        # answer without qop, nc and cnonce, answers a challenge that was not made.
        algorithm = params.get("algorithm", "MD5").upper()
        sess = algorithm.endswith("-SESS")
        hasher = _DIGESTS.get(algorithm.removesuffix("-SESS"))
        wanted = ("nonce", "uri", "response", "realm", "qop", "nc", "cnonce")
        if user is None or algorithm != "MD5" or any(not params.get(k) for k in wanted):
            return name, False, False
        assert hasher is not None
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if params["uri"] != target or params["realm"] != self.realm:
            return name, False, False

        def h(value: str) -> str:
            return str(hasher(value.encode("utf-8")).hexdigest())

        nonce, qop = params["nonce"], params.get("qop")
        ha1 = h(f"{name}:{self.realm}:{user.password}")
        if sess:
            ha1 = h(f"{ha1}:{nonce}:{params.get('cnonce', '')}")
        ha2 = h(f"{request.method}:{params['uri']}")
        if qop != "auth":
            return name, False, False
        nc, cnonce = params["nc"], params["cnonce"]
        expected = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        if not secrets.compare_digest(expected, params["response"].lower()):
            return name, False, False
        return name, True, self._nonce_stale(nonce, nc)

    def _challenge(self, *, stale: bool, body: ET.Element | None = None) -> Response:
        """401 asking for credentials (a fresh nonce for Digest)."""
        if self.auth_scheme == "basic":
            header = f'Basic realm="{self.realm}"'
        else:
            nonce = self._new_nonce()
            header = (
                f'Digest qop="auth", realm="{self.realm}", nonce="{nonce}", '
                f'stale="{"TRUE" if stale else "FALSE"}", algorithm="MD5"'
            )
        if body is None:
            body = self._user_check(401, "Unauthorized", lockStatus="unlock")
        return self._xml(body, 401, {"WWW-Authenticate": header})

    def _refused(self, lock: LoginLock, now: float) -> Response:
        """401 for refused credentials; the body says whether the account is locked."""
        locked = bool(lock.until)
        body = self._user_check(
            401,
            "Unauthorized",
            isActivated="true",
            lockStatus="lock" if locked else "unlock",
            unlockTime=str(max(1, round(lock.until - now))) if locked else "0",
            retryLoginTime="0" if locked else str(max(0, self.lock_after - lock.failures)),
        )
        return self._challenge(stale=False, body=body)

    def _user_check(self, value: int, text: str, **fields: str) -> ET.Element:
        root = self._element("userCheck")
        _sub(root, "statusValue", str(value))
        _sub(root, "statusString", text)
        for key, item in fields.items():
            _sub(root, key, item)
        return root

    async def _user_check_ok(self, request: Request, user: User) -> Response:
        root = self._user_check(200, "OK", isActivated="true")
        return self._xml(root)

    # ------------------------------------------------------------ system
    async def _device_info(self, request: Request, user: User) -> Response:
        root = self._element("DeviceInfo")
        for tag, text in (
            ("deviceName", self.device_name),
            ("deviceID", str(uuid.uuid5(uuid.NAMESPACE_OID, self.serial))),
            ("model", self.model),
            ("serialNumber", self.serial),
            ("macAddress", "c0:56:e3:12:34:56"),
            ("firmwareVersion", self.firmware),
            ("firmwareReleasedDate", "build 231130"),
            ("encoderVersion", "V7.3"),
            ("encoderReleasedDate", "build 231101"),
            ("deviceType", "NVR" if self.kind == "nvr" else "IPCamera"),
            ("telecontrolID", "255"),
        ):
            _sub(root, tag, text)
        return self._xml(root)

    async def _device_status(self, request: Request, user: User) -> Response:
        """DeviceStatus as NVRs and cameras answer it (the shape of a real camera's
        answer recorded in MissiaL/hikvision-client's test cassettes; NVR monitoring,
        e.g. centreon-plugins' isapi modes, reads deviceUpTime and MemoryList)."""
        root = self._element("DeviceStatus")
        local = self.now().astimezone(self.tz)
        _sub(root, "currentDeviceTime", local.isoformat(timespec="seconds"))
        _sub(root, "deviceUpTime", str(int(time.monotonic() - self._started)))
        cpu = _sub(_sub(root, "CPUList"), "CPU")
        _sub(cpu, "cpuDescription", "ARM")
        _sub(cpu, "cpuUtilization", "7")
        memory = _sub(_sub(root, "MemoryList"), "Memory")
        _sub(memory, "memoryDescription", "DDR Memory")
        _sub(memory, "memoryUsage", "211.5")
        _sub(memory, "memoryAvailable", "300.5")
        return self._xml(root)

    async def _device_cap(self, request: Request, user: User) -> Response:
        """DeviceCap: only what this device answers is advertised, so a client that
        probes by capability (Hikvision's own web client reads SysCap/VideoCap,
        EventCap and RacmCap from here) goes nowhere the emulator does not serve."""
        root = self._element("DeviceCap")
        system = _sub(root, "SysCap")
        video = _sub(system, "VideoCap")
        # An NVR's cameras are digital channels (RacmCap/inputProxyNums), not analog inputs.
        _sub(video, "videoInputPortNums", "1" if self.kind == "camera" else "0")
        _sub(system, "isSupportSubscribeEvent", "false")  # no subscribeEventCap here
        self._racm_cap(_sub(root, "RacmCap"))
        events = _sub(root, "EventCap")
        for tag in ("isSupportMotionDetection", "isSupportVideoLoss"):  # as in the triggers
            _sub(events, tag, "true")
        _sub(root, "isSupportSnapshot", "false")  # no Streaming/channels/<ID>/picture
        return self._xml(root)

    async def _time(self, request: Request, user: User) -> Response:
        local = self.now().astimezone(self.tz)
        offset = local.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        # POSIX TZ strings count west of Greenwich as positive: UTC+7 is "CST-7:00:00".
        sign = "-" if minutes >= 0 else "+"
        posix = f"CST{sign}{abs(minutes) // 60}:{abs(minutes) % 60:02d}:00"
        root = self._element("Time")
        _sub(root, "timeMode", "NTP")
        _sub(root, "localTime", local.isoformat(timespec="seconds"))
        _sub(root, "timeZone", posix)
        return self._xml(root)

    async def _proxy_channels(self, request: Request, user: User) -> Response:
        if self.kind != "nvr":
            return self._status(request.url.path, 403, 4, "notSupport")
        root = self._element("InputProxyChannelList")
        with self._lock:
            channels = sorted(self._channels.values(), key=lambda c: c.number)
        for channel in channels:
            item = _sub(
                root, "InputProxyChannel", attrib={"version": "2.0", "xmlns": self.namespace}
            )
            _sub(item, "id", str(channel.number))
            _sub(item, "name", channel.name)
            source = _sub(item, "sourceInputPortDescriptor")
            for tag, text in (
                ("proxyProtocol", "HIKVISION"),
                ("addressingFormatType", "ipaddress"),
                ("ipAddress", channel.address),
                ("managePortNo", "8000"),
                ("srcInputPort", "1"),
                ("userName", "admin"),
                ("streamType", "auto"),
            ):
                _sub(source, tag, text)
            _sub(item, "enableAnr", "false")
        return self._xml(root)

    async def _streaming_channels(self, request: Request, user: User) -> Response:
        root = self._element("StreamingChannelList")
        with self._lock:
            channels = sorted(self._channels.values(), key=lambda c: c.number)
        for channel in channels:
            for stream in (1, 2):
                item = _sub(
                    root, "StreamingChannel", attrib={"version": "2.0", "xmlns": self.namespace}
                )
                _sub(item, "id", str(channel.number * 100 + stream))
                _sub(item, "channelName", channel.name)
                _sub(item, "enabled", "true")
                video = _sub(item, "Video")
                _sub(video, "enabled", "true")
                _sub(video, "videoInputChannelID", str(channel.number))
                _sub(video, "videoCodecType", "H.264")
        return self._xml(root)

    # ------------------------------------------------------------ events
    async def _event_triggers(self, request: Request, user: User) -> Response:
        """EventTriggerList: motion detection and video loss on every channel, as the
        ISAPI guide's example lists them; motion notifies the centre and starts
        recording that channel (videoInputID is required with "record")."""
        root = self._element("EventTriggerList")
        with self._lock:
            numbers = sorted(self._channels)
        for number in numbers:
            for event, linkage in (("VMD", ("center", "record")), ("videoloss", ("center",))):
                trigger = _sub(root, "EventTrigger")
                _sub(trigger, "id", f"{event}-{number}")
                _sub(trigger, "eventType", event)
                _sub(trigger, "eventDescription", f"{event} Event trigger Information")
                _sub(trigger, "videoInputChannelID", str(number))
                if self.kind == "nvr":  # an NVR's channels are dynamic (IP) inputs
                    _sub(trigger, "dynVideoInputChannelID", str(number))
                actions = _sub(trigger, "EventTriggerNotificationList")
                for method in linkage:
                    action = _sub(actions, "EventTriggerNotification")
                    _sub(action, "id", f"{method}-{number}" if method == "record" else method)
                    _sub(action, "notificationMethod", method)
                    _sub(action, "notificationRecurrence", "beginning")
                    if method == "record":
                        _sub(action, "videoInputID", str(number))
        return self._xml(root)

    # ------------------------------------------------------------ search
    async def _search(self, request: Request, user: User) -> Response:
        path = request.url.path
        if not user.playback:
            return self._status(path, 403, 4, "lowPrivilege")
        try:
            query = _parse(await request.body())
        except ET.ParseError:
            return self._status(path, 400, 5, "badXmlFormat")
        if query.tag != "CMSearchDescription":
            return self._status(path, 400, 6, "badXmlContent")
        search_id = (query.findtext("searchID") or "").strip()
        position_text = query.findtext("searchResultPostion")
        spans = query.findall("timeSpanList/timeSpan")
        tracks = [t.text or "" for t in query.findall("trackIDList/trackID")] or [
            t.text or "" for t in query.findall("trackList/trackID")
        ]
        try:
            if not _GUID.fullmatch(search_id) or len(spans) != 1:
                raise ValueError
            # No position (HikLoad sends none) is the first page, as on devices.
            position = int(position_text) if position_text is not None else 0
            wanted = min(int(query.findtext("maxResults") or "40"), self.max_results)
            start = self._parse_time(spans[0].findtext("startTime") or "")
            end = self._parse_time(spans[0].findtext("endTime") or "")
            track_ids = {int(t) for t in tracks}
            if position < 0 or wanted < 1 or not track_ids:
                raise ValueError
        except ValueError:
            return self._status(path, 400, 6, "badXmlContent")
        now = self.now()
        with self._lock:
            found = sorted(
                (
                    r
                    for r in self._recordings
                    if r.track in track_ids and r.start < end and (r.end or now) > start
                ),
                key=lambda r: (r.start, r.track),
            )
        page = found[position : position + wanted]
        root = self._element("CMSearchResult")
        _sub(root, "searchID", "{" + search_id.strip("{}").lower() + "}")
        if not page:
            _sub(root, "responseStatus", "false")
            _sub(root, "responseStatusStrg", "NO MATCHES")
            _sub(root, "numOfMatches", "0")
            return self._xml(root)
        more = position + len(page) < len(found)
        _sub(root, "responseStatus", "true")
        _sub(root, "responseStatusStrg", "MORE" if more else "OK")
        _sub(root, "numOfMatches", str(len(page)))
        matches = _sub(root, "matchList")
        for recording in page:
            await self._match_item(matches, recording, now)
        return self._xml(root)

    async def _match_item(self, matches: ET.Element, recording: Recording, now: datetime) -> None:
        end = recording.end or now
        size = len(await self._bytes_of(recording, now))
        item = _sub(matches, "searchMatchItem")
        _sub(item, "sourceID", "{" + str(uuid.uuid5(uuid.NAMESPACE_OID, self.serial)) + "}")
        _sub(item, "trackID", str(recording.track))
        span = _sub(item, "timeSpan")
        _sub(span, "startTime", self.device_text(recording.start))
        _sub(span, "endTime", self.device_text(end))
        media = _sub(item, "mediaSegmentDescriptor")
        _sub(media, "contentType", "video")
        _sub(media, "codecType", "H.264-BP")
        uri = (
            f"rtsp://{self.lan_address}/Streaming/tracks/{recording.track}/"
            f"?starttime={self._uri_time(recording.start)}&endtime={self._uri_time(end)}"
            f"&name={recording.name}&size={size}"
        )
        _sub(media, "playbackURI", uri)
        _sub(media, "lockStatus", "unlock")
        _sub(media, "name", recording.name)
        meta = _sub(item, "metadataMatches")
        _sub(meta, "metadataDescriptor", "recordType.meta.std-cgi.com/timing")

    async def _daily(self, request: Request, track: int) -> Response:
        path = request.url.path
        try:
            query = _parse(await request.body())
            year = int(query.findtext("year") or "")
            month = int(query.findtext("monthOfYear") or "")
            first = date(year, month, 1)
        except (ET.ParseError, ValueError):
            return self._status(path, 400, 6, "badXmlContent")
        now = self.now()
        days: set[int] = set()
        with self._lock:
            for r in self._recordings:
                if r.track != track:
                    continue
                day = r.start.astimezone(self.tz).date()
                last = (r.end or now).astimezone(self.tz).date()
                while day <= last:
                    if (day.year, day.month) == (year, month):
                        days.add(day.day)
                    day += timedelta(days=1)
        root = self._element("trackDailyDistribution")
        listing = _sub(root, "dayList")
        day = first
        while day.month == month:
            item = _sub(listing, "day")
            _sub(item, "id", str(day.day))
            _sub(item, "dayOfMonth", str(day.day))
            _sub(item, "record", "true" if day.day in days else "false")
            if day.day in days:
                _sub(item, "recordType", "time")
            day += timedelta(days=1)
        return self._xml(root)

    # ------------------------------------------------------------ download
    async def _capabilities(self, request: Request, user: User) -> Response:
        root = self._element("DownloadAbility")
        _sub(root, "isSupportDownloadbyFileName", "true")
        _sub(root, "isSupportDownloadbyTime", "false")  # by file name only, as on many NVRs
        _sub(root, "isSupportTransCode", "false")
        return self._xml(root)

    async def _content_cap(self, request: Request, user: User) -> Response:
        root = self._element("RacmCap")
        self._racm_cap(root)
        return self._xml(root)

    def _racm_cap(self, racm: ET.Element) -> None:
        """RacmCap, the same whether asked alone or inside DeviceCap."""
        _sub(racm, "inputProxyNums", str(self.channel_capacity))
        # Not returned, or false, means unsupported: there is no ContentMgmt/IOProxy here.
        _sub(racm, "isSupportIOInputProxy", "false")
        _sub(racm, "isSupportIOOutputProxy", "false")

    async def _download(self, request: Request, user: User) -> Response:
        path = request.url.path
        if not user.playback:
            return self._status(path, 403, 4, "lowPrivilege")
        try:
            body = _parse(await request.body())
            uri = (body.findtext("playbackURI") or "").strip()
        except ET.ParseError:
            return self._status(path, 400, 5, "badXmlFormat")
        if body.tag != "downloadRequest" or not uri.startswith("rtsp://"):
            return self._status(path, 400, 6, "badXmlContent")
        self.download_requests.append((request.method, uri))
        params = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
        if "name" not in params:
            return self._status(path, 400, 6, "badXmlContent")  # no download by time here
        now = self.now()
        with self._lock:
            match = [r for r in self._recordings if r.name == params["name"]]
            cut = self._cuts.pop(0) if self._cuts else None
        if not match:
            return self._status(path, 404, 4, "notFound")
        data = await self._bytes_of(match[0], now)
        return StreamingResponse(send_bytes(data, cut), status_code=200, media_type="Opaque/data")

    async def _bytes_of(self, recording: Recording, now: datetime) -> bytes:
        if recording.end is not None:
            return recording.data
        # Still being written: what is on disk so far, a whole second at a time.
        seconds = max(1, int((now - recording.start).total_seconds()))
        return await asyncio.to_thread(_stream_cached, seconds, recording.audio)

    # ------------------------------------------------------------ XML
    def _element(self, tag: str) -> ET.Element:
        return ET.Element(tag, {"version": "2.0", "xmlns": self.namespace})

    def _xml(
        self, root: ET.Element, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
        return Response(
            body,
            status_code=status,
            headers=headers,
            media_type='application/xml; charset="UTF-8"',
        )

    def _status(self, path: str, http_status: int, code: int, sub: str) -> Response:
        root = self._element("ResponseStatus")
        _sub(root, "requestURL", path)
        _sub(root, "statusCode", str(code))
        _sub(root, "statusString", _STATUS_STRINGS[code])
        _sub(root, "subStatusCode", sub)
        return self._xml(root, http_status)

    def _check_channel(self, channel: int) -> None:
        if channel not in self._channels:
            raise KeyError(f"no channel {channel}")

    def _next_name(self, channel: int) -> str:
        with self._lock:
            self._sequence += 1
            return f"ch{channel:02d}_{self._sequence:017d}"


def _stream(seconds: float, audio: bool) -> bytes:
    """What the device sends for a recording: the IMKH header, then MPEG-PS (H.264 + MP2)."""
    buffer = io.BytesIO()
    make_recording(buffer, seconds=seconds, audio_codec="mp2" if audio else None)
    return IMKH_HEADER + buffer.getvalue()


_CACHE: dict[tuple[int, bool], bytes] = {}
_CACHE_LOCK = threading.Lock()


def _stream_cached(seconds: int, audio: bool) -> bytes:
    with _CACHE_LOCK:
        if (seconds, audio) not in _CACHE:
            _CACHE[(seconds, audio)] = _stream(seconds, audio)
        return _CACHE[(seconds, audio)]


def _sub(
    parent: ET.Element, tag: str, text: str | None = None, attrib: dict[str, str] | None = None
) -> ET.Element:
    child = ET.SubElement(parent, tag, attrib or {})
    if text is not None:
        child.text = text
    return child


def _parse(body: bytes) -> ET.Element:
    """A request body as a tree without namespaces: clients send either namespace, or none."""
    root = ET.fromstring(body)  # noqa: S314 - a test double parsing its test's own requests
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root
