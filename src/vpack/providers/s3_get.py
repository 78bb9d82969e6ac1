"""GetObject without boto3's per-call machinery, for the common case: a plain read succeeds.

A boto3 `get_object` costs about 1 ms of CPU before a byte moves (endpoint rules,
event hooks, parameter checks, response parsing): for a 64 KiB video that is most
of the client's work. Here the same request is signed with botocore's own SigV4
signer and sent through the boto3 client's own HTTP session (same TLS checks,
proxies, timeouts and connection pool), so only the request line is ours.

Only successes are taken from this path. Any other answer (an error, a redirect)
returns None and the caller asks boto3, which parses the error and retries as it
always does: one request more on a path that is failing anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.response import StreamingBody


class DirectGet:
    """Signed GETs of one bucket's objects, at the URL boto3 uses."""

    def __init__(self, client: Any, credentials: Any) -> None:
        # botocore's HTTP session is not public API; without it there is no fast path
        # (`available` stays False) and every read goes through boto3.
        self._http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        self._credentials = credentials
        self._region = client.meta.region_name
        self._base: str | None = None
        self._sent = threading.local()  # the URL of this thread's last boto3 GetObject
        client.meta.events.register("before-send.s3.GetObject", self._note_url)

    def _note_url(self, request: Any, **_: Any) -> None:
        self._sent.url = request.url  # returns None: botocore then sends it as usual

    def learn(self, key: str) -> None:
        """After boto3 has read `key` in this thread: take the object URL it used
        (virtual-host or path style, custom endpoint, region) as the pattern for the
        next reads, rather than re-deriving botocore's endpoint rules."""
        url = getattr(self._sent, "url", None)
        tail = quote(key, safe="/~")
        path = url.split("?", 1)[0] if url else ""
        if self._base is None and path.endswith(tail):
            self._base = path[: -len(tail)]

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
        assert self._http is not None and self._base is not None
        # botocore quotes a key the same way: '/' stays, so does '~'; '..' and '//' are
        # sent as they are (S3 keys are not paths), and S3's signature does not
        # normalise them either.
        request = AWSRequest(
            method="GET", url=self._base + quote(key, safe="/~"), headers=dict(headers)
        )
        S3SigV4Auth(self._credentials.get_frozen_credentials(), "s3", self._region).add_auth(
            request
        )
        prepared = request.prepare()
        prepared.stream_output = True
        response = self._http.send(prepared)
        if response.status_code not in (200, 206):
            response.raw.drain_conn()
            response.raw.release_conn()
            return None
        length = response.headers.get("content-length")
        body = StreamingBody(response.raw, int(length) if length else None)
        return body, response.headers  # botocore's, whose look-ups ignore case
