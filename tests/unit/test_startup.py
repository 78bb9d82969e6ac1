"""What a command imports before it does anything: only what it needs (start-up is
most of a short command's time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vpack.providers.base import BadConfig
from vpack.providers.registry import get_provider_class


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_the_cli_and_an_s3_provider_leave_the_cloud_stack_unloaded() -> None:
    loaded = _modules_after(
        "import vpack.cli\n"
        "from vpack.providers.registry import get_provider_class\n"
        "get_provider_class('s3'); get_provider_class('local')"
    )
    assert "vpack.providers.s3" in loaded
    unneeded = {"httpx", "jwt", "argon2", "alembic", "vpack.providers.oauth"}
    assert not unneeded & loaded, f"imported for nothing: {sorted(unneeded & loaded)}"


def test_an_unknown_provider_names_every_known_one() -> None:
    with pytest.raises(BadConfig) as caught:
        get_provider_class("ftp")
    for name in ("google_drive", "hikvision", "local", "s3"):
        assert name in str(caught.value)


def test_pyav_is_loaded_by_the_first_probe_not_by_start_up() -> None:
    assert "av" not in _modules_after("import vpack.cli, vpack.services, vpack.sync.engine")
    probed = _modules_after(
        "from pathlib import Path\nfrom vpack import media\n"
        "assert media.probe(Path('/nonexistent.mp4')).error"
    )
    assert "av" in probed
