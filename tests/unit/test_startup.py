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


def test_the_vpack_command_imports_with_the_collector_paused_then_resumes_it() -> None:
    """The installed `vpack` runs vpack.launch: the CLI's imports run with the
    collector off, what they made is frozen, and the collector is on again after."""
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "vpack"]
    assert script.value == "vpack.launch:main"
    code = (
        "import gc, sys\n"
        "collecting = []\n"
        "def note(event, args):\n"
        "    if event == 'import' and args[0].startswith('sqlalchemy'):\n"
        "        collecting.append(gc.isenabled())\n"
        "sys.addaudithook(note)\n"
        "import vpack.launch\n"
        "sys.argv = ['vpack', '--version']\n"
        "try:\n"
        "    vpack.launch.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(len(collecting) > 100, any(collecting), gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split()[-4:] == ["True", "False", "True", "True"]
