"""moto's S3 server, its access log stamped with when each request arrived.

    python -m bench.s3.moto_clock -H 127.0.0.1 -p PORT     # moto.server's arguments

The server is moto's own (`moto.server.main`); only the log line changes. Where
werkzeug writes the date to the second, this writes the CLOCK_MONOTONIC second, to
the microsecond, at which the request's line had arrived and its headers were
about to be read. The benchmark reads the clock too when it launches a tool, so the
first line after the launch tells how long the tool took to send its first request:
the start-up that moto's idle time and the tool's total include.
"""

from __future__ import annotations

import time

from moto.server import main
from werkzeug.serving import WSGIRequestHandler

_parse_request = WSGIRequestHandler.parse_request


def _parse_and_stamp(handler: WSGIRequestHandler) -> bool:
    handler.arrived = time.monotonic()  # type: ignore[attr-defined]
    return _parse_request(handler)


def _arrival(handler: WSGIRequestHandler) -> str:
    return f"{getattr(handler, 'arrived', time.monotonic()):.6f}"


WSGIRequestHandler.parse_request = _parse_and_stamp  # type: ignore[method-assign]
WSGIRequestHandler.log_date_time_string = _arrival  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
