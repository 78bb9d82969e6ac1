"""What a provider's test double must offer so the shared contract can run against it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import select

from vpack import catalog
from vpack.db.models import Video
from vpack.providers.base import Provider
from vpack.services import Services

# Capabilities a harness may declare. A contract case that needs one is only
# generated for harnesses that have it (never skipped), so every listed case
# really runs for every provider that can express it.
RANGED = "ranged"  # open(video, offset) continues mid-file
RATE_LIMIT = "rate_limit"  # the emulator can answer "slow down"
TOKEN_EXPIRY = "token_expiry"  # the emulator can expire the access token
CUT_STREAM = "cut_stream"  # the emulator can drop a download mid-file
WRONG_HASH = "wrong_hash"  # the emulator can send bytes that do not match the hash
# What the source holds. Every harness is one or the other: FILES is implied
# unless a harness declares TIME_INDEXED, so file sources need not say it.
FILES = "files"  # named files: the bytes published are the bytes added; unlisted = removed
TIME_INDEXED = "time_indexed"  # recorders: time ranges on channels, remuxed to MP4
# Devices signed in with a user and password (recorders on the LAN).
LOCKOUT = "lockout"  # the device locks the account after failed logins
DEVICE_CLOCK = "device_clock"  # the device's clock can run ahead of or behind ours
# File stores synced through a change feed (Drive, OneDrive, Dropbox).
FEED_RESET = "feed_reset"  # the store can stop honouring the feed tokens it handed out
CAPABILITIES = {
    RANGED,
    RATE_LIMIT,
    TOKEN_EXPIRY,
    CUT_STREAM,
    WRONG_HASH,
    FILES,
    TIME_INDEXED,
    LOCKOUT,
    DEVICE_CLOCK,
    FEED_RESET,
}


class Harness(ABC):
    """One provider plus the emulator (or real local part) standing in for its vendor."""

    name: ClassVar[str]
    provider_name: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if TIME_INDEXED not in cls.capabilities:
            cls.capabilities = cls.capabilities | {FILES}

    @abstractmethod
    def connection_config(self) -> dict[str, Any]:
        """Stored connection config that reaches the emulator with valid credentials."""

    @abstractmethod
    def bad_connection_config(self) -> dict[str, Any]:
        """Config that must fail check() with a clear error (wrong key, missing path)."""

    @abstractmethod
    def selection(self) -> str:
        """The node id to sync (a folder, bucket prefix or channel)."""

    def source_options(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        """Make a new recording appear at the source under `camera`."""

    @abstractmethod
    async def remove_video(self, camera: str, name: str) -> None:
        """Make a recording disappear at the source."""

    @abstractmethod
    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        """Create child folders under `parent` (None: the selection); return the parent id."""

    # Recorders (TIME_INDEXED): `camera` is a channel name; the selection is channel "Cam1".
    async def add_recording(self, camera: str, start: datetime, seconds: float) -> str:
        """A finished recording on `camera` from `start` (aware); returns its handle."""
        raise AssertionError(f"{self.name} declared no {TIME_INDEXED}")

    async def start_recording(self, camera: str, start: datetime) -> str:
        """A recording still being written; returns its handle."""
        raise AssertionError(f"{self.name} declared no {TIME_INDEXED}")

    async def finish_recording(self, handle: str, end: datetime) -> None:
        """The recording `handle` closed at `end`; its source options must count a
        recording that ended three seconds ago as settled."""
        raise AssertionError(f"{self.name} declared no {TIME_INDEXED}")

    # Devices (LOCKOUT, DEVICE_CLOCK).
    async def lock_account(self) -> None:
        """The device locks the connection's user, as after repeated failed logins."""
        raise AssertionError(f"{self.name} declared no {LOCKOUT}")

    def login_attempts(self) -> int:
        """How many requests carrying the user's credentials the device has seen."""
        raise AssertionError(f"{self.name} declared no {LOCKOUT}")

    async def set_device_clock(self, offset: timedelta) -> None:
        """The device's clock runs `offset` ahead of the true time (negative: behind);
        it stamps its recordings with that clock."""
        raise AssertionError(f"{self.name} declared no {DEVICE_CLOCK}")

    def device_now(self) -> datetime:
        """The device clock's time now (aware)."""
        raise AssertionError(f"{self.name} declared no {DEVICE_CLOCK}")

    # Fault knobs: only called when the matching capability is declared.
    async def rate_limit_next(self, requests: int, retry_after: float) -> None:
        raise AssertionError(f"{self.name} declared no {RATE_LIMIT}")

    async def expire_token(self) -> None:
        raise AssertionError(f"{self.name} declared no {TOKEN_EXPIRY}")

    async def forget_feed_tokens(self) -> None:
        """The store refuses every change-feed token handed out so far, as when one expires."""
        raise AssertionError(f"{self.name} declared no {FEED_RESET}")

    async def cut_next_download(self, after_bytes: int) -> None:
        raise AssertionError(f"{self.name} declared no {CUT_STREAM}")

    async def corrupt_next_download(self) -> None:
        raise AssertionError(f"{self.name} declared no {WRONG_HASH}")

    async def add_source(self, services: Services, **options: Any) -> int:
        """A connection made as a user makes one (checked, secrets in the vault) and a
        source over the harness's selection. Returns the source id."""
        connection, _ = await services.connections.create(
            provider=self.provider_name,
            name=self.name,
            config=self.connection_config(),
            owner_id=None,
            from_api=False,
        )
        return await catalog.add_source(
            services.db,
            services.connections,
            connection_id=connection.id,
            name=f"{self.name} source",
            selections=[self.selection()],
            options={**self.source_options(), **options},
            interval_s=60,
        )

    def build(self, config: dict[str, Any] | None = None) -> Provider:
        from vpack.providers.registry import build_provider

        return build_provider(self.provider_name, config or self.connection_config())

    async def aclose(self) -> None:  # noqa: B027 - the local harness has nothing to stop
        """Stop the emulator."""


async def videos_of(services: Services, source_id: int) -> list[Video]:
    """A source's video rows, oldest first."""
    async with services.db.session() as session:
        rows = await session.execute(
            select(Video).where(Video.source_id == source_id).order_by(Video.id)
        )
        return list(rows.scalars())
