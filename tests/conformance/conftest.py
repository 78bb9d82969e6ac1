"""The harness fixture: every contract case runs once per provider that can express it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conformance.harness import CAPABILITIES, Harness
from tests.providers.dahua.harness import DahuaHarness
from tests.providers.dropbox.harness import DropboxHarness
from tests.providers.google_drive.harness import GoogleDriveHarness
from tests.providers.hikvision.harness import HikvisionHarness
from tests.providers.local.harness import LocalHarness
from tests.providers.onedrive.harness import OneDriveHarness
from tests.providers.s3.harness import S3Harness

_NOBODY = "no-provider-has-this-capability"

# One line per provider: name -> (capabilities, factory). Factories get a temp dir.
HARNESSES: dict[str, tuple[frozenset[str], Callable[[Path], Harness]]] = {
    "local": (LocalHarness.capabilities, LocalHarness),
    "s3": (S3Harness.capabilities, S3Harness),
    "hikvision": (HikvisionHarness.capabilities, HikvisionHarness),
    "dahua": (DahuaHarness.capabilities, DahuaHarness),
    "google_drive": (GoogleDriveHarness.capabilities, GoogleDriveHarness),
    "onedrive": (OneDriveHarness.capabilities, OneDriveHarness),
    "dropbox": (DropboxHarness.capabilities, DropboxHarness),
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(*capabilities): harness capabilities required")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "harness_name" not in metafunc.fixturenames:
        return
    needed: set[str] = set()
    for mark in metafunc.definition.iter_markers("needs"):
        unknown = set(mark.args) - CAPABILITIES
        if unknown:
            raise pytest.UsageError(f"unknown capability {unknown} on {metafunc.function}")
        needed.update(mark.args)
    names = [n for n, (caps, _) in HARNESSES.items() if needed <= caps]
    # No provider can express this case yet (e.g. rate limits before the first
    # cloud emulator): a placeholder that is deselected below, not skipped.
    metafunc.parametrize("harness_name", names or [_NOBODY])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unused = [
        i
        for i in items
        if getattr(i, "callspec", None) and i.callspec.params.get("harness_name") == _NOBODY
    ]
    if unused:
        config.hook.pytest_deselected(items=unused)
        items[:] = [i for i in items if i not in unused]


@pytest.fixture
async def harness(harness_name: str, tmp_path: Path) -> AsyncIterator[Harness]:
    _, factory = HARNESSES[harness_name]
    made = factory(tmp_path / "vendor")
    try:
        yield made
    finally:
        await made.aclose()
