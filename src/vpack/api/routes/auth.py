"""First-run setup, signing in and out, and who am I."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Request, Response, status

from vpack.accounts import AccountExists, create_user, find_user, user_count
from vpack.api.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    CurrentUser,
    ServicesDep,
    ThrottleDep,
    client_ip,
)
from vpack.api.schemas import Credentials, LoginOut, SetupState, UserOut
from vpack.db.models import Role, utcnow
from vpack.security import audit
from vpack.security.audit import Action
from vpack.security.auth import AuthError, burn_password_check, issue_session, verify_password

router = APIRouter(prefix="/api", tags=["auth"])


@router.get("/setup", response_model=SetupState)
async def setup_state(services: ServicesDep) -> SetupState:
    """Whether first-run setup is still open, so a fresh UI shows onboarding, not sign-in."""
    async with services.db.session() as session:
        return SetupState(needed=await user_count(session) == 0)


@router.post("/setup", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def setup(body: Credentials, request: Request, services: ServicesDep) -> UserOut:
    """Create the first administrator; only while no user exists."""
    async with services.db.transaction() as session:
        if await user_count(session) > 0:
            raise HTTPException(409, "setup is done: an administrator already exists")
        try:
            user = await create_user(
                session,
                body.email,
                body.password,
                Role.ADMIN,
                by=None,
                ip=client_ip(request),
                via="setup",
            )
        except AccountExists as exc:
            raise HTTPException(409, str(exc)) from None
    return UserOut.model_validate(user)


@router.post("/auth/login", response_model=LoginOut)
async def login(
    body: Credentials,
    request: Request,
    response: Response,
    services: ServicesDep,
    throttle: ThrottleDep,
) -> LoginOut:
    ip = client_ip(request)
    wait = throttle.login_blocked(ip, body.email)
    if wait is not None:
        raise HTTPException(
            429,
            "too many failed sign-ins: wait and try again",
            headers={"Retry-After": str(int(wait + 0.999))},
        )
    async with services.db.transaction() as session:
        user = await find_user(session, body.email)
        if user is None:
            burn_password_check(body.password)
        ok = user is not None and verify_password(user.password_hash, body.password)
        if not ok or user is None or user.disabled:
            throttle.login_failed(ip, body.email)
            audit.record(
                session,
                Action.LOGIN_FAILED,
                user_id=user.id if user else None,
                ip=ip,
                email=body.email.strip().lower()[:320],
                reason="disabled" if ok else "bad credentials",
            )
            failed = True
        else:
            user.last_login_at = utcnow()
            audit.record(session, Action.LOGIN, user_id=user.id, ip=ip)
            failed = False
    if failed:  # after the transaction, so the failure is on record
        raise AuthError("wrong email or password, or the account is disabled")
    assert user is not None
    token = issue_session(services.settings, user.id)
    csrf = secrets.token_urlsafe(24)
    max_age = int(services.settings.session_hours * 3600)
    secure = services.settings.cookie_secure
    response.set_cookie(
        SESSION_COOKIE,
        token.token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, httponly=False, samesite="lax", secure=secure, path="/"
    )
    return LoginOut(access_token=token.token, expires_at=token.expires_at, csrf_token=csrf)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    user: CurrentUser, request: Request, response: Response, services: ServicesDep
) -> None:
    async with services.db.transaction() as session:
        audit.record(session, Action.LOGOUT, user_id=user.id, ip=client_ip(request))
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


@router.get("/auth/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
