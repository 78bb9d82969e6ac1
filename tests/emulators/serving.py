"""Running an ASGI app on a free local port in a background thread, for emulators."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn
from starlette.responses import StreamingResponse
from starlette.types import Send


class Emulator(ABC):
    """`with emulator:` starts it and stops it, whatever happens inside."""

    @abstractmethod
    def start(self) -> Self:
        """Serve on a free local port; return self."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving and free the port."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServedEmulator(Emulator):
    """An emulator one BackgroundServer (`self._server`) serves over plain HTTP."""

    _server: BackgroundServer

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> Self:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


class BackgroundServer:
    """One uvicorn server on 127.0.0.1, started and stopped from a test's thread."""

    def __init__(self, app: Any, name: str) -> None:
        self.app = app
        self.name = name
        self.base_url = ""
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self, *, certfile: Path | None = None, keyfile: Path | None = None) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        options: dict[str, Any] = {}
        if certfile is not None:
            options = {
                "ssl_certfile": str(certfile),
                "ssl_keyfile": str(keyfile),
                "ssl_version": ssl.PROTOCOL_TLS_SERVER,
            }
        config = uvicorn.Config(
            self.app, log_level="critical", lifespan="off", access_log=False, **options
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start")
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock
        self.port = sock.getsockname()[1]
        scheme = "https" if certfile is not None else "http"
        self.base_url = f"{scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway self-signed certificate for `host`, like the one a recorder ships with."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    certfile, keyfile = folder / "device.crt", folder / "device.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


@dataclass
class Cut:
    """A download that stops after `after_bytes`: the connection breaks (`drop`) or
    the answer just ends early."""

    after_bytes: int
    drop: bool


async def send_bytes(data: bytes, cut: Cut | None, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A streamed answer's body, cut short as `cut` says (a dropped stream raises)."""
    limit = len(data) if cut is None else min(cut.after_bytes, len(data))
    for offset in range(0, limit, chunk):
        yield data[offset : min(offset + chunk, limit)]
        await asyncio.sleep(0)
    if cut is not None and cut.drop:
        raise ConnectionResetError("emulated dropped stream")


class FileBody(StreamingResponse):
    """A stored file's bytes `[start, end)` in chunks, as a vendor's download answers:
    `flip_at` flips one byte (a corrupt transfer), `cut_after` hangs up after that many
    bytes with the body incomplete (a cut stream). Shared by the file-store emulators."""

    chunk = 256 * 1024

    def __init__(
        self,
        data: bytes,
        start: int,
        end: int,
        *,
        cut_after: int | None,
        flip_at: int | None,
        status_code: int,
        headers: dict[str, str],
        media_type: str = "application/octet-stream",
    ) -> None:
        self._data, self._start, self._end = data, start, end
        self._cut_after, self._flip_at = cut_after, flip_at
        super().__init__(self._chunks(), status_code, headers, media_type)

    async def _chunks(self) -> AsyncIterator[bytes]:
        view = memoryview(self._data)
        stop = (
            self._end if self._cut_after is None else min(self._end, self._start + self._cut_after)
        )
        position = self._start
        while position < stop:
            chunk = bytearray(view[position : min(position + self.chunk, stop)])
            if self._flip_at is not None and position <= self._flip_at < position + len(chunk):
                chunk[self._flip_at - position] ^= 0xFF
            yield bytes(chunk)
            position += len(chunk)

    async def stream_response(self, send: Send) -> None:
        if self._cut_after is None:
            await super().stream_response(send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        async for chunk in self.body_iterator:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        # No final body message: the server closes the connection with the body incomplete.
