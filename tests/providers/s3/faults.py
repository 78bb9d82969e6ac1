"""A fault-injecting proxy in front of an S3 server (moto's), answering as Amazon S3 does.

moto serves S3 faithfully but cannot misbehave on cue. This proxy forwards every
request unchanged (the SigV4 signature covers the Host header, so it is kept) and,
when told to, answers or mangles the next ones the way Amazon S3 documents:

- Amazon S3 API Reference, "Error responses" (REST error responses): an XML body
  `<Error><Code/><Message/><Resource/><RequestId/></Error>`, `Content-Type:
  application/xml`, the request id also in `x-amz-request-id`.
- Same page, "List of error codes": `SlowDown` 503 "Please reduce your request
  rate."; `InternalError` 500 "We encountered an internal error. Please try
  again."; `AuthorizationHeaderMalformed` 400, which for a signature made for
  another region carries `<Region>` (the bucket's) and the message "the region
  'X' is wrong; expecting 'Y'", with `x-amz-bucket-region` (the shape the AWS
  SDKs follow to find a bucket's region).
- Amazon S3 User Guide, "Error best practices": SlowDown comes in bursts and no
  Retry-After is sent; clients back off exponentially.
- AWS Signature Version 4, "Authorization header": `Credential=<key id>/<date>/
  <region>/s3/aws4_request` names the region a request was signed for.
- Amazon S3 API Reference, "Object" data type, ETag: objects encrypted with
  SSE-C or SSE-KMS have ETags that are not an MD5 digest of their data, even
  when uploaded in one part (the proxy can present an object that way).
- RFC 9110 §8.6 / §14: a response shorter than its Content-Length, its
  connection then closed, is how a dropped download looks to a client.

Only path-style addressing (`/bucket/key`) is understood, which is how tests and
benchmarks reach a local server. Knobs: fail the next N requests with an S3 error,
cut the next GetObject body after N bytes, flip a byte of the next GetObject body,
place a bucket in a region, give an object an SSE-KMS-style ETag. Requests are
counted by operation for benchmarks.
"""

from __future__ import annotations

import hashlib
import html
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx

from tests.emulators.serving import BackgroundServer

# Errors a test may ask for: code -> (HTTP status, documented message).
ERRORS = {
    "SlowDown": (503, "Please reduce your request rate."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    # The proxy's own server writes these.
    "date",
    "server",
}
_SIGNED_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/s3/aws4_request")
_CHUNK = 256 * 1024
_CONTENTS = re.compile(r"<Contents>.*?</Contents>", re.DOTALL)
_KEY = re.compile(r"<Key>(.*?)</Key>", re.DOTALL)
_ETAG = re.compile(r"<ETag>(.*?)</ETag>", re.DOTALL)
_DOT_SEGMENT = re.compile(r"(?<=/)\.{1,2}(?=/|$)")


@dataclass
class _Request:
    method: str
    raw_path: bytes
    query_string: bytes
    headers: list[tuple[str, str]]
    body: bytes
    operation: str
    path: str  # decoded: "/bucket/key"


class _CutStream(Exception):
    """Raised mid-body: uvicorn then closes the connection, as a network drop would."""


@dataclass
class _Faults:
    fail_code: str = ""
    fail_left: int = 0
    cut_after: int | None = None
    corrupt: bool = False


def operation_of(method: str, path: str, query: dict[str, list[str]]) -> str:
    """The S3 operation a path-style request asks for, by the names in the API Reference."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets"
    if not key:
        if method == "GET" and query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        return {"GET": "ListObjects", "HEAD": "HeadBucket", "PUT": "CreateBucket"}.get(
            method, f"{method} bucket"
        )
    if "uploadId" in query or "uploads" in query:
        return "MultipartUpload"
    return {
        "GET": "GetObject",
        "HEAD": "HeadObject",
        "PUT": "PutObject",
        "DELETE": "DeleteObject",
    }.get(method, f"{method} object")


class S3FaultProxy:
    """Forwards to `upstream`; `url` is what clients under test are given."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self.clients: set[tuple[str, int]] = set()  # (host, port): one per client connection
        self.ranges: list[str | None] = []  # the Range header of each GetObject, in order
        self.regions: dict[str, str] = {}
        self.kms_keys: set[str] = set()  # "/bucket/key" of objects whose ETag is no MD5
        self._real_etags: dict[str, str] = {}
        self._faults = _Faults()
        self._lock = threading.Lock()

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            # A plain function: uvicorn takes a bound method for an ASGI2 app.
            await self._app(scope, receive, send)

        self._server = BackgroundServer(app, "s3-fault-proxy")
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return self._server.base_url

    def start(self, *, certfile: Path | None = None, keyfile: Path | None = None) -> S3FaultProxy:
        """Serve plain HTTP, or HTTPS with this certificate (an S3-compatible store's own CA)."""
        self._server.start(certfile=certfile, keyfile=keyfile)
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> S3FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ knobs
    def fail_next(self, requests: int, code: str = "SlowDown") -> None:
        """Answer the next `requests` requests with the S3 error `code` (see ERRORS)."""
        if code not in ERRORS:
            raise ValueError(f"unknown error code {code}")
        with self._lock:
            self._faults.fail_code, self._faults.fail_left = code, requests

    def cut_next_download(self, after_bytes: int) -> None:
        with self._lock:
            self._faults.cut_after = after_bytes

    def corrupt_next_download(self) -> None:
        with self._lock:
            self._faults.corrupt = True

    def place_bucket(self, bucket: str, region: str) -> None:
        """Requests for `bucket` signed for any other region are refused, as S3 does."""
        self.regions[bucket] = region

    def etag_is_not_md5(self, bucket: str, key: str) -> None:
        """Serve this object as S3 serves SSE-KMS/SSE-C objects: an ETag that is not
        the MD5 of the content (in listings and GETs alike; If-Match still works)."""
        self.kms_keys.add(f"/{bucket}/{key}")

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.ranges.clear()
            self.clients.clear()

    # ------------------------------------------------------------ serving
    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        query_string: bytes = scope["query_string"]
        path = unquote(raw_path.decode("latin-1"))
        query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        body = await _read_body(receive)
        operation = operation_of(method, path, query)
        header = {k.lower(): v for k, v in headers}
        with self._lock:
            self.counts[operation] += 1
            if scope.get("client"):
                self.clients.add(tuple(scope["client"]))
            if operation == "GetObject":
                self.ranges.append(header.get("range"))
            failing = self._faults.fail_left > 0
            if failing:
                self._faults.fail_left -= 1
            code = self._faults.fail_code
            cut = corrupt = None
            if operation == "GetObject" and not failing:
                cut, self._faults.cut_after = self._faults.cut_after, None
                corrupt, self._faults.corrupt = self._faults.corrupt, False
        if failing:
            status, message = ERRORS[code]
            await _send_error(send, status, code, message, path)
            return
        wrong_region = self._wrong_region(path, header.get("authorization", ""))
        if wrong_region is not None:
            await _send_error(send, 400, "AuthorizationHeaderMalformed", *wrong_region)
            return
        request = _Request(method, raw_path, query_string, headers, body, operation, path)
        await self._forward(request, send, cut, corrupt)

    def _wrong_region(
        self, path: str, authorization: str
    ) -> tuple[str, str, dict[str, str]] | None:
        bucket = path.lstrip("/").partition("/")[0]
        expected = self.regions.get(bucket)
        signed = _SIGNED_REGION.search(authorization)
        if expected is None or signed is None or signed.group(1) == expected:
            return None
        message = (
            f"The authorization header is malformed; the region '{signed.group(1)}' is wrong; "
            f"expecting '{expected}'"
        )
        return message, path, {"Region": expected, "x-amz-bucket-region": expected}

    async def _forward(
        self, request: _Request, send: Any, cut: int | None, corrupt: bool | None
    ) -> None:
        if self._client is None:
            # Made on the server's own loop, on first use.
            self._client = httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=64))
            self._client.headers.clear()  # add nothing to what the client under test sent
        # httpx removes "." and ".." segments (RFC 3986 §5.2.4), but in S3 they are
        # part of a key: escaped, they reach the server as sent.
        url = self.upstream + _DOT_SEGMENT.sub(_escape_dots, request.raw_path.decode("latin-1"))
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        kms = request.path in self.kms_keys
        forwarded = [
            (k, self._real_etag(v) if kms and k.lower() == "if-match" else v)
            for k, v in request.headers
            if k.lower() not in _HOP_BY_HOP
        ]
        upstream = self._client.build_request(
            request.method, httpx.URL(url), headers=forwarded, content=request.body
        )
        response = await self._client.send(upstream, stream=True)
        try:
            out = [
                (k, self._kms_etag(v) if kms and k.lower() == "etag" else v)
                for k, v in response.headers.multi_items()
                if k.lower() not in _HOP_BY_HOP
            ]
            if request.operation == "ListObjectsV2" and self.kms_keys:
                listing = self._kms_listing(await response.aread(), request)
                await _send_whole(send, response.status_code, out, listing)
                return
            length = response.headers.get("content-length")
            if length is not None:
                out.append(("content-length", length))
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out],
                }
            )
            sent = 0
            async for chunk in response.aiter_raw(_CHUNK):
                if corrupt and chunk:
                    chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    corrupt = False
                if cut is not None and sent + len(chunk) >= cut:
                    await send(
                        {
                            "type": "http.response.body",
                            "body": chunk[: cut - sent],
                            "more_body": True,
                        }
                    )
                    raise _CutStream(f"cut after {cut} bytes")
                sent += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    def _kms_etag(self, etag: str) -> str:
        """A stable ETag that is not the content's MD5, quoted as S3 quotes ETags;
        remembered so an If-Match carrying it can be mapped back for moto."""
        real = etag.strip('"')
        fake = hashlib.md5(f"sse-kms:{real}".encode(), usedforsecurity=False).hexdigest()
        self._real_etags[fake] = real
        return f'"{fake}"'

    def _real_etag(self, if_match: str) -> str:
        real = self._real_etags.get(if_match.strip('"'))
        return f'"{real}"' if real else if_match

    def _kms_listing(self, body: bytes, request: _Request) -> bytes:
        """A ListObjectsV2 body with the ETags of SSE-KMS objects replaced."""
        bucket = request.path.strip("/").partition("/")[0]
        url_encoded = b"encoding-type=url" in request.query_string

        def entry(match: re.Match[str]) -> str:
            block = match.group(0)
            key = _KEY.search(block)
            name = key.group(1) if key else ""
            name = unquote(name) if url_encoded else html.unescape(name)
            if f"/{bucket}/{name}" not in self.kms_keys:
                return block
            return _ETAG.sub(
                lambda e: f"<ETag>{html.escape(self._kms_etag(html.unescape(e.group(1))))}</ETag>",
                block,
            )

        return _CONTENTS.sub(entry, body.decode()).encode()


async def _send_whole(send: Any, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _escape_dots(match: re.Match[str]) -> str:
    return "%2E" * len(match.group(0))


async def _read_body(receive: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _send_error(
    send: Any,
    status: int,
    code: str,
    message: str,
    resource: str,
    extra: dict[str, str] | None = None,
) -> None:
    """An S3 REST error response; `extra` items whose name starts with x- are headers,
    the others further elements of the XML body."""
    extra = extra or {}
    request_id = uuid.uuid4().hex[:16].upper()
    elements = "".join(
        f"<{name}>{_xml(value)}</{name}>"
        for name, value in extra.items()
        if not name.startswith("x-")
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message>{elements}"
        f"<Resource>{_xml(resource)}</Resource><RequestId>{request_id}</RequestId></Error>"
    ).encode()
    headers = [
        (b"content-type", b"application/xml"),
        (b"content-length", str(len(body)).encode()),
        (b"x-amz-request-id", request_id.encode()),
        *((k.encode(), v.encode()) for k, v in extra.items() if k.startswith("x-")),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
