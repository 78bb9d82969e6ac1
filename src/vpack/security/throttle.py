"""Rate limits: failed logins per IP and per account, requests per user."""

from __future__ import annotations

import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from vpack.settings import Settings


class Throttle:
    """Moving windows kept in memory (one process) or Redis (many: VPACK_RATE_LIMIT_STORAGE)."""

    def __init__(self, settings: Settings) -> None:
        self.limiter = MovingWindowRateLimiter(storage_from_string(settings.rate_limit_storage))
        self.login_limit = parse(settings.login_failure_limit)
        self.api_limit = parse(settings.api_rate_limit)

    def _retry_after(self, limit: RateLimitItem, *key: str) -> float:
        reset = self.limiter.get_window_stats(limit, *key).reset_time
        return max(1.0, reset - time.time())

    def login_blocked(self, ip: str, email: str) -> float | None:
        """Seconds to wait when this IP or this account failed too often, else None."""
        for key in (("login-ip", ip), ("login-account", email.lower())):
            if not self.limiter.test(self.login_limit, *key):
                return self._retry_after(self.login_limit, *key)
        return None

    def login_failed(self, ip: str, email: str) -> None:
        self.limiter.hit(self.login_limit, "login-ip", ip)
        self.limiter.hit(self.login_limit, "login-account", email.lower())

    def api_request(self, user_id: int) -> float | None:
        """Count one request; seconds to wait if the user is over the limit."""
        if self.limiter.hit(self.api_limit, "api-user", str(user_id)):
            return None
        return self._retry_after(self.api_limit, "api-user", str(user_id))
