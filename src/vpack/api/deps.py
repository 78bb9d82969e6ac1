"""Request dependencies: the services, a database session, and who is asking."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from vpack.db.models import Role, User
from vpack.security.auth import AuthError, read_session
from vpack.security.throttle import Throttle
from vpack.services import Services

MAX_ID = 2**31 - 1  # ids are INTEGER columns: the largest every database we run on stores
# Ids in paths and queries: out-of-range values are a 422, never a driver overflow.
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int, Query(ge=1, le=MAX_ID)]
CursorQuery = Annotated[str | None, Query(max_length=10, pattern=r"^\d+$")]


def cursor_id(cursor: str | None) -> int | None:
    """The id a page cursor points at; a forged one is a clear 422, not a driver overflow."""
    if cursor is None:
        return None
    value = int(cursor)
    if value > MAX_ID + 1:
        raise HTTPException(422, "this page cursor is not one the API handed out")
    return value


SESSION_COOKIE = "vpack_session"
CSRF_COOKIE = "vpack_csrf"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def get_throttle(request: Request) -> Throttle:
    return request.app.state.throttle  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
ThrottleDep = Annotated[Throttle, Depends(get_throttle)]


async def get_session(services: ServicesDep) -> AsyncIterator[AsyncSession]:
    async with services.db.session() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def get_current_user(
    request: Request, services: ServicesDep, session: SessionDep, throttle: ThrottleDep
) -> User:
    """The signed-in user, from a Bearer token (API) or the session cookie (browser)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        if token and request.method not in _SAFE_METHODS:
            _check_csrf(request)
    if not token:
        raise AuthError("not signed in")
    user = await session.get(User, read_session(services.settings, token))
    if user is None or user.disabled:
        raise AuthError("this account is disabled or no longer exists")
    wait = throttle.api_request(user.id)
    if wait is not None:
        raise HTTPException(
            429, "too many requests: slow down", headers={"Retry-After": str(int(wait + 0.999))}
        )
    return user


def _check_csrf(request: Request) -> None:
    """Double-submit: a cross-site form can send the cookie but cannot read it back."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not secrets.compare_digest(cookie, header):
        raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    if user.role != Role.ADMIN:
        raise HTTPException(403, "only an administrator can do this")
    return user


AdminUser = Annotated[User, Depends(get_admin)]
