"""libcurl handles for the S3 requests sent without botocore (`get.py`'s reads, `listing.py`'s
listings): set up with the TLS, proxy and timeout settings botocore would use, and kept
idle between requests, each holding its connection open for the next one."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pycurl

# libcurl's errors for a server it never reached (DNS, refused, proxy), as opposed to
# one that stopped answering part-way.
UNREACHED = frozenset(
    {pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_COULDNT_CONNECT}
)


class FetchFailed(Exception):
    """A fetch that did not complete. `reached`: a connection was made; `cut`: the
    object had begun to arrive, and `received` holds its bytes so far (a prefix to
    resume from)."""

    def __init__(self, message: str, received: bytes, *, reached: bool, cut: bool) -> None:
        super().__init__(message)
        self.received, self.reached, self.cut = received, reached, cut


@dataclass(frozen=True)
class Transport:
    """How libcurl reaches the store: as botocore's HTTP session would."""

    connect_timeout: float
    read_timeout: float  # no byte for this long ends a transfer
    proxy: str | None  # None: no proxy, whatever the environment says
    ca_bundle: str | None  # the CAs a certificate must chain to; None: not checked


class CurlPool:
    """Idle libcurl handles set up for one transport, taken and given back by any thread."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._idle: list[pycurl.Curl] = []
        self._lock = threading.Lock()

    def take(self) -> pycurl.Curl:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        transport = self.transport
        curl = pycurl.Curl()
        curl.setopt(pycurl.NOSIGNAL, 1)  # timeouts without SIGALRM: we are in threads
        # S3 keys are not paths: "a/../b" is its own object, signed as written.
        curl.setopt(pycurl.PATH_AS_IS, 1)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, int(transport.connect_timeout * 1000))
        # botocore's read timeout: no byte for that long ends the read.
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, max(1, int(transport.read_timeout)))
        curl.setopt(pycurl.PROXY, transport.proxy or "")  # "": none, whatever the environment says
        if transport.ca_bundle is None:
            curl.setopt(pycurl.SSL_VERIFYPEER, 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        else:
            curl.setopt(pycurl.CAINFO, transport.ca_bundle)
        return curl

    def get(
        self, url: str, headers: dict[str, str]
    ) -> tuple[pycurl.Curl, list[bytes], list[bytes]]:
        """A handle set up to GET `url` with exactly these (signed) headers, and the
        lists its body and header lines go to; give it back when done."""
        curl = self.take()
        body: list[bytes] = []
        lines: list[bytes] = []
        curl.setopt(pycurl.URL, url)
        # An empty "Accept:" keeps libcurl's default one out: only signed headers go.
        curl.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in headers.items()] + ["Accept:"])
        curl.setopt(pycurl.WRITEFUNCTION, body.append)
        curl.setopt(pycurl.HEADERFUNCTION, lines.append)
        return curl, body, lines

    def give(self, curl: pycurl.Curl) -> None:
        with self._lock:
            self._idle.append(curl)

    def close(self) -> None:
        with self._lock:
            handles, self._idle = self._idle, []
        for curl in handles:
            curl.close()


def header_fields(lines: list[bytes]) -> dict[str, str]:
    """Response header lines as received (status line first) as a dict, names in lower case."""
    fields: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.decode("latin-1").partition(":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    return fields
