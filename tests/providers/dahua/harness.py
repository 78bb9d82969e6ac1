"""The Dahua provider against the HTTP API emulator: an NVR whose channels are the cameras."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.recorder_harness import RecorderHarness
from tests.providers.dahua.emulator import DahuaDevice


class DahuaHarness(RecorderHarness):
    name = "dahua"
    provider_name = "dahua"

    def __init__(self, base: Path) -> None:
        # More channels than one browse page holds, so the shared suite pages through them.
        super().__init__(DahuaDevice(channels=256, device_type="DHI-NVR5864-EI").start())
