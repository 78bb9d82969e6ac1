"""What recorder emulators share: the lock-out after refused logins that NVRs and
cameras impose, the Digest nonces they hand out (RFC 7616), and their disk and clock."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from tests.emulators.serving import Cut

_R = TypeVar("_R")


@dataclass
class LoginLock:
    failures: int = 0
    until: float = 0.0  # monotonic time the lock ends; 0 = not locked


@dataclass
class Challenge:
    issued: float
    counts: set[str] = field(default_factory=set)


class DeviceLogins:
    """Mixed into a device emulator, which sets these in its __init__ (tests change the
    numbers on a running device)."""

    _lock: threading.RLock
    lock_after: int
    lock_seconds: float
    nonce_ttl: float
    failed_logins: int
    _locks: dict[str, LoginLock]
    _nonces: dict[str, Challenge]

    def lock_account(self, user: str = "admin") -> None:
        with self._lock:
            self._locks[user] = LoginLock(self.lock_after, time.monotonic() + self.lock_seconds)

    def unlock_account(self, user: str = "admin") -> None:
        with self._lock:
            self._locks.pop(user, None)

    def is_locked(self, user: str = "admin") -> bool:
        with self._lock:
            return self._locks.get(user, LoginLock()).until > time.monotonic()

    def expire_nonces(self) -> None:
        """Every nonce issued so far goes stale, as after the device's nonce lifetime."""
        with self._lock:
            # Not 0.0: the monotonic clock may itself be younger than the lifetime
            # on a machine that has just booted.
            for challenge in self._nonces.values():
                challenge.issued = float("-inf")

    def _judge_login(self, name: str, ok: bool) -> LoginLock | None:
        """None when the login is taken; else the user's lock state (`until` set: locked).
        A refused login counts towards the lock; insisting during a lock starts it again."""
        with self._lock:
            lock = self._locks.setdefault(name, LoginLock())
            now = time.monotonic()
            if lock.until and lock.until <= now:
                lock.failures, lock.until = 0, 0.0
            if not ok:
                self.failed_logins += 1
                lock.failures += 1
                if lock.until or lock.failures >= self.lock_after:
                    lock.until = now + self.lock_seconds
                return lock
            if lock.until:
                return lock
            lock.failures = 0
            return None

    def _new_nonce(self) -> str:
        nonce = secrets.token_hex(24)
        with self._lock:
            now = time.monotonic()
            # Nonces past their lifetime are forgotten, not kept for ever.
            for old in [n for n, c in self._nonces.items() if now - c.issued > self.nonce_ttl]:
                del self._nonces[old]
            self._nonces[nonce] = Challenge(now)
        return nonce

    def _nonce_stale(self, nonce: str, count: str) -> bool:
        """A right answer to a nonce past its lifetime, or one repeating a nonce count
        (a replay, RFC 7616 §3.4): a fresh challenge rather than a failed login."""
        with self._lock:
            challenge = self._nonces.get(nonce)
            if challenge is None or time.monotonic() - challenge.issued > self.nonce_ttl:
                return True
            stale = count in challenge.counts
            challenge.counts.add(count)
            return stale


class DeviceDisk(Generic[_R]):
    """Mixed into a recorder emulator: its recordings, its clock (which may run off the
    true time), and downloads cut short on request. The emulator sets these in __init__."""

    _lock: threading.RLock
    _recordings: list[_R]
    _cuts: list[Cut]
    clock_skew: timedelta  # the device clock minus the true time

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_skew

    def remove_recording(self, recording: _R) -> None:
        """The disk wrapped round and overwrote it."""
        with self._lock:
            self._recordings.remove(recording)

    def recordings(self) -> list[_R]:
        with self._lock:
            return list(self._recordings)

    def cut_next_downloads(self, after_bytes: int, *, count: int = 1, drop: bool = True) -> None:
        """The next `count` downloads stop after `after_bytes`: the connection breaks
        (`drop=True`) or the answer simply ends early."""
        with self._lock:
            self._cuts.extend(Cut(after_bytes, drop) for _ in range(count))
