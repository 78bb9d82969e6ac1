"""The local-folder provider against real directories in a temporary folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from tests.conformance.harness import RANGED, Harness


class LocalHarness(Harness):
    name = "local"
    provider_name = "local"
    capabilities = frozenset({RANGED})

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "footage"
        self.root.mkdir(parents=True)

    def connection_config(self) -> dict[str, Any]:
        return {"roots": [str(self.base)]}

    def bad_connection_config(self) -> dict[str, Any]:
        return {"roots": [str(self.base / "no-such-folder")]}

    def selection(self) -> str:
        return str(self.root)

    def source_options(self) -> dict[str, Any]:
        return {"settle_seconds": 0}

    async def add_video(self, camera: str, name: str, data: bytes) -> None:
        path = self.root / camera / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        # Back-date it so the settle window can never hide it from a fast test.
        past = time.time() - 3600
        os.utime(path, (past, past))

    async def remove_video(self, camera: str, name: str) -> None:
        (self.root / camera / name).unlink()

    async def add_folders(self, parent: str | None, names: list[str]) -> str:
        where = Path(parent) if parent else self.root
        for name in names:
            (where / name).mkdir(parents=True, exist_ok=True)
        return str(where)
