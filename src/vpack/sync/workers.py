"""Who holds a lease: worker ids that let a restarted worker spot a dead one's leases."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass


def _start_ticks(pid: int) -> str:
    """When a process started (clock ticks since boot), or "" where /proc is absent.

    A pid alone cannot tell a worker from its dead predecessor: in a container
    every restart is pid 1 again, and pids are reused on any busy host.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def make_worker_id() -> str:
    """host:pid:start:random — unique to this process, and checkable by its successors."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class WorkerId:
    host: str
    pid: int
    start: str

    @classmethod
    def parse(cls, owner: str) -> WorkerId | None:
        parts = owner.split(":")
        if len(parts) != 4 or not parts[1].isdigit():
            return None  # not one of ours (another tool, or an older format)
        return cls(parts[0], int(parts[1]), parts[2])

    def is_dead_on_this_host(self) -> bool:
        """True when this worker ran here and its process is gone (crash, kill -9)."""
        if self.host != socket.gethostname():
            return False  # another machine's worker: its lease expiry decides
        if not _pid_exists(self.pid):
            return True
        # The pid lives, but is it the same process? A different start time says no.
        return bool(self.start) and _start_ticks(self.pid) != self.start


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
