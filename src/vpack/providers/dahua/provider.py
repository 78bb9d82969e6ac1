"""Dahua NVRs and IP cameras over Dahua's HTTP API (CGI): channels, the finder-object
search, recordings as DAV (or MP4 on newer firmware).

What every recorder shares (the tree, the time-window scan, the clock, sign-in that
never re-sends a refused password) is in providers/kit/; this is the CGI dialect:
text answers of `key=value` lines, device-local times, and finder objects that the
device has only a few of, so each one made is closed and destroyed whatever happens.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel

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

# A locked user stays locked this long on Dahua's default "login failure" setting.
_LOCK_SECONDS = 1800.0
_LOCAL = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2}):(\d{1,2})", re.ASCII)
_ITEM = re.compile(r"items\[(\d+)\]\.(\w+)", re.ASCII)
_TITLE = re.compile(r"table\.ChannelTitle\[(\d+)\]\.Name", re.ASCII)


class DahuaConfig(LanDeviceSettings):
    pass


class _Refused(Permanent):
    """`Error` / `Bad Request!`: the device does not take this request (firmware differences)."""


@dataclass(frozen=True)
class _File(Recording):
    """One item of a findNextFile answer."""

    channel: int
    file_path: str
    kind: str  # "dav" | "mp4"
    length: int | None


def parse_lines(text: str) -> dict[str, str]:
    """A CGI answer's `key=value` lines (CRLF, or LF from some firmware)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    return values


def is_error(text: str) -> bool:
    return text.lstrip().startswith("Error")


@register
class DahuaProvider(LanRecorder):
    name = "dahua"
    label = "Dahua NVR / camera"
    description = (
        "Recordings on a Dahua NVR or IP camera (and OEM brands on its firmware), "
        "reached on the LAN or over a VPN (HTTP API)."
    )
    features = recorder_features(page_size=100)  # findNextFile gives at most 100 items
    Config = DahuaConfig
    SourceOptions = RecorderOptions

    config: DahuaConfig

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self._by_file = True  # learnt: some firmware has no RPC_Loadfile

    # ------------------------------------------------------------ HTTP
    async def _cgi(self, script: str, query: str, *, once: bool = False) -> str:
        """A CGI answer's text; `Error` in a 200 answer is raised as _Refused."""
        api, single = self._clients()
        response = await (single if once else api).request("GET", f"/cgi-bin/{script}?{query}")
        text = response.text
        if is_error(text):
            raise _Refused(f"{self.where} refused {script}: {_said(text)}")
        return text

    def describe(self, response: httpx.Response) -> ProviderError:
        status, path = response.status_code, response.request.url.path
        said = _said(response.text)
        user = self.config.username
        if status == 401:
            if "lock" in response.text.lower():
                return RateLimited(
                    f"{self.where} has locked user {user} after repeated failed logins; it "
                    f"unlocks by itself (30 min by default). VPACK waits rather than try "
                    "again (each try would start the lock again)",
                    retry_after=_LOCK_SECONDS + 5,
                )
            return AuthExpired(f"{self.where} refused the user name or password for {user}")
        if status == 403 or "Invalid Authority" in response.text:
            return BadConfig(
                f"user {user} may not search or download recordings on {self.where}: give it "
                "the Playback (and Backup) rights for these channels"
            )
        if status == 404:
            return NotFound(f"{self.where} has no {path} (overwritten, or not on this firmware)")
        if status == 400:
            return _Refused(f"{self.where} refused {path}: {said}")
        if status in (429, 503) or status >= 500:
            return Transient(f"{self.where} is busy or failing: HTTP {status} {said}".strip())
        return Permanent(f"{self.where} refused {path}: HTTP {status} {said}".strip())

    # ------------------------------------------------------------ time
    def _device_text(self, when: datetime) -> str:
        return when.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")

    def _from_device(self, text: str) -> datetime:
        found = _LOCAL.fullmatch(text.strip())
        if found is None:
            raise Transient(f"{self.where} wrote a time that does not parse: {text!r}")
        y, mo, d, h, mi, s = (int(p) for p in found.groups())
        return datetime(y, mo, d, h, mi, s, tzinfo=self.tz).astimezone(UTC)

    async def device_now(self) -> datetime:
        try:
            text = await self._cgi("global.cgi", "action=getCurrentTime")
            return self._from_device(parse_lines(text).get("result", ""))
        except (_Refused, NotFound):
            return datetime.now(UTC)

    # ------------------------------------------------------------ interface
    async def check(self) -> Identity:
        info = await self.checked(self._cgi("magicBox.cgi", "action=getSystemInfo", once=True))
        system = parse_lines(info)
        model, serial = system.get("deviceType", ""), system.get("serialNumber", "")
        version = parse_lines(await self._optional("magicBox.cgi", "action=getSoftwareVersion"))
        name = parse_lines(await self._optional("magicBox.cgi", "action=getMachineName"))
        details: dict[str, Any] = {
            "model": model,
            "serial": serial,
            "firmware": version.get("version", "").replace(",build:", " build "),
            "device_name": name.get("name", ""),
        }
        return await self.identity("Dahua", details)

    async def _optional(self, script: str, query: str) -> str:
        try:
            return await self._cgi(script, query, once=True)
        except (_Refused, NotFound):
            return ""

    async def clock_problem(self) -> str | None:
        """The device writes local times without an offset: say so when its clock, read
        in the connection's zone, is far from the true time."""
        try:
            device = await self.device_now()
        except ProviderError:
            return None
        off = device - datetime.now(UTC)
        if abs(off) < timedelta(minutes=10):
            return None
        hours = off.total_seconds() / 3600
        return (
            f"the device clock, read as {self.tz.key}, is {abs(hours):.1f} h "
            f"{'ahead of' if hours > 0 else 'behind'} the true time: set the device's time "
            "zone and clock (NTP), or the connection's time zone, or recording times will be off"
        )

    async def device_title(self) -> str:
        system = parse_lines(await self._cgi("magicBox.cgi", "action=getSystemInfo"))
        name = parse_lines(await self._optional("magicBox.cgi", "action=getMachineName"))
        return f"{name.get('name') or 'Dahua'} {system.get('deviceType', '')}".strip()

    async def recording_response(self, video: RemoteVideo) -> httpx.Response:
        """By file (RPC_Loadfile); by time where the firmware has no download by file."""
        api, _ = self._clients()
        if not self._by_file:
            return await self._by_time(video)
        path = quote(str(video.extra["file_path"]), safe="/")
        try:
            return await api.request("GET", f"/cgi-bin/RPC_Loadfile{path}", stream=True)
        except (NotFound, _Refused):
            pass  # no download by file on this firmware, or the file is gone
        response = await self._by_time(video)
        log.info("%s has no download by file: downloading by time from now on", self.where)
        self._by_file = False
        return response

    async def _by_time(self, video: RemoteVideo) -> httpx.Response:
        api, _ = self._clients()
        assert video.recorded_start is not None and video.recorded_end is not None
        query = _query(
            action="startLoad",
            channel=str(video.extra["channel"]),
            startTime=self._device_text(video.recorded_start),
            endTime=self._device_text(video.recorded_end),
            subtype="0",  # the main stream, which NVRs record
        )
        return await api.request("GET", f"/cgi-bin/loadfile.cgi?{query}", stream=True)

    # ------------------------------------------------------------ channels and days
    async def list_channels(self) -> list[Channel]:
        text = await self._cgi("configManager.cgi", "action=getConfig&name=ChannelTitle")
        channels = []
        for key, value in parse_lines(text).items():
            found = _TITLE.fullmatch(key)
            if found:
                number = int(found[1]) + 1  # the config counts from 0, searches from 1
                channels.append(Channel(number, value or f"Channel {number}"))
        return channels

    async def recorded_days(self, channel: Channel, year: int, month: int) -> list[date]:
        first = datetime(year, month, 1, tzinfo=self.tz)
        after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=self.tz)
        days: set[date] = set()
        async for page in self.recordings(channel, first, after - timedelta(seconds=1), None):
            for item in page:
                day = item.start.astimezone(self.tz).date()
                last = min(item.end, after - timedelta(seconds=1)).astimezone(self.tz).date()
                while day <= last:
                    if day.month == month:
                        days.add(day)
                    day += timedelta(days=1)
        return sorted(days)

    # ------------------------------------------------------------ search
    async def recordings(
        self,
        channel: Channel,
        since: datetime,
        until: datetime,
        options: RecorderOptions | None,
        limit: int | None = None,
    ) -> AsyncGenerator[list[Recording]]:
        """The finder-object lifecycle: create, findFile, findNextFile until found=0,
        then close and destroy, also after an error or a cancel (devices keep a few)."""
        obj = await self._create_finder()
        try:
            condition = _query(
                action="findFile",
                object=obj,
                **{
                    "condition.Channel": str(channel.number),
                    "condition.StartTime": self._device_text(since),
                    "condition.EndTime": self._device_text(until),
                    "condition.Types[0]": "dav",
                    "condition.Types[1]": "mp4",
                },
            )
            try:
                await self._cgi("mediaFileFind.cgi", condition)
            except _Refused:
                return  # firmware that answers "Error" when nothing matches
            while True:
                count = limit or self.features.page_size
                text = await self._cgi(
                    "mediaFileFind.cgi", _query(action="findNextFile", object=obj, count=str(count))
                )
                page = self._items(text)
                yield page
                if not page or limit is not None:
                    return
        finally:
            await self._release_finder(obj)

    async def _create_finder(self) -> str:
        try:
            text = await self._cgi("mediaFileFind.cgi", "action=factory.create")
        except _Refused:
            raise Transient(
                f"{self.where} has no search object free (other clients hold them); "
                "it frees them by itself, VPACK tries again later"
            ) from None
        obj = parse_lines(text).get("result", "")
        if not obj.isdigit():
            raise Transient(f"{self.where} answered factory.create without an object: {text!r}")
        return obj

    async def _release_finder(self, obj: str) -> None:
        for action in ("close", "destroy"):
            try:
                await self._cgi("mediaFileFind.cgi", _query(action=action, object=obj))
            except ProviderError as exc:
                log.warning("%s: could not %s search object %s: %s", self.where, action, obj, exc)

    def _items(self, text: str) -> list[Recording]:
        fields: dict[int, dict[str, str]] = {}
        for key, value in parse_lines(text).items():
            found = _ITEM.fullmatch(key)
            if found:
                fields.setdefault(int(found[1]), {})[found[2]] = value
        files: list[Recording] = []
        for index in sorted(fields):
            item = fields[index]
            start = self._from_device(item.get("StartTime", ""))
            end = self._from_device(item.get("EndTime", ""))
            channel = int(item.get("Channel") or 0)
            length = item.get("Length", "")
            files.append(
                _File(
                    # Its start names a recording: the file path changes while it is written.
                    remote_id=f"{channel}/{stamp(start)}",
                    start=start,
                    end=end,
                    channel=channel,
                    file_path=item.get("FilePath", ""),
                    kind=item.get("Type", "dav"),
                    length=int(length) if length.isdigit() else None,
                )
            )
        files.sort(key=lambda f: f.start)
        return files

    def video_of(self, channel: Channel, recording: Recording) -> RemoteVideo:
        assert isinstance(recording, _File)
        return self.recording_video(
            channel,
            recording,
            size=recording.length,
            source_name=recording.file_path,
            extra={
                "file_path": recording.file_path,
                "channel": recording.channel,
                "type": recording.kind,
            },
        )


def _query(**values: str) -> str:
    """A CGI query as the devices' documents write it: brackets as they are, spaces %20."""
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in values.items())


def _said(text: str) -> str:
    """What an `Error` body says, on one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and lines[0] == "Error":
        lines = lines[1:]
    return " ".join(lines)[:200] or "Error"
