"""What a source takes of the videos it finds: name patterns, a smallest size, a first day.

Applied when a scan reports a video, before it is recorded: a filtered video is
never fetched. The same for every provider, so it lives beside the engine, not in
the providers.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, tzinfo
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vpack.bounds import Day
from vpack.providers.base import RemoteVideo
from vpack.providers.errors import BadConfig

_MB = 1_000_000


class SourceFilters(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Filters")

    include: list[str] = Field(
        default_factory=list,
        max_length=50,
        title="Only names like",
        description="Take only videos whose name matches one of these patterns, one per "
        "line (order-*, *.mp4; * is any text). Empty: every video.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        max_length=50,
        title="Skip names like",
        description="Skip videos whose name matches any of these patterns (*-preview.mp4).",
    )
    min_size_mb: float | None = Field(
        default=None,
        ge=0,
        title="Smallest size (MB)",
        description="Skip videos smaller than this: test clips, empty recordings.",
    )
    since: Day | None = Field(
        default=None,
        title="From day",
        description="Skip videos recorded (or last changed) before this day, YYYY-MM-DD: "
        "a new source then does not fetch years of history.",
    )

    @classmethod
    def stored(cls, value: dict[str, Any] | None) -> SourceFilters:
        """Filters as a source keeps them; BadConfig (the user's to fix) if they are not
        valid, such as those an older version stored without reading them."""
        try:
            return cls.model_validate(value or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error.get("loc", ())) or "filters"
            raise BadConfig(f"invalid filters: {where}: {error['msg']}") from None

    def accepts(self, video: RemoteVideo, zone: tzinfo | None = None) -> bool:
        """Does the source take `video`? `zone` says where `since` starts (None: here)."""
        name = video.name.casefold()
        if self.include and not any(fnmatchcase(name, p.casefold()) for p in self.include):
            return False
        if any(fnmatchcase(name, p.casefold()) for p in self.exclude):
            return False
        if (
            self.min_size_mb is not None
            and video.size is not None
            and video.size < self.min_size_mb * _MB
        ):
            return False
        when = video.recorded_start or video.modified_at
        if self.since is not None and when is not None:
            if when.tzinfo is None:  # providers report UTC
                when = when.replace(tzinfo=UTC)
            midnight = datetime.combine(self.since, time())
            # The day starts at the shop's midnight: `zone`, or this machine's.
            start = midnight.replace(tzinfo=zone) if zone else midnight.astimezone()
            if when < start:
                return False
        return True
