"""The HTTP client every web provider shares: timeouts, retries, pacing and quiet logs.

A provider describes its vendor's error bodies once (`describe_error`, a
response -> typed error function); this layer decides what to do with them:
- every read has a timeout, so a stalled server becomes Transient, never a hang;
- Transient answers and dropped connections are retried with full-jitter backoff,
  for idempotent requests only;
- RateLimited answers pause *every* request of the account (one ApiClient per
  connection) for Retry-After, or for a backoff when the vendor gives none; a
  short wait is sat out here, a long one goes to the engine, which parks the
  connection rather than holding a worker;
- OAuth providers send through their TokenManager (refresh once on a 401);
- URLs are logged with their secret query values masked (httpx logs every
  request at INFO with the full URL, and some vendors put keys in the query).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from vpack import __version__
from vpack.providers.errors import ProviderError, RateLimited, Transient

if TYPE_CHECKING:
    from vpack.providers.kit.oauth import TokenManager

# Connect fast or give up; reads may wait on a slow recorder, but never forever.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
USER_AGENT = f"vpack-sources/{__version__}"

log = logging.getLogger(__name__)

DescribeError = Callable[[httpx.Response], ProviderError]


def new_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx client with our timeouts and User-Agent; kwargs override (auth, verify...)."""
    headers = {"User-Agent": USER_AGENT, **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    return httpx.AsyncClient(headers=headers, **kwargs)


# Longer asks are taken as this: a day keeps a source parked without overflowing dates.
MAX_RETRY_AFTER = 24 * 3600.0
# RFC 9110's delay-seconds is digits; a decimal fraction is tolerated.
_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if _DELAY_SECONDS.fullmatch(value.strip()):  # not "inf", "1e400" or "-5"
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER)


# ---------------------------------------------------------------- policy


@dataclass(frozen=True)
class HttpPolicy:
    """How hard one request tries before its error goes up to the engine."""

    attempts: int = 4  # tries per request, the first included
    backoff_base: float = 1.0  # seconds; doubles per try, with full jitter
    backoff_cap: float = 30.0
    max_inline_wait: float = 30.0  # a longer Retry-After is the engine's to wait out
    min_interval: float = 0.0  # per-account pacing: seconds between request starts

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempt - 1))
        return random.uniform(0, ceiling)


class Pacer:
    """Spaces the requests of one account and holds them all during a rate-limit pause."""

    def __init__(self, min_interval: float = 0.0) -> None:
        self.min_interval = min_interval
        self._next_start = 0.0  # monotonic time the next request may start
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    @property
    def paused_for(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    async def wait(self) -> None:
        async with self._lock:  # one waiter at a time keeps the spacing exact
            now = time.monotonic()
            start = max(now, self._next_start, self._paused_until)
            self._next_start = start + self.min_interval
        if start > now:
            await asyncio.sleep(start - now)


# ---------------------------------------------------------------- client


class ApiClient:
    """One account's door to a vendor API."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        describe_error: DescribeError,
        *,
        tokens: TokenManager | None = None,
        policy: HttpPolicy | None = None,
    ) -> None:
        self.http = http
        self.describe_error = describe_error
        self.tokens = tokens
        self.policy = policy or HttpPolicy()
        self.pacer = Pacer(self.policy.min_interval)
        self.requests_sent = 0  # for benchmarks and tests that count calls

    async def request(
        self,
        method: str,
        url: str,
        *,
        stream: bool = False,
        idempotent: bool = True,
        redirect: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """A successful (2xx) response, or the vendor's error as a typed ProviderError.

        With `redirect=True` a 3xx carrying a Location is an answer too (a download
        endpoint that points at a pre-signed URL: its target is for the caller to read,
        without our credentials). With `stream=True` the caller must close the
        response (`await r.aclose()`).
        """
        policy = self.policy
        for attempt in range(1, policy.attempts + 1):
            last = attempt == policy.attempts or not idempotent
            await self.pacer.wait()
            try:
                response = await self._send(method, url, stream=stream, **kwargs)
            except Transient:
                if last:
                    raise
                await asyncio.sleep(policy.backoff(attempt))
                continue
            if response.is_success or (
                redirect and response.is_redirect and "location" in response.headers
            ):
                return response
            await response.aread()
            await response.aclose()
            error = self.describe_error(response)
            if isinstance(error, RateLimited):
                wait = error.retry_after
                if wait is None:
                    wait = policy.backoff(attempt + 1) + policy.backoff_base
                self.pacer.pause(wait)
                if last or wait > policy.max_inline_wait:
                    raise RateLimited(str(error), retry_after=wait) from None
                continue  # pacer.wait() sits out the pause
            # A Transient that names its own wait (a per-file quota) is not retried
            # here: retrying now would spend what the vendor asked us to rest.
            if (
                isinstance(error, Transient)
                and not error.restart
                and error.retry_after is None
                and not last
            ):
                await asyncio.sleep(policy.backoff(attempt))
                continue
            raise error
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """`request` for a JSON answer; a body that is not JSON is a Transient vendor fault."""
        response = await self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise Transient(
                f"{method} {redact_url(response.request.url)} answered "
                f"{response.status_code} with a body that is not JSON"
            ) from None

    async def _send(self, method: str, url: str, *, stream: bool, **kwargs: Any) -> httpx.Response:
        self.requests_sent += 1
        if self.tokens is not None:
            return await self.tokens.authorized_request(method, url, stream=stream, **kwargs)
        request = self.http.build_request(method, url, **kwargs)
        try:
            return await self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            raise Transient(
                f"{method} {redact_url(request.url)} failed: {type(exc).__name__} {exc!s}"
            ) from exc

    async def aclose(self) -> None:
        await self.http.aclose()


def stream_failure(exc: httpx.HTTPError, what: str) -> Transient:
    """A body that broke off mid-way: the bytes so far are good, resume after them."""
    return Transient(f"{what}: the connection broke off ({type(exc).__name__}: {exc!s})")


async def ranged_read(
    api: ApiClient, url: str, offset: int, what: str, **kwargs: Any
) -> AsyncIterator[bytes]:
    """A file's bytes from `offset`, as they arrive (a fixed chunk size would lose a
    partial one on a cut). A server that answers a Range with 200 sends the whole file
    again: that restarts the copy instead of appending byte 0 after byte `offset`."""
    headers = {**kwargs.pop("headers", {}), **({"Range": f"bytes={offset}-"} if offset else {})}
    response = await api.request("GET", url, headers=headers, stream=True, **kwargs)
    try:
        if offset and response.status_code != 206:
            raise Transient(
                f"{what}: the server ignored the range request (HTTP {response.status_code})",
                restart=True,
            )
        try:
            async for chunk in response.aiter_bytes():
                yield chunk
        except httpx.HTTPError as exc:
            raise stream_failure(exc, what) from None
    finally:
        await response.aclose()


async def resuming(
    read: Callable[[int], AsyncIterator[bytes]], start: int, what: str, retries: int = 3
) -> AsyncIterator[bytes]:
    """`read(offset)`'s bytes from `start`, reading on from where a body broke off, as
    long as each try brings bytes (a refusal that brings none is the engine's to retry,
    with its backoff); after `retries` cuts the last one goes up."""
    position, cuts = start, 0
    while True:
        before = position
        try:
            async for chunk in read(position):
                position += len(chunk)
                yield chunk
            return
        except Transient as exc:
            cuts += 1
            if exc.restart or position == before or cuts >= retries:
                raise
            log.info("%s: %s; reading on from byte %d", what, exc, position)


# ---------------------------------------------------------------- redaction

# Query keys whose values are credentials at some vendor (AWS presigned URLs,
# Imou/Ezviz tokens, OAuth codes) or in our own callbacks.
_SECRET_KEYS = re.compile(
    r"(?i)^(access_?token|refresh_token|id_token|token|code|client_secret|secret|password|"
    r"pass|pwd|key|api_?key|app_?secret|sign|signature|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|sig|auth|authorization)$"
)
MASK = "***"


def redact_url(url: httpx.URL | str) -> str:
    """The URL with any password in it and the values of secret-looking query
    parameters masked."""
    parsed = httpx.URL(str(url))
    if parsed.password:
        parsed = parsed.copy_with(username=parsed.username, password=MASK)
    if not parsed.query:
        return str(parsed)
    params = [
        (key, MASK if _SECRET_KEYS.match(key) else value)
        for key, value in parsed.params.multi_items()
    ]
    return str(parsed.copy_with(params=params))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: credentials masked."""
    hidden = {"authorization", "cookie", "set-cookie", "proxy-authorization"}
    hidden.add("x-amz-security-token")
    return {k: (MASK if k.lower() in hidden else v) for k, v in headers.items()}


class _RedactUrls(logging.Filter):
    """Masks secret query values in the URLs httpx puts into its log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact_url(a) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


def install_log_redaction() -> None:
    """Idempotent: add the URL filter to httpx's logger."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())


install_log_redaction()
