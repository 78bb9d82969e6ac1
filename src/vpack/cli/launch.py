"""The `vpack` command's entry point: the CLI imported with the collector paused, and
left without tearing the interpreter down."""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
from typing import NoReturn


def run() -> None:
    """Import the CLI and run the command; it ends by raising SystemExit."""
    # Importing the CLI makes some 70,000 objects (modules, classes, SQLAlchemy's
    # and pydantic's structures) that live as long as the command. Collecting while
    # they are made finds nothing and took 11% of the import (335 -> 298 ms); once
    # imported they are frozen out of later collections, as `vpack.cli._run` did.
    gc.disable()
    try:
        from vpack.cli.commands import main as cli
    finally:
        gc.freeze()
        gc.enable()
    cli()


def main() -> NoReturn:
    try:
        run()
    except SystemExit as done:
        status = done.code
    else:
        status = None
    leave(status)


def leave(status: object) -> NoReturn:
    """Exit with `status` as SystemExit would, after the exit handlers but without
    the interpreter's teardown: freeing every module and object one by one took
    56 ms after the last byte of a `vpack sync`, a tenth of a short command's
    time, for memory the process hands back whole anyway."""
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        raise SystemExit(status)  # the interpreter's exit waits for those threads to end
    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status
    else:  # as Python does with `sys.exit("message")`
        print(status, file=sys.stderr)
        code = 1
    # What the interpreter's exit would still have run: logging's flush, coverage's
    # save and the like (atexit has no public way to run them early).
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the status Python gives this
            code = code or 120
    os._exit(code)
