"""GetObject without boto3's per-call machinery, for the common case: a plain read succeeds.

A boto3 `get_object` costs about 1 ms of CPU before a byte moves (endpoint rules,
event hooks, parameter checks, response parsing): for a 64 KiB video that is most
of the client's work. Here the same request is signed with SigV4 (`sigv4.py`) and
sent through the boto3 client's own HTTP session (same TLS checks, proxies,
timeouts and connection pool), so only the request line and its signature are ours.
The URL and the signing region are the ones a scan's listing through `listing.py`
proved (the bucket URL its settings give), or else the ones botocore used for a
first read through boto3: endpoint rules are not derived again. After a listing,
bounded reads need no boto3 at all, and a sync of small videos never loads it.

Reads of a known, bounded length (small objects, the ranges of large ones) go
through libcurl (`fetch`), the rest stream through botocore's session (`get`).
For a 64 KiB object urllib3 and http.client cost about 0.5 ms of CPU per request,
most of it Python parsing the response headers; libcurl does that in C, 0.23 ms
(bench/s3, 4 threads x 2,000 GETs against moto). Streams keep urllib3, whose
body reads as it arrives; libcurl would hand it over only when complete.

A batch of small objects read one after another in one thread sends each GET
ahead of its turn (`start`), through a libcurl multi handle of that thread: the
server works on the next object while the thread writes, hashes and probes the
last one, with no second thread and no hand-off. Against moto behind 10 ms of
delay each way, 1,000 x 64 KiB: 7.09 -> 4.38 s with one GET sent ahead
(bench/s3/ab.py; rclone 6.37 s), 4.50 -> 3.82 s with two rather than one.

Only successes are taken from this path. Any other answer (an error, a redirect)
returns None and the caller asks boto3, which parses the error and retries as it
always does: one request more on a path that is failing anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import pycurl

from vpack.providers.s3.curl import UNREACHED, CurlPool, FetchFailed, Transport, header_fields
from vpack.providers.s3.sigv4 import ALGORITHM, GetSigner, Keys, host_header

if TYPE_CHECKING:
    from botocore.response import StreamingBody

# GETs a thread may have sent ahead of their turn: the video it reads next and the
# two after it (the batch hints two ahead of each read).
_AHEAD = 3
# How long `start` waits, at most, for a new connection to be made so the request
# leaves at once (a loopback or LAN connect takes microseconds; a far one is left to
# finish when the thread comes back for the answer).
_SEND_TRIES, _SEND_WAIT = 3, 0.001


@dataclass
class _Started:
    """A GET sent ahead of its turn, its answer arriving into `body` and `lines`."""

    headers: dict[str, str]
    curl: pycurl.Curl
    body: list[bytes]
    lines: list[bytes]


class _Ahead(threading.local):
    """One thread's GETs sent ahead, on a libcurl multi handle of its own."""

    def __init__(self) -> None:
        self.multi: pycurl.CurlMulti | None = None
        self.started: dict[str, _Started] = {}  # by key, oldest first
        # Transfers the multi handle reported done: None for success, else (code, message)
        self.ended: dict[pycurl.Curl, tuple[int, str] | None] = {}


class DirectGet:
    """Signed GETs of one bucket's objects, at the URL boto3 uses.

    The route (object URL, signing region, how libcurl reaches the store) comes
    from one of two places: a scan's listing through `listing.py`, which proved the URL
    its settings give (`take_route`), or else the first read through boto3
    (`attach`, then `learn`)."""

    def __init__(self, keys: Keys) -> None:
        self._keys = keys
        self._http: Any = None  # botocore's HTTP session, once a client is attached
        self._timeouts: tuple[float, float] = (60, 60)  # the attached client's
        self._base: str | None = None  # the object URL without the key
        self._base_path = ""  # its path, which the signature covers
        self._signer: GetSigner | None = None
        self._sent = threading.local()  # this thread's last boto3 GetObject request
        self._pool: CurlPool | None = None  # libcurl's handles, once the route is known
        self._ahead = _Ahead()
        self._multis: list[pycurl.CurlMulti] = []  # every thread's, closed with the provider
        self._multis_lock = threading.Lock()

    def attach(self, client: Any) -> None:
        """Stream through `client`'s HTTP session from now on, and learn the route
        from its first read if no listing has shown it."""
        # botocore's HTTP session is not public API; without it reads of unbounded
        # length go through boto3, and so does every read until a listing shows the route.
        self._http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        self._timeouts = (client.meta.config.connect_timeout, client.meta.config.read_timeout)
        client.meta.events.register("before-send.s3.GetObject", self._note_request)

    def _note_request(self, request: Any, **_: Any) -> None:
        self._sent.request = request  # returns None: botocore then sends it as usual

    def learn(self, key: str) -> None:
        """After boto3 has read `key` in this thread: take the object URL it used
        (virtual-host or path style, custom endpoint) and the region it signed for
        (which a redirect may have changed) as the pattern for the next reads.
        A request not signed with SigV4 teaches nothing: reads stay with boto3."""
        from botocore.httpsession import get_cert_path  # loaded by the attached client

        request = getattr(self._sent, "request", None)
        if self._base is not None or request is None or self._http is None:
            return
        tail = quote(key, safe="/~")
        url = request.url.split("?", 1)[0]
        region = _signed_region(request.headers.get("Authorization"))
        if region is None or not url.endswith(tail):
            return
        base = url[: -len(tail)]
        # The proxy botocore chose for this endpoint (HTTP(S)_PROXY less NO_PROXY, read
        # as urllib reads them): libcurl's own reading of the environment differs
        # (it ignores an upper-case HTTP_PROXY), and both stacks must take one route.
        proxy_config = getattr(self._http, "_proxy_config", None)
        proxy = proxy_config.proxy_url_for(base) if proxy_config is not None else None
        # The TLS settings of the client (AWS_CA_BUNDLE, verify=False) hold for libcurl
        # too: the CA bundle botocore would use, or no check where it makes none.
        verify = getattr(self._http, "_verify", True)
        ca_bundle = get_cert_path(verify) if verify is not False else None
        self.take_route(base, region, Transport(*self._timeouts, proxy, ca_bundle))

    def take_route(self, base: str, region: str, transport: Transport) -> None:
        """Read objects at `base` + key, signed for `region`, over `transport`; a
        route already taken stays."""
        if self._base is not None:
            return
        parts = urlsplit(base)
        self._signer = GetSigner(host_header(parts.scheme, parts.hostname, parts.port), region)
        self._base_path = parts.path
        self._pool = CurlPool(transport)
        self._base = base

    @property
    def ready(self) -> bool:
        """Can bounded reads go this way (`fetch`, `start`)?"""
        return self._base is not None

    @property
    def streams(self) -> bool:
        """Can reads of any length go this way too (`get`)?"""
        return self._base is not None and self._http is not None

    def _signed(self, key: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The URL of `key` and the headers that sign a GET of it."""
        assert self._base is not None and self._signer is not None
        # botocore quotes a key the same way: '/' stays, so does '~'; '..' and '//' are
        # sent as they are (S3 keys are not paths), and S3's signature does not
        # normalise them either.
        quoted = quote(key, safe="/~")
        return self._base + quoted, self._signer.headers(
            self._base_path + quoted, self._keys, headers
        )

    def fetch(self, key: str, headers: dict[str, str]) -> tuple[bytes, Mapping[str, str]] | None:
        """The whole answer in memory, through libcurl: for reads of a bounded length.
        The body and response headers (names in lower case) on a 200 or 206; None
        otherwise. Raises FetchFailed when the connection fails or breaks off."""
        started = self._ahead.started.pop(key, None)
        if started is not None and started.headers != headers:  # now resumed, say
            self._drop(started)
            started = None
        if started is None:
            curl, body, lines = self._prepared(key, headers)
        else:
            curl, body, lines = started.curl, started.body, started.lines
        try:
            if started is None:
                curl.perform()
            else:
                self._finish(curl)
        except pycurl.error as exc:
            code, message = exc.args[0], str(exc.args[-1])
            cut = curl.getinfo(pycurl.RESPONSE_CODE) in (200, 206)
            received = b"".join(body) if cut else b""
            reached = code not in UNREACHED
            raise FetchFailed(message, received, reached=reached, cut=cut) from None
        else:
            status = curl.getinfo(pycurl.RESPONSE_CODE)
            data = b"".join(body) if status in (200, 206) else None
        finally:
            body.clear()  # the idle handle still holds this list: no bytes left in it
            assert self._pool is not None
            self._pool.give(curl)
        return None if data is None else (data, header_fields(lines))

    def start(self, key: str, headers: dict[str, str]) -> None:
        """Send the GET of `key` now; the next `fetch` of it with the same headers in
        this thread takes its answer. Beyond `_AHEAD` waiting, the oldest is dropped."""
        ahead = self._ahead
        if key in ahead.started:
            return
        while len(ahead.started) >= _AHEAD:
            self._drop(ahead.started.pop(next(iter(ahead.started))))
        curl, body, lines = self._prepared(key, headers)
        multi = self._multi()
        multi.add_handle(curl)
        ahead.started[key] = _Started(dict(headers), curl, body, lines)
        for _ in range(_SEND_TRIES):
            self._pump(multi)
            if curl.getinfo(pycurl.REQUEST_SIZE):  # the request has left
                return
            multi.select(_SEND_WAIT)

    def forget(self) -> None:
        """Drop what this thread sent ahead and will not read."""
        started = self._ahead.started
        while started:
            self._drop(started.pop(next(iter(started))))

    def close(self) -> None:
        """Close every libcurl handle and each thread's multi handle."""
        if self._pool is not None:
            self._pool.close()
        with self._multis_lock:
            multis, self._multis = self._multis, []
        for multi in multis:
            multi.close()

    def _prepared(
        self, key: str, headers: dict[str, str]
    ) -> tuple[pycurl.Curl, list[bytes], list[bytes]]:
        """A handle set up to GET `key`, and the lists its body and header lines go to."""
        url, signed = self._signed(key, headers)
        assert self._pool is not None  # made with the route, as the signer is
        return self._pool.get(url, signed)

    def _multi(self) -> pycurl.CurlMulti:
        ahead = self._ahead
        if ahead.multi is None:
            ahead.multi = pycurl.CurlMulti()
            with self._multis_lock:
                self._multis.append(ahead.multi)
        return ahead.multi

    def _pump(self, multi: pycurl.CurlMulti) -> None:
        """Let libcurl move every transfer of this thread as far as it can without
        waiting, and note the ones that ended."""
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        ended = self._ahead.ended
        while True:
            queued, succeeded, failed = multi.info_read()
            for curl in succeeded:
                ended[curl] = None
            for curl, code, message in failed:
                ended[curl] = (code, message)
            if not queued:
                return

    def _finish(self, curl: pycurl.Curl) -> None:
        """Wait for a started transfer to end; raise pycurl.error as `perform` would."""
        multi = self._multi()
        ended = self._ahead.ended
        try:
            while curl not in ended:
                self._pump(multi)
                if curl not in ended:
                    multi.select(1.0)  # libcurl's own timeouts end a stalled transfer
            failure = ended.pop(curl)
        finally:
            multi.remove_handle(curl)
        if failure is not None:
            raise pycurl.error(*failure)

    def _drop(self, started: _Started) -> None:
        self._ahead.ended.pop(started.curl, None)
        self._multi().remove_handle(started.curl)
        started.curl.close()

    def get(
        self, key: str, headers: dict[str, str]
    ) -> tuple[StreamingBody, Mapping[str, str]] | None:
        """The object's body and response headers on a 200 or 206; None otherwise.

        Raises botocore's connection errors (EndpointConnectionError, timeouts) as
        boto3 would."""
        from botocore.awsrequest import AWSPreparedRequest  # loaded by the attached client
        from botocore.response import StreamingBody

        assert self._http is not None
        url, signed = self._signed(key, headers)
        request = AWSPreparedRequest("GET", url, signed, None, True)
        response = self._http.send(request)
        if response.status_code not in (200, 206):
            response.raw.drain_conn()
            response.raw.release_conn()
            return None
        length = response.headers.get("content-length")
        body = StreamingBody(response.raw, int(length) if length else None)
        return body, response.headers  # botocore's, whose look-ups ignore case


def _signed_region(authorization: str | bytes | None) -> str | None:
    """The region of a SigV4 Authorization header's credential scope
    (`Credential=KEY/day/region/s3/aws4_request`), or None for anything else."""
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    if not authorization or not authorization.startswith(ALGORITHM + " "):
        return None
    credential = authorization.split("Credential=", 1)[-1].split(",", 1)[0]
    scope = credential.split("/")
    return scope[-3] if len(scope) >= 5 and scope[-2:] == ["s3", "aws4_request"] else None
