"""How each error class moves a video row: the retry policy on its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from vpack.db.models import VideoState
from vpack.providers.errors import AuthExpired, NotFound, Permanent, RateLimited, Transient
from vpack.sync.retry import RetryPolicy, judge

NOW = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base_seconds=10, cap_seconds=100)


def test_rate_limits_wait_as_told_and_cost_no_attempt() -> None:
    verdict = judge(RateLimited("slow down", retry_after=42), 2, POLICY, NOW)
    assert verdict.values["state"] == VideoState.PENDING and "attempts" not in verdict.values
    assert verdict.values["next_attempt_at"] == NOW + timedelta(seconds=42)
    assert verdict.pause_connection_for == 42 and not verdict.counts_as_failure
    assert not verdict.final
    unspecified = judge(RateLimited("slow down"), 0, POLICY, NOW)
    assert unspecified.pause_connection_for == POLICY.rate_limit_default_seconds


def test_auth_errors_park_the_connection() -> None:
    verdict = judge(AuthExpired("token revoked"), 0, POLICY, NOW)
    assert verdict.reauth and verdict.values["state"] == VideoState.PENDING
    assert verdict.values["error"] == "token revoked"


def test_gone_items_are_skipped_not_failed() -> None:
    verdict = judge(NotFound("deleted at the source"), 0, POLICY, NOW)
    assert verdict.values["state"] == VideoState.SKIPPED and verdict.final
    assert not verdict.counts_as_failure


def test_permanent_errors_fail_at_once() -> None:
    verdict = judge(Permanent("file is encrypted"), 0, POLICY, NOW)
    assert verdict.values["state"] == VideoState.FAILED and verdict.final


@pytest.mark.parametrize(
    "exc", [Transient("cut"), ConnectionResetError(104, "reset"), RuntimeError("bug")]
)
def test_transient_and_unexpected_errors_back_off_then_give_up(exc: Exception) -> None:
    first = judge(exc, 0, POLICY, NOW)
    assert first.values["state"] == VideoState.PENDING and first.values["attempts"] == 1
    wait = (first.values["next_attempt_at"] - NOW).total_seconds()
    assert 5 <= wait <= 10
    last = judge(exc, 2, POLICY, NOW)
    assert last.values["state"] == VideoState.FAILED and last.final
    assert last.values["error"].startswith("gave up after 3 attempts")


def test_an_item_quota_parks_only_that_item_without_costing_an_attempt() -> None:
    verdict = judge(Transient("download quota", retry_after=6 * 3600), 5, POLICY, NOW)
    assert verdict.values["state"] == VideoState.PENDING and "attempts" not in verdict.values
    assert verdict.values["next_attempt_at"] == NOW + timedelta(hours=6)
    assert verdict.pause_connection_for is None and not verdict.counts_as_failure


def test_backoff_grows_and_is_capped() -> None:
    waits = [POLICY.backoff(n) for n in range(1, 10)]
    assert all(POLICY.cap_seconds / 2 <= w <= POLICY.cap_seconds for w in waits[4:])
    assert waits[0] <= 10 < POLICY.cap_seconds


def test_messages_are_readable() -> None:
    assert (
        judge(FileNotFoundError(2, "No such file", "/x"), 0, POLICY, NOW).values["error"]
        == "No such file (/x)"
    )
    assert judge(RuntimeError(), 0, POLICY, NOW).values["error"] == "RuntimeError"
