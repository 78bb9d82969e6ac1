"""Hikvision NVRs and IP cameras over ISAPI: channels, a time search, recordings as MPEG-PS."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import secrets
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from pydantic import BaseModel, Field, SecretStr, field_validator

from vpack.providers.base import (
    AuthKind,
    BrowsePage,
    Checkpoint,
    Features,
    Found,
    Identity,
    Node,
    Provider,
    RemoteVideo,
    ScanEvent,
    Waiting,
)
from vpack.providers.errors import (
    AuthExpired,
    BadConfig,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.providers.kit.http import ApiClient, HttpPolicy, new_client
from vpack.providers.registry import register

log = logging.getLogger(__name__)

DEVICE_NODE = "device"
# Before any recorder: where a first scan without `history_days` starts.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_READ_BYTES = 1024 * 1024
# Channels are renamed and added on the NVR; a long-running worker looks again now and then.
_CHANNELS_TTL_SECONDS = 600.0
_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')
_DIGESTS: dict[str, Callable[[bytes], Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_UNSUPPORTED = frozenset({"notSupport", "methodNotAllowed", "invalidOperation"})
_NO_RIGHTS = frozenset({"lowPrivilege", "noPermission", "permissionDenied"})


class HikvisionConfig(BaseModel):
    host: str = Field(
        min_length=1, description="IP address or host name of the NVR or camera (no http://)."
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="HTTP(S) port; empty: 80, or 443 with HTTPS."
    )
    https: bool = False
    verify_certificate: bool = Field(
        default=True,
        description="Check the device's TLS certificate. NVRs ship self-signed ones: "
        "turn this off only for a device on a network you trust.",
    )
    username: str = Field(min_length=1, description="A user with the Remote Playback right.")
    password: SecretStr
    time_zone: str = Field(
        default="Asia/Ho_Chi_Minh", description="The time zone the device clock is set to."
    )
    times_in_utc: bool = Field(
        default=False,
        description="The firmware writes true UTC times in searches "
        "(most write the device's local time with a 'Z').",
    )
    timeout_seconds: float = Field(default=60.0, ge=1, le=600)

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if "://" in value or "/" in value:
            raise ValueError("give the address only, e.g. 192.168.1.64 (choose HTTPS separately)")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use a name like Asia/Ho_Chi_Minh)"
            ) from None
        return value


class HikvisionSourceOptions(BaseModel):
    stream: Literal["main", "sub"] = Field(
        default="main", description="Which recorded stream to copy (NVRs usually record main)."
    )
    settle_seconds: int = Field(
        default=120,
        ge=0,
        description="A recording ending this close to the device clock is still being written.",
    )
    overlap_seconds: int = Field(
        default=7200,
        ge=0,
        description="Each scan searches again this far before where the last one stopped, "
        "for recordings the device indexes late.",
    )
    history_days: int | None = Field(
        default=None, ge=1, description="How far back the first scan goes; empty: everything."
    )


# ---------------------------------------------------------------- authentication


class DeviceAuth(httpx.Auth):
    """HTTP Digest (RFC 7616) or Basic (RFC 7617), whichever the device asks for.

    A refused password is never sent again: devices lock the account after a few
    failures, and httpx's own DigestAuth answers every 401 with one more try. Only
    a challenge that says the nonce is stale (RFC 7616 §3.3) is answered again.
    """

    requires_request_body = True

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._scheme: str | None = None  # learnt from the first challenge
        self._challenge: dict[str, str] = {}
        self._count = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self._authorize(request)
        response = yield request
        if response.status_code != 401:
            return
        offered = _challenge_of(response)
        if offered is None:
            return
        scheme, params = offered
        stale = params.get("stale", "").lower() == "true"
        if sent and not (scheme == "digest" and stale):
            return  # our credentials were refused: do not spend another try
        self._scheme, self._challenge, self._count = scheme, params, 0
        self._authorize(request)
        yield request

    def _authorize(self, request: httpx.Request) -> bool:
        if self._scheme == "basic":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.headers["Authorization"] = f"Basic {token}"
        elif self._scheme == "digest":
            request.headers["Authorization"] = self._digest(request)
        else:
            return False
        return True

    def _digest(self, request: httpx.Request) -> str:
        c = self._challenge
        algorithm = c.get("algorithm", "MD5").upper()
        hasher = _DIGESTS.get(algorithm.removesuffix("-SESS"), hashlib.md5)

        def h(text: str) -> str:
            return str(hasher(text.encode("utf-8")).hexdigest())

        self._count += 1
        nc, cnonce = f"{self._count:08x}", secrets.token_hex(8)
        realm, nonce = c.get("realm", ""), c.get("nonce", "")
        uri = request.url.raw_path.decode("ascii")
        ha1 = h(f"{self.username}:{realm}:{self.password}")
        if algorithm.endswith("-SESS"):
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        ha2 = h(f"{request.method}:{uri}")
        qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
        fields = {
            "username": _quoted(self.username),
            "realm": _quoted(realm),
            "nonce": _quoted(nonce),
            "uri": _quoted(uri),
            "algorithm": algorithm,
        }
        if "auth" in qops:
            fields["response"] = _quoted(h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            fields.update(qop="auth", nc=nc, cnonce=_quoted(cnonce))
        else:
            fields["response"] = _quoted(h(f"{ha1}:{nonce}:{ha2}"))
        if "opaque" in c:
            fields["opaque"] = _quoted(c["opaque"])
        return "Digest " + ", ".join(f"{k}={v}" for k, v in fields.items())


def _challenge_of(response: httpx.Response) -> tuple[str, dict[str, str]] | None:
    """The scheme to answer (Digest preferred) and its parameters."""
    offered: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("www-authenticate"):
        scheme, _, rest = header.strip().partition(" ")
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _AUTH_PARAM.finditer(rest)
        }
        offered[scheme.lower()] = params
    for scheme in ("digest", "basic"):
        if scheme in offered:
            return scheme, offered[scheme]
    return None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- XML


class _Unsupported(Permanent):
    """The device does not offer this resource or method (firmware differences)."""


def parse_xml(content: bytes) -> ET.Element:
    """An ISAPI answer as a tree without namespaces (devices use two), DTDs refused."""
    if b"<!DOCTYPE" in content or b"<!ENTITY" in content:
        raise Permanent("the device answered with an XML document type declaration: refused")
    try:
        root = ET.fromstring(content)  # noqa: S314 - DTDs (entity expansion) refused above
    except ET.ParseError as exc:
        raise Transient(f"the device answered with XML that does not parse ({exc})") from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]
    return root


def _text(root: ET.Element, path: str) -> str:
    return (root.findtext(path) or "").strip()


def _try_xml(content: bytes) -> ET.Element | None:
    try:
        return parse_xml(content)
    except ProviderError:
        return None


@dataclass(frozen=True)
class _Channel:
    number: int
    name: str


@dataclass(frozen=True)
class _Match:
    """One searchMatchItem, its times in UTC."""

    track: int
    start: datetime
    end: datetime
    uri: str
    name: str
    size: int | None


# ---------------------------------------------------------------- the provider


@register
class HikvisionProvider(Provider):
    name = "hikvision"
    label = "Hikvision NVR / camera"
    description = (
        "Recordings on a Hikvision NVR or IP camera, reached on the LAN or over a VPN (ISAPI)."
    )
    auth = AuthKind.DEVICE
    features = Features(
        ranged_reads=False,
        full_listing=False,
        time_indexed=True,
        needs_remux=True,
        page_size=50,
    )
    Config = HikvisionConfig
    SourceOptions = HikvisionSourceOptions

    config: HikvisionConfig

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.tz = ZoneInfo(self.config.time_zone)
        self._api: ApiClient | None = None
        self._once: ApiClient | None = None  # no retries: check() answers at once
        self._channels: list[_Channel] | None = None
        self._channels_at = 0.0
        self._download_method = "GET"

    # ------------------------------------------------------------ HTTP
    @property
    def where(self) -> str:
        cfg = self.config
        return f"{cfg.host}:{cfg.port}" if cfg.port else cfg.host

    def _clients(self) -> tuple[ApiClient, ApiClient]:
        if self._api is None or self._once is None:
            cfg = self.config
            scheme = "https" if cfg.https else "http"
            self.http = new_client(
                base_url=f"{scheme}://{self.where}",
                auth=DeviceAuth(cfg.username, cfg.password.get_secret_value()),
                verify=cfg.verify_certificate if cfg.https else True,
                timeout=httpx.Timeout(cfg.timeout_seconds, connect=min(15.0, cfg.timeout_seconds)),
            )
            self._api = ApiClient(self.http, self._describe, policy=HttpPolicy(attempts=3))
            self._once = ApiClient(self.http, self._describe, policy=HttpPolicy(attempts=1))
        return self._api, self._once

    async def _xml(
        self, method: str, path: str, body: str | None = None, *, once: bool = False
    ) -> ET.Element:
        api, single = self._clients()
        content = body.encode("utf-8") if body is not None else None
        headers = {"Content-Type": "application/xml; charset=UTF-8"} if body else {}
        response = await (single if once else api).request(
            method, path, content=content, headers=headers
        )
        return parse_xml(response.content)

    def _describe(self, response: httpx.Response) -> ProviderError:
        """A device's refusal (ResponseStatus or userCheck body) as one of our errors."""
        status, path = response.status_code, response.request.url.path
        root = _try_xml(response.content)
        sub = _text(root, "subStatusCode") if root is not None else ""
        said = _text(root, "statusString") if root is not None else ""
        user = self.config.username
        if status == 401:
            if root is not None and _text(root, "lockStatus").lower() in ("lock", "locked"):
                seconds = float(_text(root, "unlockTime") or 0) or 1800.0
                return RateLimited(
                    f"{self.where} has locked user {user} after repeated failed logins; "
                    f"it unlocks in about {max(1, round(seconds / 60))} min. "
                    "VPACK waits rather than try again (each try would extend the lock)",
                    retry_after=seconds + 5,
                )
            left = _text(root, "retryLoginTime") if root is not None else ""
            tries = f" ({left} tries left before the device locks the account)" if left else ""
            return AuthExpired(f"{self.where} refused the user name or password for {user}{tries}")
        if status == 403 and sub in _NO_RIGHTS:
            return BadConfig(
                f"user {user} may not search or download recordings on {self.where}: "
                "give it the Remote Playback right for these channels"
            )
        if status in (403, 405) and (sub in _UNSUPPORTED or status == 405):
            return _Unsupported(f"{self.where} does not support {response.request.method} {path}")
        if status == 404:
            return NotFound(f"{self.where} no longer has this recording (overwritten?)")
        if status in (429, 503) or status >= 500 or sub == "deviceBusy":
            return Transient(f"{self.where} is busy or failing: {status} {said} {sub}".strip())
        detail = f"{said} ({sub})" if sub else said or f"HTTP {status}"
        return Permanent(f"{self.where} refused {response.request.method} {path}: {detail}")

    def _unreachable(self, exc: Transient) -> BadConfig:
        cause = exc.__cause__
        text = str(cause or exc)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return BadConfig(
                f"the TLS certificate of {self.where} is not trusted (NVRs ship self-signed ones); "
                "turn off the certificate check only for a device on a network you trust"
            )
        if isinstance(cause, httpx.TimeoutException):
            return BadConfig(f"{self.where} did not answer in time: check the address and port")
        return BadConfig(
            f"cannot reach {self.where}: check the address and port, and that this server "
            f"reaches the recorder's network (same LAN or a VPN) ({text})"
        )

    # ------------------------------------------------------------ time
    def _device_text(self, when: datetime) -> str:
        """A UTC time as the device expects it in a search."""
        shown = when.astimezone(UTC if self.config.times_in_utc else self.tz)
        return shown.strftime("%Y-%m-%dT%H:%M:%SZ")

    def _from_device(self, text: str) -> datetime:
        """A time the device wrote, as an aware UTC datetime."""
        text = text.strip()
        if text.endswith(("Z", "z")):
            naive = datetime.fromisoformat(text[:-1].split(".")[0])
            zone = UTC if self.config.times_in_utc else self.tz
            return naive.replace(tzinfo=zone).astimezone(UTC)
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.tz)
        return parsed.astimezone(UTC)

    async def _device_now(self) -> datetime:
        """The device's clock (a recording is open relative to it, not to ours)."""
        try:
            root = await self._xml("GET", "/ISAPI/System/time")
            return self._from_device(_text(root, "localTime"))
        except (_Unsupported, ValueError):
            return datetime.now(UTC)

    # ------------------------------------------------------------ interface
    async def check(self) -> Identity:
        try:
            info = await self._xml("GET", "/ISAPI/System/deviceInfo", once=True)
        except (AuthExpired, RateLimited) as exc:
            raise BadConfig(str(exc)) from None
        except Transient as exc:
            raise self._unreachable(exc) from None
        model, serial = _text(info, "model"), _text(info, "serialNumber")
        details: dict[str, Any] = {
            "model": model,
            "serial": serial,
            "firmware": " ".join(
                p
                for p in (_text(info, "firmwareVersion"), _text(info, "firmwareReleasedDate"))
                if p
            ),
            "device_type": _text(info, "deviceType"),
            "device_name": _text(info, "deviceName"),
        }
        warning = await self._clock_warning()
        if warning:
            details["clock_warning"] = warning
        return Identity(
            id=serial or f"{self.where}",
            label=f"{details['device_name'] or 'Hikvision'} {model} ({self.where})".strip(),
            details=details,
        )

    async def _clock_warning(self) -> str | None:
        """Say so when the device's UTC offset differs from the configured time zone."""
        try:
            root = await self._xml("GET", "/ISAPI/System/time", once=True)
            local = datetime.fromisoformat(_text(root, "localTime"))
        except (ProviderError, ValueError):
            return None
        if local.tzinfo is None:
            return None
        expected = local.astimezone(self.tz).utcoffset()
        if local.utcoffset() != expected:
            return (
                f"the device clock runs at UTC{_offset(local.utcoffset())}, but the connection "
                f"says {self.config.time_zone} (UTC{_offset(expected)}): "
                "recording times will be off"
            )
        return None

    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        if node is None:
            info = await self._xml("GET", "/ISAPI/System/deviceInfo")
            title = _text(info, "deviceName") or "Hikvision"
            return BrowsePage(
                [
                    Node(
                        id=DEVICE_NODE,
                        name=f"{title} {_text(info, 'model')}".strip(),
                        kind="device",
                        selectable=False,
                    )
                ]
            )
        if node == DEVICE_NODE:
            channels = await self._channel_list()
            start = int(page or 0)
            size = self.features.page_size
            nodes = [
                Node(id=str(c.number), name=c.name, kind="channel")
                for c in channels[start : start + size]
            ]
            more = start + size < len(channels)
            return BrowsePage(nodes, next_page=str(start + size) if more else None)
        channel = await self._channel(node.split("/", 1)[0])
        if "/" in node:
            return BrowsePage([])  # a day has no children
        return await self._days(channel, page)

    def destinations(self) -> list[str]:
        return [self.config.host]

    async def validate_selection(self, selection: str) -> str:
        return (await self._channel(selection)).name

    async def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        assert isinstance(options, HikvisionSourceOptions)
        channel = await self._channel(selection)
        track = channel.number * 100 + (1 if options.stream == "main" else 2)
        now = await self._device_now()
        known_until = _parse_cursor(cursor)
        if known_until is not None:
            since = known_until - timedelta(seconds=options.overlap_seconds)
        elif options.history_days:
            since = now - timedelta(days=options.history_days)
        else:
            since = _EARLIEST
        open_after = now - timedelta(seconds=options.settle_seconds)
        seen: set[str] = set()
        newest_end = known_until
        last_start: datetime | None = None
        ordered = True  # devices list oldest first; checkpoints mid-scan rely on it
        async for page in self._search(track, since, now + timedelta(hours=1)):
            starts = [m.start for m in page]
            if last_start is not None:
                starts.insert(0, last_start)
            ordered = ordered and starts == sorted(starts)
            for match in page:
                remote_id = _remote_id(match)
                if remote_id in seen:
                    continue
                seen.add(remote_id)
                if match.end > open_after:
                    yield Waiting(remote_id)  # still being written: taken once it closes
                    continue
                if match.end <= match.start:
                    log.info("%s: skipping %s, it has no length", self.where, remote_id)
                    continue
                yield Found(self._video(channel, match, remote_id))
                newest_end = max(newest_end or match.end, match.end)
            if page and ordered:
                # All that ends before this page's last start has been seen, so a
                # crash after this point loses nothing.
                last_start = page[-1].start
                mark = max(known_until or last_start, last_start)
                yield Checkpoint(cursor=_format_cursor(mark), complete=False)
        yield Checkpoint(cursor=_format_cursor(newest_end) if newest_end else cursor)

    def open(self, video: RemoteVideo, offset: int = 0) -> AsyncIterator[bytes]:
        return self._download(video, offset)

    async def _download(self, video: RemoteVideo, offset: int) -> AsyncIterator[bytes]:
        if offset:
            raise Transient("recordings cannot be resumed mid-way", restart=True)
        uri = str(video.extra.get("playback_uri", ""))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<downloadRequest version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
            f"<playbackURI>{escape(uri)}</playbackURI></downloadRequest>"
        )
        response = await self._download_response(body.encode("utf-8"))
        try:
            async for chunk in response.aiter_bytes(_READ_BYTES):
                yield chunk
        except httpx.HTTPError as exc:
            raise Transient(
                f"{video.path or video.name}: the device broke off the download "
                f"({type(exc).__name__}); it starts again from the beginning",
                restart=True,
            ) from None
        finally:
            await response.aclose()

    async def _download_response(self, body: bytes) -> httpx.Response:
        """The download answer; firmware takes GET with a body, or only POST."""
        api, _ = self._clients()
        headers = {"Content-Type": "application/xml; charset=UTF-8"}
        try:
            return await api.request(
                self._download_method,
                "/ISAPI/ContentMgmt/download",
                content=body,
                headers=headers,
                stream=True,
            )
        except _Unsupported:
            if self._download_method != "GET":
                raise
            self._download_method = "POST"
            return await api.request(
                "POST", "/ISAPI/ContentMgmt/download", content=body, headers=headers, stream=True
            )

    # ------------------------------------------------------------ channels and days
    async def _channel_list(self) -> list[_Channel]:
        if self._channels is None or time.monotonic() - self._channels_at > _CHANNELS_TTL_SECONDS:
            channels: list[_Channel] = []
            try:
                root = await self._xml("GET", "/ISAPI/ContentMgmt/InputProxy/channels")
                for item in root.iter("InputProxyChannel"):
                    number = int(_text(item, "id") or 0)
                    channels.append(_Channel(number, _text(item, "name") or f"Channel {number}"))
            except _Unsupported:
                pass  # a camera, or an NVR without IP channels: its streams say the rest
            if not channels:
                root = await self._xml("GET", "/ISAPI/Streaming/channels")
                for item in root.iter("StreamingChannel"):
                    stream_id = int(_text(item, "id") or 0)
                    if stream_id % 100 == 1:  # the main stream names the channel
                        number = stream_id // 100
                        name = _text(item, "channelName") or f"Channel {number}"
                        channels.append(_Channel(number, name))
            self._channels = sorted(channels, key=lambda c: c.number)
            self._channels_at = time.monotonic()
        return self._channels

    async def _channel(self, node: str) -> _Channel:
        for channel in await self._channel_list():
            if str(channel.number) == node.strip():
                return channel
        raise BadConfig(f"{self.where} has no channel {node!r}")

    async def _days(self, channel: _Channel, page: str | None) -> BrowsePage:
        """Days with recordings, newest first, one month per page."""
        track = channel.number * 100 + 1
        if page is None:
            first = await self._first_recording(track)
            if first is None:
                return BrowsePage([])
            now = (await self._device_now()).astimezone(self.tz)
            month, oldest = (now.year, now.month), (first.year, first.month)
        else:
            current, _, last = page.partition(":")
            month, oldest = _month(current), _month(last)
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><trackDailyParam>"
            f"<year>{month[0]}</year><monthOfYear>{month[1]}</monthOfYear></trackDailyParam>"
        )
        root = await self._xml(
            "POST", f"/ISAPI/ContentMgmt/record/tracks/{track}/dailyDistribution", body
        )
        days = sorted(
            (
                date(month[0], month[1], int(_text(day, "dayOfMonth")))
                for day in root.iter("day")
                if _text(day, "record").lower() == "true"
            ),
            reverse=True,
        )
        nodes = [
            Node(
                id=f"{channel.number}/{d.isoformat()}",
                name=d.isoformat(),
                kind="day",
                has_children=False,
                selectable=False,
            )
            for d in days
        ]
        previous = (month[0] - 1, 12) if month[1] == 1 else (month[0], month[1] - 1)
        more = previous >= oldest
        return BrowsePage(
            nodes, next_page=f"{_month_text(previous)}:{_month_text(oldest)}" if more else None
        )

    async def _first_recording(self, track: int) -> datetime | None:
        async for page in self._search(track, _EARLIEST, datetime.now(UTC) + timedelta(days=1), 1):
            return page[0].start.astimezone(self.tz) if page else None
        return None

    # ------------------------------------------------------------ search
    async def _search(
        self, track: int, since: datetime, until: datetime, limit: int | None = None
    ) -> AsyncIterator[list[_Match]]:
        """Pages of recordings on `track` overlapping [since, until], following MORE."""
        search_id = str(uuid.uuid4()).upper()  # devices want a GUID; one per search session
        position = 0
        size = limit or self.features.page_size
        while True:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                '<CMSearchDescription version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
                f"<searchID>{search_id}</searchID>"
                f"<trackIDList><trackID>{track}</trackID></trackIDList>"
                "<timeSpanList><timeSpan>"
                f"<startTime>{self._device_text(since)}</startTime>"
                f"<endTime>{self._device_text(until)}</endTime>"
                "</timeSpan></timeSpanList>"
                f"<maxResults>{size}</maxResults>"
                # sic: "Postion" is how the devices spell it; the dictionary spelling is refused.
                f"<searchResultPostion>{position}</searchResultPostion>"
                "<metadataList><metadataDescriptor>//recordType.meta.std-cgi.com"
                "</metadataDescriptor></metadataList></CMSearchDescription>"
            )
            root = await self._xml("POST", "/ISAPI/ContentMgmt/search", body)
            state = _text(root, "responseStatusStrg").upper()
            items = root.findall("matchList/searchMatchItem")
            yield [self._match(item) for item in items]
            if state != "MORE" or limit is not None:
                return
            if not items:
                raise Transient(f"{self.where} said MORE results but sent none")
            position += len(items)

    def _match(self, item: ET.Element) -> _Match:
        uri = _text(item, "mediaSegmentDescriptor/playbackURI")
        query = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
        size_text = query.get("size", "")
        return _Match(
            track=int(_text(item, "trackID") or 0),
            start=self._from_device(_text(item, "timeSpan/startTime")),
            end=self._from_device(_text(item, "timeSpan/endTime")),
            uri=uri,
            name=query.get("name") or _text(item, "mediaSegmentDescriptor/name"),
            size=int(size_text) if size_text.isdigit() else None,
        )

    def _video(self, channel: _Channel, match: _Match, remote_id: str) -> RemoteVideo:
        start, end = match.start.astimezone(self.tz), match.end.astimezone(self.tz)
        return RemoteVideo(
            remote_id=remote_id,
            revision=str(match.size) if match.size is not None else _stamp(match.end),
            name=f"{channel.name} {start:%Y-%m-%d %H-%M-%S}.mp4",
            camera=channel.name,
            size=match.size,
            modified_at=match.end,
            recorded_start=match.start,
            recorded_end=match.end,
            path=f"{channel.name} {start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S} {match.name}".strip(),
            extra={"playback_uri": match.uri, "track": match.track},
        )

    async def aclose(self) -> None:
        self._api = self._once = None
        await super().aclose()


# ---------------------------------------------------------------- helpers


def _remote_id(match: _Match) -> str:
    """The device's file name identifies a recording; without one, its track and times."""
    if match.name:
        return f"{match.track}/{match.name}"
    return f"{match.track}/{_stamp(match.start)}-{_stamp(match.end)}"


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _format_cursor(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_cursor(cursor: str | None) -> datetime | None:
    """The end of the newest recording taken so far (UTC), or None for a first scan."""
    if not cursor:
        return None
    try:
        parsed = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        log.warning("ignoring an unreadable Hikvision cursor %r: scanning from the start", cursor)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _month(text: str) -> tuple[int, int]:
    year, _, month = text.partition("-")
    return int(year), int(month)


def _month_text(month: tuple[int, int]) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
