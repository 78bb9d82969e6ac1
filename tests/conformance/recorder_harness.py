"""What the harnesses of LAN recorder emulators share: channels named as cameras,
recordings made on the emulator's thread, and its lock, clock and cut knobs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any, Protocol

from tests.conformance.harness import CUT_STREAM, DEVICE_CLOCK, LOCKOUT, TIME_INDEXED, Harness

PASSWORD = "Vpack-12345"


class RecorderDevice(Protocol):
    """The knobs every recorder emulator has (Hikvision, Dahua)."""

    @property
    def port(self) -> int: ...

    clock_skew: timedelta
    credentialed_requests: int

    def add_channel(self, name: str) -> int: ...
    def channel_named(self, name: str) -> int: ...
    def add_recording(self, channel: int, start: datetime, seconds: float) -> Any: ...
    def start_recording(self, channel: int, start: datetime) -> Any: ...
    def finish_recording(self, recording: Any, end: datetime | None = None) -> None: ...
    def lock_account(self, user: str = "admin") -> None: ...
    def now(self) -> datetime: ...
    def cut_next_downloads(self, after_bytes: int) -> None: ...
    def stop(self) -> None: ...


class RecorderHarness(Harness):
    """A LAN recorder: an NVR whose channels are the cameras; user admin."""

    capabilities = frozenset({TIME_INDEXED, CUT_STREAM, LOCKOUT, DEVICE_CLOCK})
    device: RecorderDevice

    def __init__(self, device: RecorderDevice) -> None:
        self.device = device
        self.recordings: dict[str, Any] = {}

    def connection_config(self) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "port": self.device.port,
            "username": "admin",
            "password": PASSWORD,
        }

    def bad_connection_config(self) -> dict[str, Any]:
        return {**self.connection_config(), "password": "not-the-password"}

    def selection(self) -> str:
        return str(self._channel("Cam1"))

    def source_options(self) -> dict[str, Any]:
        return {"settle_seconds": 1, "overlap_seconds": 600}

    def _channel(self, camera: str) -> int:
        """The channel named `camera`, added to the NVR on first use."""
        try:
            return self.device.channel_named(camera)
        except KeyError:
            return self.device.add_channel(camera)

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        raise AssertionError("a recorder holds recordings, not files: use add_recording")

    async def remove_video(self, camera: str, name: str) -> None:
        raise AssertionError("a recorder holds recordings, not files")

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        for name in names:
            self.device.add_channel(name)
        return "device"

    def _keep(self, recording: Any) -> str:
        handle = str(len(self.recordings))
        self.recordings[handle] = recording
        return handle

    async def add_recording(self, camera: str, start: datetime, seconds: float) -> str:
        channel = self._channel(camera)
        recording = await asyncio.to_thread(self.device.add_recording, channel, start, seconds)
        return self._keep(recording)

    async def start_recording(self, camera: str, start: datetime) -> str:
        return self._keep(self.device.start_recording(self._channel(camera), start))

    async def finish_recording(self, handle: str, end: datetime) -> None:
        await asyncio.to_thread(self.device.finish_recording, self.recordings[handle], end)

    async def lock_account(self) -> None:
        self.device.lock_account("admin")

    def login_attempts(self) -> int:
        return self.device.credentialed_requests

    async def set_device_clock(self, offset: timedelta) -> None:
        self.device.clock_skew = offset

    def device_now(self) -> datetime:
        return self.device.now()

    async def cut_next_download(self, after_bytes: int) -> None:
        self.device.cut_next_downloads(after_bytes)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.device.stop)
