"""Every error answers as JSON {"detail": ...} with the right status, never a bare 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from vpack.providers.errors import (
    AuthExpired,
    BadConfig,
    BadRequest,
    NotFound,
    Permanent,
    ProviderError,
    RateLimited,
    Transient,
)
from vpack.security.auth import AuthError, WeakPassword

log = logging.getLogger(__name__)


def _status(exc: ProviderError) -> int:
    if isinstance(exc, BadConfig | BadRequest):
        return 400
    if isinstance(exc, AuthExpired):
        return 409  # the connection, not this request, needs the user: reconnect
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, Transient):
        return 503
    if isinstance(exc, Permanent):
        return 422
    return 502


def install(app: FastAPI) -> None:
    @app.exception_handler(ProviderError)
    async def provider_error(request: Request, exc: ProviderError) -> JSONResponse:
        headers = {}
        if isinstance(exc, RateLimited) and exc.retry_after:
            headers["Retry-After"] = str(int(exc.retry_after + 0.999))
        return JSONResponse({"detail": str(exc)}, status_code=_status(exc), headers=headers)

    @app.exception_handler(AuthError)
    async def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=401)

    @app.exception_handler(WeakPassword)
    async def weak_password(request: Request, exc: WeakPassword) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(LookupError)
    async def not_found(request: Request, exc: LookupError) -> JSONResponse:
        return JSONResponse({"detail": str(exc).strip("'\"")}, status_code=404)

    @app.exception_handler(DataError)
    async def unstorable(request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refuses some values SQLite takes (a NUL character in text): the
        # request is at fault, and its transaction was rolled back, so nothing is lost.
        log.info("refused a value the database cannot store: %s", exc.orig)
        return JSONResponse(
            {"detail": "the request holds a value the database cannot store (a NUL character?)"},
            status_code=422,
        )
