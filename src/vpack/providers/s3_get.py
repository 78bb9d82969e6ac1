"""GetObject without boto3's per-call machinery, for the common case: a plain read succeeds.

A boto3 `get_object` costs about 1 ms of CPU before a byte moves (endpoint rules,
event hooks, parameter checks, response parsing): for a 64 KiB video that is most
of the client's work. Here the same request is signed with SigV4 (s3_sigv4) and
sent through the boto3 client's own HTTP session (same TLS checks, proxies,
timeouts and connection pool), so only the request line and its signature are ours.
The URL and the signing region are the ones botocore used for a first read
through boto3: its endpoint rules are not derived again.

Only successes are taken from this path. Any other answer (an error, a redirect)
returns None and the caller asks boto3, which parses the error and retries as it
always does: one request more on a path that is failing anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.awsrequest import AWSPreparedRequest
from botocore.response import StreamingBody

from vpack.providers.s3_sigv4 import ALGORITHM, GetSigner, Keys


class DirectGet:
    """Signed GETs of one bucket's objects, at the URL boto3 uses."""

    def __init__(self, client: Any, credentials: Any) -> None:
        # botocore's HTTP session is not public API; without it there is no fast path
        # (`available` stays False) and every read goes through boto3.
        self._http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        self._credentials = credentials
        self._base: str | None = None  # the object URL without the key
        self._base_path = ""  # its path, which the signature covers
        self._signer: GetSigner | None = None
        self._sent = threading.local()  # this thread's last boto3 GetObject request
        client.meta.events.register("before-send.s3.GetObject", self._note_request)

    def _note_request(self, request: Any, **_: Any) -> None:
        self._sent.request = request  # returns None: botocore then sends it as usual

    def learn(self, key: str) -> None:
        """After boto3 has read `key` in this thread: take the object URL it used
        (virtual-host or path style, custom endpoint) and the region it signed for
        (which a redirect may have changed) as the pattern for the next reads.
        A request not signed with SigV4 teaches nothing: reads stay with boto3."""
        request = getattr(self._sent, "request", None)
        if self._base is not None or request is None:
            return
        tail = quote(key, safe="/~")
        url = request.url.split("?", 1)[0]
        region = _signed_region(request.headers.get("Authorization"))
        if region is None or not url.endswith(tail):
            return
        base = url[: -len(tail)]
        parts = urlsplit(base)
        self._signer = GetSigner(_host(parts.scheme, parts.hostname, parts.port), region)
        self._base_path = parts.path
        self._base = base

    @property
    def available(self) -> bool:
        """Can reads go this way (once `learn` has seen one)?"""
        return self._http is not None and self._credentials is not None

    @property
    def ready(self) -> bool:
        return self.available and self._base is not None

    def get(
        self, key: str, headers: dict[str, str]
    ) -> tuple[StreamingBody, Mapping[str, str]] | None:
        """The object's body and response headers on a 200 or 206; None otherwise.

        Raises botocore's connection errors (EndpointConnectionError, timeouts) as
        boto3 would."""
        assert self._http is not None and self._base is not None and self._signer is not None
        # botocore quotes a key the same way: '/' stays, so does '~'; '..' and '//' are
        # sent as they are (S3 keys are not paths), and S3's signature does not
        # normalise them either.
        quoted = quote(key, safe="/~")
        frozen = self._credentials.get_frozen_credentials()  # refreshed if they expire
        keys = Keys(frozen.access_key, frozen.secret_key, frozen.token)
        signed = self._signer.headers(self._base_path + quoted, keys, headers)
        request = AWSPreparedRequest("GET", self._base + quoted, signed, None, True)
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


def _host(scheme: str, hostname: str | None, port: int | None) -> str:
    """The Host header an HTTP client sends for this URL: no port when it is the default."""
    host = hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return host
