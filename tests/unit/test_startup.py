"""What a command imports before it does anything: only what it needs (start-up is
most of a short command's time)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vpack.providers.errors import BadConfig
from vpack.providers.registry import get_provider_class


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_the_cli_and_an_s3_provider_leave_the_cloud_stack_unloaded() -> None:
    loaded = _modules_after(
        "import vpack.cli.commands\n"
        "from vpack.providers.registry import get_provider_class\n"
        "get_provider_class('s3'); get_provider_class('local')"
    )
    assert "vpack.providers.s3.provider" in loaded
    # botocore comes with the first S3 client: a scan's first listing leaves without it.
    unneeded = {
        "httpx",
        "jwt",
        "argon2",
        "alembic",
        "vpack.providers.kit.oauth",
        "botocore",
        "boto3",
    }
    assert not unneeded & loaded, f"imported for nothing: {sorted(unneeded & loaded)}"


def test_an_unknown_provider_names_every_known_one() -> None:
    with pytest.raises(BadConfig) as caught:
        get_provider_class("ftp")
    for name in ("google_drive", "hikvision", "local", "s3"):
        assert name in str(caught.value)


def test_pyav_is_loaded_by_the_first_probe_not_by_start_up() -> None:
    assert "av" not in _modules_after(
        "import vpack.cli.commands, vpack.services, vpack.sync.engine"
    )
    probed = _modules_after(
        "from pathlib import Path\nfrom vpack import media\n"
        "assert media.probe(Path('/nonexistent.mp4')).error"
    )
    assert "av" in probed


def test_the_vpack_command_imports_with_the_collector_paused_then_resumes_it() -> None:
    """The installed `vpack` runs vpack.cli.launch: the CLI's imports run with the
    collector off, what they made is frozen, and the collector is on again after."""
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "vpack"]
    assert script.value == "vpack.cli.launch:main"
    code = (
        "import gc, sys\n"
        "collecting = []\n"
        "def note(event, args):\n"
        "    if event == 'import' and args[0].startswith('sqlalchemy'):\n"
        "        collecting.append(gc.isenabled())\n"
        "sys.addaudithook(note)\n"
        "import vpack.cli.launch\n"
        "sys.argv = ['vpack', '--version']\n"
        "try:\n"
        "    vpack.cli.launch.run()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(len(collecting) > 100, any(collecting), gc.isenabled(), gc.get_freeze_count() > 0)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split()[-4:] == ["True", "False", "True", "True"]


_LEAVING = """
import atexit, sys, threading, time, vpack.cli.launch
class Noisy:
    def __del__(self):
        print("torn down", flush=True)
def on_exit():
    global noisy
    print("exit handlers ran", flush=True)
    noisy = Noisy()  # made after the CLI's freeze: freed by the interpreter's teardown
atexit.register(on_exit)
def late():
    time.sleep(0.2)
    print("thread ended", flush=True)
if sys.argv[1] == "thread":  # a thread still at work when the command returns
    command = vpack.cli.launch.run
    def run():
        try:
            command()
        finally:
            threading.Thread(target=late).start()
    vpack.cli.launch.run = run
sys.argv = ["vpack", *sys.argv[2:]]
vpack.cli.launch.main()
"""


def _leave(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _LEAVING, *argv], capture_output=True, text=True, timeout=60
    )


def test_the_vpack_command_leaves_without_the_interpreters_teardown() -> None:
    from vpack import __version__

    done = _leave("alone", "--version")
    assert done.returncode == 0
    assert __version__ in done.stdout
    assert "exit handlers ran" in done.stdout
    assert "torn down" not in done.stdout


def test_the_vpack_command_keeps_its_exit_status_and_messages() -> None:
    done = _leave("alone", "no-such-command")
    assert done.returncode == 2  # click's usage error
    assert "No such command" in done.stderr
    assert "exit handlers ran" in done.stdout


def test_a_thread_still_running_gets_the_interpreters_own_exit() -> None:
    done = _leave("thread", "--version")
    assert done.returncode == 0
    assert "exit handlers ran" in done.stdout
    assert "thread ended" in done.stdout, "the exit waited for the thread"
    assert "torn down" in done.stdout, "the interpreter's own exit"
