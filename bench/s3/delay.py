"""A TCP relay that holds every chunk for a fixed time in each direction: a far S3
endpoint's round trip, in front of moto on this machine.

The Linux qdisc that would do this (netem) is not in this machine's kernel, so the
delay is added in user space, in a thread of the benchmark: each chunk read from
one side is written to the other `delay` seconds after it arrived, in order. A
request and its answer therefore take at least twice the delay; connecting does
not (the relay accepts at once).
"""

from __future__ import annotations

import asyncio
import threading
import time


class DelayRelay:
    """Relays 127.0.0.1:`port` to `upstream_port`, `delay` seconds each way."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.upstream_port, self.delay = upstream_port, delay
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name="delay-relay", daemon=True)

    def __enter__(self) -> DelayRelay:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay relay did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk (and the end) `delay` late."""
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await held.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        while True:
            chunk = await reader.read(256 * 1024)
            held.put_nowait((time.monotonic() + self.delay, chunk))
            if not chunk:
                break
        await delivering
