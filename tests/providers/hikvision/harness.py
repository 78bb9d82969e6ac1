"""The Hikvision provider against the ISAPI emulator: an NVR whose channels are the cameras."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.recorder_harness import RecorderHarness
from tests.providers.hikvision.emulator import HikvisionDevice


class HikvisionHarness(RecorderHarness):
    name = "hikvision"
    provider_name = "hikvision"

    def __init__(self, base: Path) -> None:
        # A large NVR (the DS-96256NI series takes 256 IP cameras), so the shared
        # suite can page through more channels than one browse page holds.
        super().__init__(HikvisionDevice(channel_capacity=256).start())
