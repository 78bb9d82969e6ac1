"""The shared HTTP layer against a real local server: retries, Retry-After, pacing, redaction.

A scripted ASGI server (run by uvicorn in a thread) answers each path from a queue of
replies: statuses with headers, bodies cut off mid-way (the connection then closes),
answers held back until a timeout fires. Tests count what the server received.

Waits the layer decides on (backoff, Retry-After, pacing) are recorded rather than
slept: the `clock` fixture swaps the module's `time.monotonic` for a frozen clock and
its `asyncio.sleep` for a recorder, so the exact waits can be asserted with no timing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.emulators.serving import BackgroundServer
from vpack import __version__
from vpack.providers.errors import (
    AuthExpired,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.providers.kit import http as http_module
from vpack.providers.kit.http import (
    DEFAULT_TIMEOUT,
    MASK,
    MAX_RETRY_AFTER,
    USER_AGENT,
    ApiClient,
    HttpPolicy,
    Pacer,
    _RedactUrls,
    install_log_redaction,
    new_client,
    ranged_read,
    redact_headers,
    redact_url,
    retry_after_seconds,
    stream_failure,
)
from vpack.providers.kit.oauth import OAuthSpec, TokenManager, TokenSet

SECRET = "hunter2-s3cr3t"

# ---------------------------------------------------------------- the scripted server


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    cut_after: int | None = None  # send this many body bytes, then drop the connection
    hold: bool = False  # answer only once the test is over (a stalled server)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Rule = Callable[[Seen], Reply]


class _Cut(Exception):
    """Raised mid-body: uvicorn closes the connection, as a network drop would."""


class ScriptedServer:
    """Answers each path from its queue of replies, then with its rule, else 200 JSON."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._queues: dict[str, list[Reply]] = {}
        self._rules: dict[str, Rule] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            await self._app(scope, receive, send)

        self._server = BackgroundServer(app, "http-layer-test-server")

    def __enter__(self) -> ScriptedServer:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.stop()

    def url(self, path: str) -> str:
        return f"{self._server.base_url}{path}"

    def queue(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._queues.setdefault(path, []).extend(replies)

    def rule(self, path: str, rule: Rule) -> None:
        self._rules[path] = rule

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def _reply(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            queued = self._queues.get(seen.path)
            if queued:
                return queued.pop(0)
        rule = self._rules.get(seen.path)
        return rule(seen) if rule is not None else Reply()

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen = Seen(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(scope["query_string"].decode("latin-1")),
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        reply = self._reply(seen)
        if reply.hold:
            deadline = time.monotonic() + 30
            while not self._released.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        headers = [(k.lower().encode(), v.encode()) for k, v in reply.headers.items()]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if reply.cut_after is not None:
            chunk = reply.body[: reply.cut_after]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            raise _Cut("connection dropped on purpose")
        await send({"type": "http.response.body", "body": reply.body})


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = new_client()
    try:
        yield client
    finally:
        await client.aclose()


# ---------------------------------------------------------------- a frozen clock


class FrozenClock:
    """`time.monotonic` and `asyncio.sleep` as the http module sees them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    # Only the http module's own names are replaced; httpx and the event loop keep real time.
    monkeypatch.setattr(http_module, "time", SimpleNamespace(monotonic=frozen.monotonic))
    monkeypatch.setattr(
        http_module, "asyncio", SimpleNamespace(sleep=frozen.sleep, Lock=asyncio.Lock)
    )
    return frozen


# ---------------------------------------------------------------- a vendor's error mapping


class Describer:
    """A provider's `describe_error`, remembering the bodies it was shown."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, response: httpx.Response) -> ProviderError:
        self.bodies.append(response.content)
        status = response.status_code
        text = f"vendor answered {status}: {response.text}"
        if status == 429:
            return RateLimited(text, retry_after=retry_after_seconds(response))
        if status == 401:
            return AuthExpired(text)
        if status == 404:
            return NotFound(text)
        if status == 409:
            return Transient(text, restart=True)
        if status == 403 and b"quota" in response.content:
            return Transient(text, retry_after=6 * 3600)  # like Drive's per-file quota
        if status >= 500:
            return Transient(text)
        return Permanent(text)


def api(
    http: httpx.AsyncClient, policy: HttpPolicy | None = None, **kwargs: Any
) -> tuple[ApiClient, Describer]:
    describer = Describer()
    return ApiClient(http, describer, policy=policy, **kwargs), describer


def http_date(seconds_from_now: float) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


def closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()  # nothing listens there any more: connecting is refused
    return port


# ---------------------------------------------------------------- new_client


async def test_new_client_sends_our_user_agent_and_extra_headers(server: ScriptedServer) -> None:
    async with new_client(headers={"X-Extra": "1"}) as client:
        assert client.timeout == DEFAULT_TIMEOUT
        response = await client.get(server.url("/ua"))
    assert response.status_code == 200
    (seen,) = server.hits("/ua")
    assert seen.headers["user-agent"] == USER_AGENT == f"vpack-sources/{__version__}"
    assert seen.headers["x-extra"] == "1"


async def test_new_client_kwargs_override_the_defaults(server: ScriptedServer) -> None:
    timeout = httpx.Timeout(3.0)
    async with new_client(
        base_url=server.url(""), timeout=timeout, headers={"User-Agent": "custom/1"}
    ) as client:
        assert client.timeout == timeout
        await client.get("/relative")
    (seen,) = server.hits("/relative")
    assert seen.headers["user-agent"] == "custom/1"


# ---------------------------------------------------------------- retry_after_seconds


def _with_retry_after(value: str | None) -> httpx.Response:
    headers = {} if value is None else {"Retry-After": value}
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 7 ", 7.0),
        ("-5", None),  # not delay-seconds: ignored, never a negative wait
        ("inf", None),  # float() would take these; RFC 9110 does not
        ("1e400", None),
        ("999999999999", MAX_RETRY_AFTER),  # a day at most: dates stay in range
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: go now
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),  # a naive date is read as UTC
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_forms(value: str | None, expected: float | None) -> None:
    assert retry_after_seconds(_with_retry_after(value)) == expected


def test_retry_after_http_date_in_the_future_is_the_seconds_until_then() -> None:
    seconds = retry_after_seconds(_with_retry_after(http_date(90)))
    assert seconds is not None
    assert 85 < seconds <= 90  # HTTP dates have whole seconds


# ---------------------------------------------------------------- HttpPolicy and Pacer


def test_backoff_doubles_from_the_base_up_to_the_cap_with_full_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bounds: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        bounds.append((low, high))
        return high

    monkeypatch.setattr(http_module, "random", SimpleNamespace(uniform=uniform))
    policy = HttpPolicy(backoff_base=0.5, backoff_cap=5.0)
    waits = [policy.backoff(attempt) for attempt in range(0, 8)]
    assert waits == [0.5, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert all(low == 0 for low, _ in bounds)  # full jitter: anywhere from zero


def test_backoff_is_random_within_its_ceiling() -> None:
    policy = HttpPolicy(backoff_base=1.0, backoff_cap=30.0)
    waits = {policy.backoff(3) for _ in range(50)}
    assert all(0 <= w <= 4.0 for w in waits)
    assert len(waits) > 1


async def test_pacer_spaces_request_starts(clock: FrozenClock) -> None:
    pacer = Pacer(min_interval=2.0)
    await asyncio.gather(pacer.wait(), pacer.wait(), pacer.wait())
    assert clock.sleeps == [2.0, 4.0]  # the first goes at once, the others in turn
    clock.now += 10  # long after: no wait
    clock.sleeps.clear()
    await pacer.wait()
    assert clock.sleeps == []


async def test_pacer_pause_holds_every_waiter_and_never_shortens(clock: FrozenClock) -> None:
    pacer = Pacer()
    assert pacer.paused_for == 0
    pacer.pause(5.0)
    pacer.pause(1.0)  # a shorter pause does not cut the longer one
    assert pacer.paused_for == 5.0
    await asyncio.gather(pacer.wait(), pacer.wait())
    assert clock.sleeps == [5.0, 5.0]
    clock.now += 6
    assert pacer.paused_for == 0
    clock.sleeps.clear()
    await pacer.wait()
    assert clock.sleeps == []


# ---------------------------------------------------------------- ApiClient: success and errors


async def test_a_success_is_returned_after_one_request(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    client, describer = api(http)
    response = await client.request("GET", server.url("/ok"), params={"q": "1"})
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert client.requests_sent == 1 and len(server.hits("/ok")) == 1
    assert server.hits("/ok")[0].query == {"q": ["1"]}
    assert describer.bodies == []


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, NotFound), (400, Permanent), (401, AuthExpired)],
)
async def test_errors_that_a_retry_cannot_fix_go_up_at_once(
    server: ScriptedServer, http: httpx.AsyncClient, status: int, error: type[ProviderError]
) -> None:
    server.queue("/x", Reply(status, b"nope"))
    client, describer = api(http)
    with pytest.raises(error, match=f"answered {status}: nope"):
        await client.request("GET", server.url("/x"))
    assert len(server.hits("/x")) == 1
    assert describer.bodies == [b"nope"]


async def test_transient_answers_are_retried_with_backoff(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/flaky", Reply(503, b"busy"), Reply(500, b"oops"))
    client, _ = api(http, HttpPolicy(attempts=4, backoff_base=1.0, backoff_cap=30.0))
    response = await client.request("GET", server.url("/flaky"))
    assert response.status_code == 200
    assert len(server.hits("/flaky")) == 3 and client.requests_sent == 3
    assert len(clock.sleeps) == 2
    assert 0 <= clock.sleeps[0] <= 1.0 and 0 <= clock.sleeps[1] <= 2.0


async def test_transient_answers_give_up_after_the_last_attempt(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.rule("/down", lambda seen: Reply(503, b"still down"))
    client, _ = api(http, HttpPolicy(attempts=3))
    with pytest.raises(Transient, match="503: still down") as raised:
        await client.request("GET", server.url("/down"))
    assert not raised.value.restart
    assert len(server.hits("/down")) == 3
    assert len(clock.sleeps) == 2  # between tries, none after the last


async def test_a_transient_that_needs_a_restart_is_not_retried_inline(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/changed", Reply(409, b"changed"))
    client, _ = api(http)
    with pytest.raises(Transient) as raised:
        await client.request("GET", server.url("/changed"))
    assert raised.value.restart
    assert len(server.hits("/changed")) == 1 and clock.sleeps == []


async def test_a_transient_that_names_its_wait_is_not_retried_inline(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/file", Reply(403, b"download quota exceeded"))
    client, _ = api(http)
    with pytest.raises(Transient) as raised:
        await client.request("GET", server.url("/file"))
    assert raised.value.retry_after == 6 * 3600
    assert len(server.hits("/file")) == 1 and clock.sleeps == []


async def test_a_real_retry_without_the_frozen_clock(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.queue("/real", Reply(503), Reply(502))
    client, _ = api(http, HttpPolicy(attempts=3, backoff_base=0.01, backoff_cap=0.02))
    response = await client.request("GET", server.url("/real"))
    assert response.status_code == 200 and len(server.hits("/real")) == 3


# ---------------------------------------------------------------- idempotency


async def test_a_non_idempotent_post_is_sent_once_on_a_transient_answer(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/create", Reply(503, b"busy"))
    client, _ = api(http)
    with pytest.raises(Transient):
        await client.request("POST", server.url("/create"), content=b"payload", idempotent=False)
    (seen,) = server.hits("/create")
    assert seen.method == "POST" and seen.body == b"payload"
    assert clock.sleeps == []


async def test_a_non_idempotent_post_is_sent_once_on_a_dropped_connection(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/create", Reply(200, b'{"id": 1}', cut_after=3))
    client, _ = api(http)
    with pytest.raises(Transient, match="RemoteProtocolError"):
        await client.request("POST", server.url("/create"), json={"a": 1}, idempotent=False)
    assert len(server.hits("/create")) == 1


async def test_a_non_idempotent_post_is_not_retried_after_a_rate_limit(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/create", Reply(429, b"slow", {"Retry-After": "3"}))
    client, _ = api(http)
    with pytest.raises(RateLimited) as raised:
        await client.request("POST", server.url("/create"), idempotent=False)
    assert raised.value.retry_after == 3.0
    assert len(server.hits("/create")) == 1
    assert client.pacer.paused_for == 3.0  # the account still slows down


async def test_idempotency_is_the_callers_word_not_the_method(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    # A search POST (Hikvision's) is safe to repeat: `idempotent` defaults to True.
    server.queue("/search", Reply(503))
    client, _ = api(http)
    response = await client.request("POST", server.url("/search"), content=b"<q/>")
    assert response.status_code == 200
    assert [s.body for s in server.hits("/search")] == [b"<q/>", b"<q/>"]


# ---------------------------------------------------------------- Retry-After and rate limits


async def test_a_retry_after_up_to_the_inline_cap_is_sat_out(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    policy = HttpPolicy()
    server.queue("/list", Reply(429, b"slow down", {"Retry-After": str(policy.max_inline_wait)}))
    client, _ = api(http, policy)
    response = await client.request("GET", server.url("/list"))
    assert response.status_code == 200
    assert len(server.hits("/list")) == 2
    assert clock.sleeps == [policy.max_inline_wait]  # exactly as long as told, once


async def test_a_retry_after_beyond_the_cap_goes_to_the_engine(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/list", Reply(429, b"slow down", {"Retry-After": "31"}))
    client, _ = api(http, HttpPolicy(max_inline_wait=30.0))
    with pytest.raises(RateLimited, match="429: slow down") as raised:
        await client.request("GET", server.url("/list"))
    assert raised.value.retry_after == 31.0
    assert len(server.hits("/list")) == 1 and clock.sleeps == []
    assert client.pacer.paused_for == 31.0


async def test_a_short_inline_cap_from_the_policy(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/list", Reply(429, b"", {"Retry-After": "1"}))
    client, _ = api(http, HttpPolicy(max_inline_wait=0.5))
    with pytest.raises(RateLimited):
        await client.request("GET", server.url("/list"))
    assert len(server.hits("/list")) == 1


async def test_a_retry_after_date_inside_the_cap_is_sat_out(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/list", Reply(429, b"", {"Retry-After": http_date(10)}))
    client, _ = api(http)
    response = await client.request("GET", server.url("/list"))
    assert response.status_code == 200 and len(server.hits("/list")) == 2
    (slept,) = clock.sleeps
    assert 5 < slept <= 10


async def test_a_retry_after_date_beyond_the_cap_goes_to_the_engine(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/list", Reply(429, b"", {"Retry-After": http_date(120)}))
    client, _ = api(http)
    with pytest.raises(RateLimited) as raised:
        await client.request("GET", server.url("/list"))
    assert raised.value.retry_after is not None and 110 < raised.value.retry_after <= 120
    assert len(server.hits("/list")) == 1


async def test_a_rate_limit_without_retry_after_waits_a_backoff(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/list", Reply(429, b"slow down"))
    client, _ = api(http, HttpPolicy(backoff_base=1.0, backoff_cap=30.0))
    response = await client.request("GET", server.url("/list"))
    assert response.status_code == 200 and len(server.hits("/list")) == 2
    (slept,) = clock.sleeps
    assert 1.0 <= slept <= 3.0  # the base, plus a backoff for the next attempt (<= 2)


async def test_rate_limits_on_every_attempt_end_as_rate_limited(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.rule("/list", lambda seen: Reply(429, b"", {"Retry-After": "2"}))
    client, _ = api(http, HttpPolicy(attempts=3))
    with pytest.raises(RateLimited) as raised:
        await client.request("GET", server.url("/list"))
    assert raised.value.retry_after == 2.0
    assert len(server.hits("/list")) == 3
    assert clock.sleeps == [2.0, 2.0]


async def test_a_long_rate_limit_pauses_the_whole_account_but_not_others(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/a", Reply(429, b"", {"Retry-After": "600"}))
    account_a, _ = api(http)
    account_b, _ = api(http)
    with pytest.raises(RateLimited):
        await account_a.request("GET", server.url("/a"))
    await account_b.request("GET", server.url("/b"))
    assert clock.sleeps == []  # another account goes on at once
    await account_a.request("GET", server.url("/a"))
    assert clock.sleeps == [600.0]  # this account's next request sat out the pause
    assert len(server.hits("/a")) == 2 and len(server.hits("/b")) == 1


async def test_requests_of_one_account_are_paced(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    policy = HttpPolicy(min_interval=0.5)
    one, _ = api(http, policy)
    await asyncio.gather(*(one.request("GET", server.url("/p")) for _ in range(3)))
    assert clock.sleeps == [0.5, 1.0]
    clock.sleeps.clear()
    other_a, _ = api(http, policy)
    other_b, _ = api(http, policy)
    await asyncio.gather(
        other_a.request("GET", server.url("/p")), other_b.request("GET", server.url("/p"))
    )
    assert clock.sleeps == []  # separate accounts keep separate paces
    assert len(server.hits("/p")) == 5


# ---------------------------------------------------------------- the network failing


async def test_a_dropped_connection_is_retried(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    body = b'{"whole": "body"}'
    server.queue("/cut", Reply(200, body, cut_after=5), Reply(200, body))
    client, _ = api(http)
    response = await client.json("GET", server.url("/cut"))
    assert response == {"whole": "body"}
    assert len(server.hits("/cut")) == 2 and len(clock.sleeps) == 1


async def test_network_failures_are_transient_with_the_url_redacted(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.rule("/cut", lambda seen: Reply(200, b"0123456789", cut_after=2))
    client, _ = api(http, HttpPolicy(attempts=2))
    with pytest.raises(Transient) as raised:
        await client.request("GET", server.url("/cut"), params={"key": SECRET, "alt": "media"})
    message = str(raised.value)
    assert SECRET not in message
    assert "/cut?" in message and "alt=media" in message and "RemoteProtocolError" in message
    assert isinstance(raised.value.__cause__, httpx.TransportError)
    assert len(server.hits("/cut")) == 2


async def test_a_refused_connection_is_transient_after_every_attempt(
    http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    client, _ = api(http, HttpPolicy(attempts=3))
    with pytest.raises(Transient, match="ConnectError") as raised:
        await client.request("GET", f"http://127.0.0.1:{closed_port()}/x")
    assert isinstance(raised.value.__cause__, httpx.ConnectError)
    assert client.requests_sent == 3 and len(clock.sleeps) == 2


async def test_a_stalled_server_times_out_and_is_retried(
    server: ScriptedServer, clock: FrozenClock
) -> None:
    server.queue("/slow", Reply(hold=True))
    async with new_client(timeout=httpx.Timeout(0.5)) as http:
        client, _ = api(http, HttpPolicy(attempts=2))
        response = await client.request("GET", server.url("/slow"))
    assert response.status_code == 200
    assert len(server.hits("/slow")) == 2


async def test_a_stalled_server_on_the_last_attempt_is_transient(
    server: ScriptedServer, clock: FrozenClock
) -> None:
    server.queue("/slow", Reply(hold=True))
    async with new_client(timeout=httpx.Timeout(0.3)) as http:
        client, _ = api(http, HttpPolicy(attempts=1))
        with pytest.raises(Transient, match="ReadTimeout") as raised:
            await client.request("GET", server.url("/slow"))
    assert isinstance(raised.value.__cause__, httpx.TimeoutException)
    assert len(server.hits("/slow")) == 1


# ---------------------------------------------------------------- streams and JSON


async def test_a_streamed_success_is_left_open_for_the_caller(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.queue("/video", Reply(200, b"v" * 10_000, {"content-type": "video/mp4"}))
    client, _ = api(http)
    response = await client.request("GET", server.url("/video"), stream=True)
    try:
        assert not response.is_closed
        data = b"".join([chunk async for chunk in response.aiter_bytes()])
    finally:
        await response.aclose()
    assert data == b"v" * 10_000


async def test_a_streamed_error_is_read_before_it_is_described(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.queue("/video", Reply(404, b'{"error": "gone"}'))
    client, describer = api(http)
    with pytest.raises(NotFound, match='"error": "gone"'):
        await client.request("GET", server.url("/video"), stream=True)
    assert describer.bodies == [b'{"error": "gone"}']


async def test_a_body_cut_mid_stream_becomes_a_resumable_transient(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.queue("/video", Reply(200, b"x" * 1000, {"content-type": "video/mp4"}, cut_after=100))
    client, _ = api(http)
    received = b""
    response = await client.request("GET", server.url("/video"), stream=True)
    try:
        with pytest.raises(httpx.HTTPError) as broke:
            async for chunk in response.aiter_bytes():
                received += chunk
    finally:
        await response.aclose()
    error = stream_failure(broke.value, "clip.mp4")
    assert isinstance(error, Transient) and not error.restart and error.retry_after is None
    assert str(error).startswith("clip.mp4: the connection broke off (RemoteProtocolError")
    assert received == b"x" * 100  # the bytes so far are good
    assert len(server.hits("/video")) == 1


def _ranged(seen: Seen) -> Reply:
    """A file server that honours `Range: bytes=N-` as RFC 9110 says."""
    clip = bytes(range(256)) * 40
    wanted = seen.headers.get("range", "")
    if not wanted:
        return Reply(200, clip, {"content-type": "video/mp4"})
    start = int(wanted.removeprefix("bytes=").rstrip("-"))
    headers = {"content-type": "video/mp4", "content-range": f"bytes {start}-{len(clip) - 1}/*"}
    return Reply(206, clip[start:], headers)


async def test_a_ranged_read_continues_where_the_copy_stopped(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.rule("/clip", _ranged)
    client, _ = api(http)
    whole = b"".join([c async for c in ranged_read(client, server.url("/clip"), 0, "clip.mp4")])
    rest = b"".join(
        [
            c
            async for c in ranged_read(
                client, server.url("/clip"), 1000, "clip.mp4", params={"a": "1"}
            )
        ]
    )
    assert len(whole) == 10_240 and rest == whole[1000:]
    first, second = server.hits("/clip")
    assert "range" not in first.headers
    assert second.headers["range"] == "bytes=1000-" and second.query == {"a": ["1"]}


async def test_a_server_that_ignores_the_range_restarts_the_copy(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.queue("/clip", Reply(200, b"whole file", {"content-type": "video/mp4"}))
    client, _ = api(http)
    received = b""
    with pytest.raises(Transient, match="ignored the range request") as refused:
        async for chunk in ranged_read(client, server.url("/clip"), 5, "clip.mp4"):
            received += chunk
    assert refused.value.restart and received == b""  # byte 0 never lands after byte 5


async def test_a_ranged_read_cut_mid_way_resumes_after_what_arrived(
    server: ScriptedServer, http: httpx.AsyncClient
) -> None:
    server.queue("/clip", Reply(200, b"y" * 1000, {"content-type": "video/mp4"}, cut_after=300))
    client, _ = api(http)
    received = b""
    with pytest.raises(Transient, match="broke off") as broke:
        async for chunk in ranged_read(client, server.url("/clip"), 0, "clip.mp4"):
            received += chunk
    assert not broke.value.restart and received == b"y" * 300


async def test_json_answers_are_decoded(server: ScriptedServer, http: httpx.AsyncClient) -> None:
    server.queue("/j", Reply(200, json.dumps({"files": [1, 2]}).encode()))
    client, _ = api(http)
    assert await client.json("GET", server.url("/j")) == {"files": [1, 2]}


async def test_a_body_that_is_not_json_is_a_transient_fault_with_no_secret(
    server: ScriptedServer, http: httpx.AsyncClient, clock: FrozenClock
) -> None:
    server.queue("/j", Reply(200, b"<html>proxy login</html>", {"content-type": "text/html"}))
    client, _ = api(http)
    with pytest.raises(Transient, match="answered 200 with a body that is not JSON") as raised:
        await client.json("GET", server.url("/j"), params={"access_token": SECRET})
    assert SECRET not in str(raised.value)
    assert len(server.hits("/j")) == 1  # a success is not repeated


async def test_aclose_closes_the_http_client(http: httpx.AsyncClient) -> None:
    client, _ = api(http)
    await client.aclose()
    assert http.is_closed


# ---------------------------------------------------------------- OAuth tokens


@pytest.fixture
def saved() -> list[TokenSet]:
    return []


@pytest.fixture
def tokens(server: ScriptedServer, http: httpx.AsyncClient, saved: list[TokenSet]) -> TokenManager:
    spec = OAuthSpec(
        provider="test_cloud",
        authorize_url=server.url("/authorize"),
        token_url=server.url("/token"),
        client_id="vpack-test",
        redirect_uri="http://127.0.0.1:8000/callback",
        client_secret="client-s3cret",
    )

    async def save(new: TokenSet) -> None:
        saved.append(new)

    server.rule(
        "/token",
        lambda seen: Reply(
            200, json.dumps({"access_token": "new-token", "expires_in": 3600}).encode()
        ),
    )
    return TokenManager(spec, TokenSet("old-token", refresh_token="refresh-1"), http, save)


def _bearers(server: ScriptedServer, path: str) -> list[str]:
    return [s.headers.get("authorization", "") for s in server.hits(path)]


async def test_a_401_refreshes_the_token_once_and_retries(
    server: ScriptedServer,
    http: httpx.AsyncClient,
    tokens: TokenManager,
    saved: list[TokenSet],
) -> None:
    server.rule(
        "/api",
        lambda seen: (
            Reply(200)
            if seen.headers.get("authorization") == "Bearer new-token"
            else Reply(401, b"expired")
        ),
    )
    client, _ = api(http, tokens=tokens)
    assert await client.json("GET", server.url("/api")) == {"ok": True}
    assert _bearers(server, "/api") == ["Bearer old-token", "Bearer new-token"]
    (refresh,) = server.hits("/token")
    form = parse_qs(refresh.body.decode())
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["refresh-1"]
    assert [t.access_token for t in saved] == ["new-token"]
    assert client.requests_sent == 1  # the refresh and resend happen inside one send


async def test_a_401_after_the_refresh_is_auth_expired_and_not_retried(
    server: ScriptedServer, http: httpx.AsyncClient, tokens: TokenManager, clock: FrozenClock
) -> None:
    server.rule("/api", lambda seen: Reply(401, b"revoked"))
    client, _ = api(http, tokens=tokens)
    with pytest.raises(AuthExpired, match="still refuses the access token"):
        await client.request("GET", server.url("/api"))
    assert _bearers(server, "/api") == ["Bearer old-token", "Bearer new-token"]
    assert len(server.hits("/token")) == 1
    assert client.requests_sent == 1 and clock.sleeps == []


async def test_transient_answers_through_the_token_path_are_retried_without_a_refresh(
    server: ScriptedServer, http: httpx.AsyncClient, tokens: TokenManager, clock: FrozenClock
) -> None:
    server.queue("/api", Reply(503, b"busy"))
    client, _ = api(http, tokens=tokens)
    response = await client.request("GET", server.url("/api"), headers={"X-Trace": "t"})
    assert response.status_code == 200
    assert _bearers(server, "/api") == ["Bearer old-token", "Bearer old-token"]
    assert all(s.headers["x-trace"] == "t" for s in server.hits("/api"))
    assert server.hits("/token") == []


# ---------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    "key",
    [
        "access_token",
        "accessToken",
        "refresh_token",
        "id_token",
        "token",
        "code",
        "client_secret",
        "password",
        "pwd",
        "key",
        "api_key",
        "apiKey",
        "appSecret",
        "sign",
        "signature",
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "sig",
        "Authorization",
    ],
)
def test_redact_url_masks_secret_query_values(key: str) -> None:
    url = f"https://vendor.example/v1/files?{key}={SECRET}&alt=media"
    redacted = redact_url(url)
    assert SECRET not in redacted
    parsed = httpx.URL(redacted)
    assert parsed.params[key] == MASK
    assert parsed.params["alt"] == "media"
    assert parsed.path == "/v1/files" and parsed.host == "vendor.example"


def test_redact_url_masks_every_repeat_and_keeps_plain_keys() -> None:
    url = httpx.URL(
        "https://s3.example/b/k",
        params=[("token", "a1"), ("token", "a2"), ("pageToken", "p"), ("tokens", "t")],
    )
    parsed = httpx.URL(redact_url(url))
    assert parsed.params.get_list("token") == [MASK, MASK]
    assert parsed.params["pageToken"] == "p" and parsed.params["tokens"] == "t"


@pytest.mark.parametrize("url", ["https://vendor.example/v1/files", "http://127.0.0.1:8080/"])
def test_redact_url_leaves_urls_without_a_query_alone(url: str) -> None:
    assert redact_url(url) == url
    assert redact_url(httpx.URL(url)) == url


def test_redact_url_masks_a_password_in_the_url() -> None:
    shown = redact_url("http://admin:Hik12345@192.168.1.64/ISAPI/System/deviceInfo?sig=abc")
    assert "Hik12345" not in shown and "abc" not in shown
    assert httpx.URL(shown).username == "admin" and httpx.URL(shown).host == "192.168.1.64"


def test_redact_headers_masks_credentials_whatever_their_case() -> None:
    original = {
        "Authorization": f"Bearer {SECRET}",
        "cookie": f"sid={SECRET}",
        "Set-Cookie": f"sid={SECRET}",
        "Proxy-Authorization": f"Basic {SECRET}",
        "X-Amz-Security-Token": SECRET,
        "Content-Type": "application/json",
        "Range": "bytes=0-",
    }
    shown = redact_headers(original)
    assert SECRET not in repr(shown)
    assert shown["Authorization"] == shown["cookie"] == shown["X-Amz-Security-Token"] == MASK
    assert shown["Content-Type"] == "application/json" and shown["Range"] == "bytes=0-"
    assert original["Authorization"] == f"Bearer {SECRET}"  # the input is left as it was


def test_redact_headers_takes_httpx_headers() -> None:
    shown = redact_headers(httpx.Headers({"authorization": SECRET, "accept": "*/*"}))
    assert shown == {"authorization": MASK, "accept": "*/*"}


# ---------------------------------------------------------------- httpx's log records


async def test_httpx_request_logs_hide_secret_query_values(
    server: ScriptedServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    await http.get(server.url("/files"), params={"access_token": SECRET, "alt": "media"})
    (record,) = [r for r in caplog.records if r.name == "httpx"]
    message = record.getMessage()
    assert SECRET not in message and SECRET not in caplog.text
    assert message.startswith("HTTP Request: GET ")
    assert "/files?" in message and "alt=media" in message and "200 OK" in message


def test_the_log_filter_rewrites_only_url_arguments() -> None:
    log_filter = _RedactUrls()
    url = httpx.URL(f"https://vendor.example/x?sig={SECRET}")
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%s %s %d", (url, "k", 3), None)
    assert log_filter.filter(record)
    assert record.args == (redact_url(url), "k", 3)
    plain = logging.LogRecord("httpx", logging.INFO, __file__, 1, "%s", (f"sig={SECRET}",), None)
    assert log_filter.filter(plain) and plain.args == (f"sig={SECRET}",)  # strings untouched
    bare = logging.LogRecord("httpx", logging.INFO, __file__, 1, "no args", None, None)
    assert log_filter.filter(bare) and bare.args is None


def test_log_redaction_is_installed_once() -> None:
    install_log_redaction()
    install_log_redaction()
    filters = logging.getLogger("httpx").filters
    assert sum(isinstance(f, _RedactUrls) for f in filters) == 1
