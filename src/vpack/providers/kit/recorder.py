"""The recorder kit: what NVRs, cameras and camera clouds share, whatever they speak.

A recorder keeps recordings as time ranges on channels. The kit browses device →
channel → day, scans a time window (recordings still being written wait; each scan
looks back an overlap for late-indexed ones; the first goes back `history_days`),
checkpoints as it goes when the device lists oldest first, and hands whole
recordings to the remux step (Features.needs_remux). A provider supplies the
channels, the device clock, a time search, the days of a month that have
recordings, and how one recording becomes a RemoteVideo.
"""

from __future__ import annotations

import logging
import re
import time
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import BaseModel, Field

from vpack.providers.base import (
    BrowsePage,
    Checkpoint,
    Features,
    Found,
    Node,
    Provider,
    RemoteVideo,
    ScanEvent,
    Waiting,
)
from vpack.providers.errors import BadConfig, BadRequest, Transient
from vpack.providers.kit.paging import page_of

log = logging.getLogger(__name__)

DEVICE_NODE = "device"
# Before any recorder: where a first scan without `history_days` starts.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Channels are renamed and added on the NVR; a long-running worker looks again now and then.
_CHANNELS_TTL_SECONDS = 600.0


def recorder_features(page_size: int) -> Features:
    """What a recorder can do: whole recordings (no ranges), found by time in scans
    that list only a window, and remuxed to MP4 on arrival."""
    return Features(
        ranged_reads=False,
        full_listing=False,
        time_indexed=True,
        needs_remux=True,
        page_size=page_size,
    )


class RecorderOptions(BaseModel):
    """Per-source settings every recorder has."""

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


@dataclass(frozen=True)
class Channel:
    number: int
    name: str


@dataclass(frozen=True)
class Recording:
    """One recording a device's search returned, its times in UTC."""

    remote_id: str
    start: datetime
    end: datetime


class RecorderProvider(Provider):
    """A Provider for recorders: browse, validate_selection and scan, from a few hooks."""

    def __init__(self, config: BaseModel, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.tz = ZoneInfo(getattr(self.config, "time_zone", "UTC"))
        self._channels: list[Channel] | None = None
        self._channels_at = 0.0

    # ------------------------------------------------------------ hooks
    @property
    @abstractmethod
    def where(self) -> str:
        """How messages name the device."""

    @abstractmethod
    async def device_title(self) -> str:
        """The device's name and model, for the root of the tree."""

    @abstractmethod
    async def list_channels(self) -> list[Channel]:
        """The device's channels, as it names them now."""

    @abstractmethod
    async def device_now(self) -> datetime:
        """The device's clock in UTC (a recording is open relative to it, not to ours)."""

    @abstractmethod
    def recordings(
        self,
        channel: Channel,
        since: datetime,
        until: datetime,
        options: RecorderOptions | None,
        limit: int | None = None,
    ) -> AsyncGenerator[list[Recording]]:
        """Pages of recordings on `channel` overlapping [since, until], oldest first
        where the device allows; `limit` asks for one short page only. The kit closes
        it (aclose) as soon as it has read enough, so what a search holds on the
        device (Dahua's finder objects) is given back at once."""

    @abstractmethod
    async def recorded_days(self, channel: Channel, year: int, month: int) -> list[date]:
        """The days of a month (device-local) on which `channel` recorded."""

    @abstractmethod
    def video_of(self, channel: Channel, recording: Recording) -> RemoteVideo:
        """The recording as the engine keeps it (named .mp4: it is remuxed on arrival)."""

    def recording_video(
        self,
        channel: Channel,
        recording: Recording,
        *,
        size: int | None,
        source_name: str,
        extra: dict[str, Any],
    ) -> RemoteVideo:
        """A recording as the engine keeps it: named by channel and local start, its
        revision the device's size where it tells one (else the end), `source_name`
        (the device's file name) for people to read."""
        start, end = recording.start.astimezone(self.tz), recording.end.astimezone(self.tz)
        return RemoteVideo(
            remote_id=recording.remote_id,
            revision=str(size) if size is not None else stamp(recording.end),
            name=f"{channel.name} {start:%Y-%m-%d %H-%M-%S}.mp4",
            camera=channel.name,
            size=size,
            modified_at=recording.end,
            recorded_start=recording.start,
            recorded_end=recording.end,
            path=f"{channel.name} {start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S} {source_name}".strip(),
            extra=extra,
        )

    # ------------------------------------------------------------ tree
    async def browse(self, node: str | None, page: str | None = None) -> BrowsePage:
        if node is None:
            title = await self.device_title()
            return BrowsePage([Node(id=DEVICE_NODE, name=title, kind="device", selectable=False)])
        if node == DEVICE_NODE:
            channels = await self._channel_list()
            chunk, next_page = page_of(channels, page, self.features.page_size)
            nodes = [Node(id=str(c.number), name=c.name, kind="channel") for c in chunk]
            return BrowsePage(nodes, next_page=next_page)
        channel = await self.channel(node.split("/", 1)[0])
        if "/" in node:
            return BrowsePage([])  # a day has no children
        return await self._days(channel, page)

    async def validate_selection(self, selection: str) -> str:
        return (await self.channel(selection)).name

    async def _channel_list(self) -> list[Channel]:
        if self._channels is None or time.monotonic() - self._channels_at > _CHANNELS_TTL_SECONDS:
            self._channels = sorted(await self.list_channels(), key=lambda c: c.number)
            self._channels_at = time.monotonic()
        return self._channels

    async def channel(self, node: str) -> Channel:
        for channel in await self._channel_list():
            if str(channel.number) == node.strip():
                return channel
        raise BadConfig(f"{self.where} has no channel {node!r}")

    async def _days(self, channel: Channel, page: str | None) -> BrowsePage:
        """Days with recordings, newest first, one month per page."""
        if page is None:
            first = await self._first_recording(channel)
            if first is None:
                return BrowsePage([])
            now = (await self.device_now()).astimezone(self.tz)
            month, oldest = (now.year, now.month), (first.year, first.month)
        else:
            current, _, last = page.partition(":")
            month, oldest = _month(current), _month(last)
        days = sorted(await self.recorded_days(channel, *month), reverse=True)
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

    async def _first_recording(self, channel: Channel) -> datetime | None:
        until = datetime.now(UTC) + timedelta(days=1)
        async with aclosing(self.recordings(channel, EARLIEST, until, None, limit=1)) as pages:
            async for page in pages:
                return page[0].start.astimezone(self.tz) if page else None
        return None

    # ------------------------------------------------------------ scan
    async def scan(
        self, selection: str, cursor: str | None, options: BaseModel
    ) -> AsyncIterator[ScanEvent]:
        assert isinstance(options, RecorderOptions)
        channel = await self.channel(selection)
        now = await self.device_now()
        known_until = parse_cursor(cursor)
        if known_until is not None:
            since = known_until - timedelta(seconds=options.overlap_seconds)
        elif options.history_days:
            since = now - timedelta(days=options.history_days)
        else:
            since = EARLIEST
        open_after = now - timedelta(seconds=options.settle_seconds)
        seen: set[str] = set()
        newest_end = known_until
        last_start: datetime | None = None
        ordered = True  # devices list oldest first; checkpoints mid-scan rely on it
        search = self.recordings(channel, since, now + timedelta(hours=1), options)
        async with aclosing(search) as pages:
            async for page in pages:
                starts = [r.start for r in page]
                if last_start is not None:
                    starts.insert(0, last_start)
                ordered = ordered and starts == sorted(starts)
                for recording in page:
                    if recording.remote_id in seen:
                        continue
                    seen.add(recording.remote_id)
                    if recording.end > open_after:
                        # Still being written: taken once it closes.
                        yield Waiting(recording.remote_id)
                        continue
                    if recording.end <= recording.start:
                        log.info(
                            "%s: skipping %s, it has no length", self.where, recording.remote_id
                        )
                        continue
                    yield Found(self.video_of(channel, recording))
                    newest_end = max(newest_end or recording.end, recording.end)
                if page and ordered:
                    # All that ends before this page's last start has been seen, so a
                    # crash after this point loses nothing.
                    last_start = page[-1].start
                    mark = max(known_until or last_start, last_start)
                    yield Checkpoint(cursor=format_cursor(mark), complete=False)
        yield Checkpoint(cursor=format_cursor(newest_end) if newest_end else cursor)

    # ------------------------------------------------------------ clock
    def clock_warning(self, device_local: datetime) -> str | None:
        """Say so when the UTC offset the device reports differs from the configured zone."""
        if device_local.tzinfo is None:
            return None
        expected = device_local.astimezone(self.tz).utcoffset()
        if device_local.utcoffset() == expected:
            return None
        return (
            f"the device clock runs at UTC{_offset(device_local.utcoffset())}, but the "
            f"connection says {self.tz.key} (UTC{_offset(expected)}): recording times will be off"
        )


async def whole_recording(
    response: httpx.Response, what: str, chunk_size: int = 1024 * 1024
) -> AsyncIterator[bytes]:
    """A recording's bytes; a break restarts it, for recorders cannot resume mid-way."""
    try:
        async for chunk in response.aiter_bytes(chunk_size):
            yield chunk
    except httpx.HTTPError as exc:
        raise Transient(
            f"{what}: the device broke off the download "
            f"({type(exc).__name__}); it starts again from the beginning",
            restart=True,
        ) from None
    finally:
        await response.aclose()


def refuse_resume(offset: int) -> None:
    if offset:
        raise Transient("recordings cannot be resumed mid-way", restart=True)


# ---------------------------------------------------------------- cursors and times


def stamp(when: datetime) -> str:
    """A compact UTC time for ids and revisions."""
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def format_cursor(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_cursor(cursor: str | None) -> datetime | None:
    """The end of the newest recording taken so far (UTC), or None for a first scan."""
    if not cursor:
        return None
    try:
        parsed = datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    except ValueError:
        log.warning("ignoring an unreadable recorder cursor %r: scanning from the start", cursor)
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _month(text: str) -> tuple[int, int]:
    """A month as the day pages' tokens write it, YYYY-MM."""
    found = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", text, re.ASCII)
    if found is None:
        raise BadRequest(f"{text!r} is not a page token this list gave")
    return int(found[1]), int(found[2])


def _month_text(month: tuple[int, int]) -> str:
    return f"{month[0]:04d}-{month[1]:02d}"


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
