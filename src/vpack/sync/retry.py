"""What a failure does to a video row: the error classes drive retry and backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from vpack.db.models import VideoState
from vpack.providers.errors import AuthExpired, NotFound, Permanent, RateLimited, Transient


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 30.0
    cap_seconds: float = 6 * 3600.0
    rate_limit_default_seconds: float = 60.0
    # A source whose settings fail waits at least this long, doubling up to the cap:
    # a NAS that comes back is found again, a typo does not fill the log every tick.
    attention_first_seconds: float = 3600.0
    attention_cap_seconds: float = 24 * 3600.0

    def backoff(self, attempts: int) -> float:
        """Exponential with full jitter (AWS architecture blog's recommendation)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** max(0, attempts - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def attention_wait(self, interval_s: float, previous_wait: float | None) -> float:
        """Seconds until a source that needs attention is tried again on its own.

        `previous_wait` is the wait after its last failed scan, if that one failed
        the same way."""
        first = max(float(interval_s), self.attention_first_seconds)
        if previous_wait is None:
            return min(first, self.attention_cap_seconds)
        return min(max(first, previous_wait * 2), self.attention_cap_seconds)


@dataclass(frozen=True)
class Verdict:
    """The row changes for one failure, and what the run should do next."""

    values: dict[str, Any]
    counts_as_failure: bool  # reported as "failed" in this run
    pause_connection_for: float | None = None
    reauth: bool = False

    @property
    def final(self) -> bool:
        """No retry will come: staged bytes can go."""
        return self.values.get("state") in (VideoState.FAILED, VideoState.SKIPPED)


def judge(exc: BaseException, attempts: int, policy: RetryPolicy, now: datetime) -> Verdict:
    """Map an error raised while fetching a video onto its row's next state."""
    message = _message(exc)
    released: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "error": message}
    if isinstance(exc, RateLimited):
        wait = exc.retry_after or policy.rate_limit_default_seconds
        return Verdict(
            values={
                **released,
                "state": VideoState.PENDING,
                "next_attempt_at": now + timedelta(seconds=wait),
            },
            counts_as_failure=False,
            pause_connection_for=wait,
        )
    if isinstance(exc, AuthExpired):
        return Verdict(
            values={**released, "state": VideoState.PENDING, "next_attempt_at": None},
            counts_as_failure=True,
            reauth=True,
        )
    if isinstance(exc, NotFound):
        return Verdict(values={**released, "state": VideoState.SKIPPED}, counts_as_failure=False)
    if isinstance(exc, Permanent):
        return Verdict(
            values={**released, "state": VideoState.FAILED, "attempts": attempts + 1},
            counts_as_failure=True,
        )
    if isinstance(exc, Transient) and exc.retry_after is not None:
        # A quota on this one item (Drive's downloadQuotaExceeded): it is parked
        # for as long as the vendor says, costing no attempt, and the rest goes on.
        return Verdict(
            values={
                **released,
                "state": VideoState.PENDING,
                "next_attempt_at": now + timedelta(seconds=exc.retry_after),
            },
            counts_as_failure=False,
        )
    # Transient, and anything unexpected (a bug or an OS error) is retried too:
    # giving up on a recording is worse than trying again later.
    tries = attempts + 1
    if tries >= policy.max_attempts:
        values = {
            **released,
            "state": VideoState.FAILED,
            "attempts": tries,
            "error": f"gave up after {tries} attempts: {message}",
        }
    else:
        values = {
            **released,
            "state": VideoState.PENDING,
            "attempts": tries,
            "next_attempt_at": now + timedelta(seconds=policy.backoff(tries)),
        }
    return Verdict(values=values, counts_as_failure=True)


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, Transient | Permanent | NotFound | AuthExpired | RateLimited):
        return text or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
