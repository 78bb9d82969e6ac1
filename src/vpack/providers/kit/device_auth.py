"""HTTP Digest or Basic sign-in to a recorder that locks accounts after failed logins.

Hikvision and Dahua devices (and Tapo on the LAN) lock a user after a few refused
passwords, so the one thing this adds to RFC 7616/7617 is restraint: a refused
password is never sent a second time.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Callable, Generator
from typing import Any

import httpx

_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')
_DIGESTS: dict[str, Callable[[bytes], Any]] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


class DeviceAuth(httpx.Auth):
    """HTTP Digest (RFC 7616) or Basic (RFC 7617), whichever the device asks for.

    httpx's own DigestAuth answers every 401 with one more try; this answers again
    only a challenge that says the nonce is stale (RFC 7616 §3.3).
    """

    requires_request_body = True

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._scheme: str | None = None  # learnt from the first challenge
        self._challenge: dict[str, str] = {}
        self._count = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sent = self._authorize(request)
        response = yield request
        if response.status_code != 401:
            return
        offered = challenge_of(response)
        if offered is None:
            return
        scheme, params = offered
        stale = params.get("stale", "").lower() == "true"
        if sent and not (scheme == "digest" and stale):
            return  # our credentials were refused: do not spend another try
        self._scheme, self._challenge, self._count = scheme, params, 0
        self._authorize(request)
        yield request

    def _authorize(self, request: httpx.Request) -> bool:
        if self._scheme == "basic":
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            request.headers["Authorization"] = f"Basic {token}"
        elif self._scheme == "digest":
            request.headers["Authorization"] = self._digest(request)
        else:
            return False
        return True

    def _digest(self, request: httpx.Request) -> str:
        c = self._challenge
        algorithm = c.get("algorithm", "MD5").upper()
        hasher = _DIGESTS.get(algorithm.removesuffix("-SESS"), hashlib.md5)

        def h(text: str) -> str:
            return str(hasher(text.encode("utf-8")).hexdigest())

        self._count += 1
        nc, cnonce = f"{self._count:08x}", secrets.token_hex(8)
        realm, nonce = c.get("realm", ""), c.get("nonce", "")
        uri = request.url.raw_path.decode("ascii")
        ha1 = h(f"{self.username}:{realm}:{self.password}")
        if algorithm.endswith("-SESS"):
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        ha2 = h(f"{request.method}:{uri}")
        qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
        fields = {
            "username": _quoted(self.username),
            "realm": _quoted(realm),
            "nonce": _quoted(nonce),
            "uri": _quoted(uri),
            "algorithm": algorithm,
        }
        if "auth" in qops:
            fields["response"] = _quoted(h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
            fields.update(qop="auth", nc=nc, cnonce=_quoted(cnonce))
        else:
            fields["response"] = _quoted(h(f"{ha1}:{nonce}:{ha2}"))
        if "opaque" in c:
            fields["opaque"] = _quoted(c["opaque"])
        return "Digest " + ", ".join(f"{k}={v}" for k, v in fields.items())


def challenge_of(response: httpx.Response) -> tuple[str, dict[str, str]] | None:
    """The scheme to answer (Digest preferred) and its parameters."""
    offered: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("www-authenticate"):
        scheme, _, rest = header.strip().partition(" ")
        params = {
            m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _AUTH_PARAM.finditer(rest)
        }
        offered[scheme.lower()] = params
    for scheme in ("digest", "basic"):
        if scheme in offered:
            return scheme, offered[scheme]
    return None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
