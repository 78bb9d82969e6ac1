"""Hikvision NVRs and IP cameras over ISAPI: channels, a time search, recordings as MPEG-PS.

What every recorder shares (the tree, the time-window scan, the clock, sign-in that
never re-sends a refused password) is in providers/kit/; this is the ISAPI dialect.
"""

from __future__ import annotations

import logging
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

import httpx
from pydantic import BaseModel, Field

from vpack.providers.base import Identity, RemoteVideo
from vpack.providers.errors import (
    AuthExpired,
    BadConfig,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.providers.kit.lan_device import LanDeviceSettings, LanRecorder
from vpack.providers.kit.recorder import (
    Channel,
    RecorderOptions,
    Recording,
    recorder_features,
    stamp,
)
from vpack.providers.registry import register

log = logging.getLogger(__name__)

_UNSUPPORTED = frozenset({"notSupport", "methodNotAllowed", "invalidOperation"})
_NO_RIGHTS = frozenset({"lowPrivilege", "noPermission", "permissionDenied"})


class HikvisionConfig(LanDeviceSettings):
    times_in_utc: bool = Field(
        default=False,
        description="The firmware writes true UTC times in searches "
        "(most write the device's local time with a 'Z').",
    )


class HikvisionSourceOptions(RecorderOptions):
    stream: Literal["main", "sub"] = Field(
        default="main", description="Which recorded stream to copy (NVRs usually record main)."
    )


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
class _Match(Recording):
    """One searchMatchItem."""

    track: int
    uri: str
    name: str
    size: int | None


# ---------------------------------------------------------------- the provider


@register
class HikvisionProvider(LanRecorder):
    name = "hikvision"
    label = "Hikvision NVR / camera"
    description = (
        "Recordings on a Hikvision NVR or IP camera, reached on the LAN or over a VPN (ISAPI)."
    )
    features = recorder_features(page_size=50)
    Config = HikvisionConfig
    SourceOptions = HikvisionSourceOptions

    config: HikvisionConfig

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._download_method = "GET"

    # ------------------------------------------------------------ HTTP
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

    def describe(self, response: httpx.Response) -> ProviderError:
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

    async def device_now(self) -> datetime:
        try:
            root = await self._xml("GET", "/ISAPI/System/time")
            return self._from_device(_text(root, "localTime"))
        except (_Unsupported, ValueError):
            return datetime.now(UTC)

    # ------------------------------------------------------------ interface
    async def check(self) -> Identity:
        info = await self.checked(self._xml("GET", "/ISAPI/System/deviceInfo", once=True))
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
        return await self.identity("Hikvision", details)

    async def clock_problem(self) -> str | None:
        try:
            root = await self._xml("GET", "/ISAPI/System/time", once=True)
            local = datetime.fromisoformat(_text(root, "localTime"))
        except (ProviderError, ValueError):
            return None
        return self.clock_warning(local)

    async def device_title(self) -> str:
        info = await self._xml("GET", "/ISAPI/System/deviceInfo")
        return f"{_text(info, 'deviceName') or 'Hikvision'} {_text(info, 'model')}".strip()

    async def recording_response(self, video: RemoteVideo) -> httpx.Response:
        uri = str(video.extra.get("playback_uri", ""))
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<downloadRequest version="1.0" xmlns="http://www.isapi.org/ver20/XMLSchema">'
            f"<playbackURI>{escape(uri)}</playbackURI></downloadRequest>"
        )
        return await self._download_response(body.encode("utf-8"))

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
    async def list_channels(self) -> list[Channel]:
        channels: list[Channel] = []
        try:
            root = await self._xml("GET", "/ISAPI/ContentMgmt/InputProxy/channels")
            for item in root.iter("InputProxyChannel"):
                number = int(_text(item, "id") or 0)
                channels.append(Channel(number, _text(item, "name") or f"Channel {number}"))
        except _Unsupported:
            pass  # a camera, or an NVR without IP channels: its streams say the rest
        if not channels:
            root = await self._xml("GET", "/ISAPI/Streaming/channels")
            for item in root.iter("StreamingChannel"):
                stream_id = int(_text(item, "id") or 0)
                if stream_id % 100 == 1:  # the main stream names the channel
                    number = stream_id // 100
                    name = _text(item, "channelName") or f"Channel {number}"
                    channels.append(Channel(number, name))
        return channels

    async def recorded_days(self, channel: Channel, year: int, month: int) -> list[date]:
        body = (
            "<?xml version='1.0' encoding='UTF-8'?><trackDailyParam>"
            f"<year>{year}</year><monthOfYear>{month}</monthOfYear></trackDailyParam>"
        )
        track = _track(channel, None)
        root = await self._xml(
            "POST", f"/ISAPI/ContentMgmt/record/tracks/{track}/dailyDistribution", body
        )
        return [
            date(year, month, int(_text(day, "dayOfMonth")))
            for day in root.iter("day")
            if _text(day, "record").lower() == "true"
        ]

    # ------------------------------------------------------------ search
    async def recordings(
        self,
        channel: Channel,
        since: datetime,
        until: datetime,
        options: RecorderOptions | None,
        limit: int | None = None,
    ) -> AsyncGenerator[list[Recording]]:
        """Pages of the track's search, following MORE."""
        track = _track(channel, options)
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
        track = int(_text(item, "trackID") or 0)
        start = self._from_device(_text(item, "timeSpan/startTime"))
        end = self._from_device(_text(item, "timeSpan/endTime"))
        name = query.get("name") or _text(item, "mediaSegmentDescriptor/name")
        # The device's file name identifies a recording; without one, its track and times.
        remote_id = f"{track}/{name}" if name else f"{track}/{stamp(start)}-{stamp(end)}"
        return _Match(
            remote_id=remote_id,
            start=start,
            end=end,
            track=track,
            uri=uri,
            name=name,
            size=int(size_text) if size_text.isdigit() else None,
        )

    def video_of(self, channel: Channel, recording: Recording) -> RemoteVideo:
        assert isinstance(recording, _Match)
        return self.recording_video(
            channel,
            recording,
            size=recording.size,
            source_name=recording.name,
            extra={"playback_uri": recording.uri, "track": recording.track},
        )


def _track(channel: Channel, options: RecorderOptions | None) -> int:
    """ISAPI's track id: channel * 100 + 1 for the main stream, + 2 for the sub stream."""
    sub = isinstance(options, HikvisionSourceOptions) and options.stream == "sub"
    return channel.number * 100 + (2 if sub else 1)
