"""The request's edge: bodies over the limit, and text no route can use, refused once for
every path, query and JSON body before any route sees them; and what no route foresaw
answered as a plain 500 with a request id, its traceback in the log under that id.

A NUL byte, a control character or a lone UTF-16 surrogate is never a folder, a name,
an email or a token a person meant; stored, it breaks the database (PostgreSQL takes no
NUL), the file system (`embedded null byte`) or every later answer that serializes it
(a lone surrogate cannot be written as UTF-8). Query strings must also decode as UTF-8.
The refusal is a 422 shaped as FastAPI's own validation errors, naming where the
character is, so the web UI shows it like any other invalid field.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Tab, line feed and carriage return stay: a certificate or a note may hold them.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def _describe(char: str) -> str:
    if char == "\x00":
        return "a NUL character"
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate (U+{ord(char):04X}), which is not text"
    return f"a control character (U+{ord(char):04X})"


Where = tuple[str | int, ...]  # a place in a request: ("body", "selections", 0)


def _strings(value: Any, where: Where) -> Iterator[tuple[Where, str]]:
    """Every string in a JSON document (keys too), with where it sits."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*where, key), key
            yield from _strings(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*where, index))


def _first_unsafe(found: Iterator[tuple[Where, str]]) -> dict[str, Any] | None:
    for where, text in found:
        bad = _UNSAFE.search(text)
        if bad:
            return {
                "type": "unsafe_text",
                "loc": list(where),
                # The key itself may be what is unsafe: say where, never echo it.
                "msg": f"holds {_describe(bad.group())}; remove it and try again",
            }
    return None


def _query_problem(query: bytes) -> dict[str, Any] | None:
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return {"type": "unsafe_text", "loc": ["query"], "msg": "is not valid UTF-8"}
    return _first_unsafe(
        item for key, value in pairs for item in ((("query", key), key), (("query", key), value))
    )


def _body_problem(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:
        return None  # not JSON: FastAPI's own validation says so
    return _first_unsafe(_strings(document, ("body",)))


class BodyLimit:
    """Refuse request bodies over the limit (413) before any route reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read it here, at most the limit, then replay.
        body, replay = await _buffered(receive, self.max_bytes)
        if body is None:
            await self._refuse(scope, receive, send)
            return
        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body too large (limit {self.max_bytes} bytes)"}, status_code=413
        )
        await response(scope, receive, send)


class InputGuard:
    """ASGI middleware refusing unsafe text in API requests before any route sees them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        problem = _first_unsafe(iter([(("path",), scope["path"])])) or _query_problem(
            scope.get("query_string", b"")
        )
        headers = dict(scope["headers"])
        if problem is None and b"json" in headers.get(b"content-type", b""):
            body, receive = await _buffered(receive)
            problem = None if body is None else _body_problem(body)
        if problem is not None:
            response = JSONResponse({"detail": [problem]}, status_code=422)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _buffered(receive: Receive, limit: int | None = None) -> tuple[bytes | None, Receive]:
    """The whole request body (None past `limit`), and a receive that hands it on as if
    unread."""
    chunks: list[bytes] = []
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            return None, receive
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


class Unforeseen:
    """Any error no handler knows becomes a 500 saying only a request id, so nothing of
    the code or the data leaks to the client; the log has the traceback under that id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            request_id = secrets.token_hex(6)
            log.exception("request %s (%s %s) failed", request_id, scope["method"], scope["path"])
            if started:
                raise  # part of an answer is out: only the server can end it
            detail = f"internal error; the server's log says more under request id {request_id}"
            response = JSONResponse(
                {"detail": detail, "request_id": request_id},
                status_code=500,
                headers={"X-Request-ID": request_id},
            )
            await response(scope, receive, send)
