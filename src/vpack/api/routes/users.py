"""Administrators manage accounts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select

from vpack.accounts import AccountExists, create_user
from vpack.api.deps import AdminUser, IdPath, ServicesDep, SessionDep, client_ip
from vpack.api.schemas import NewUser, UserChange, UserOut
from vpack.db.models import User
from vpack.security import audit
from vpack.security.audit import Action

router = APIRouter(prefix="/api/users", tags=["users"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=UserOut)
async def add_user(
    body: NewUser, admin: AdminUser, request: Request, services: ServicesDep
) -> UserOut:
    async with services.db.transaction() as session:
        try:
            user = await create_user(
                session,
                body.email,
                body.password,
                body.role,
                by=admin.id,
                ip=client_ip(request),
                via="admin",
            )
        except AccountExists as exc:
            raise HTTPException(409, str(exc)) from None
    return UserOut.model_validate(user)


@router.get("", response_model=list[UserOut])
async def list_users(admin: AdminUser, session: SessionDep) -> list[UserOut]:
    users = (await session.execute(select(User).order_by(User.id))).scalars()
    return [UserOut.model_validate(u) for u in users]


@router.patch("/{user_id}", response_model=UserOut)
async def change_user(
    user_id: IdPath, body: UserChange, admin: AdminUser, request: Request, services: ServicesDep
) -> UserOut:
    """Disable (their sessions stop working at once), enable, or change a role."""
    async with services.db.transaction() as session:
        user = await session.get(User, user_id)
        if user is None:
            raise HTTPException(404, f"no user with id {user_id}")
        if user.id == admin.id and (body.disabled or (body.role and body.role != user.role)):
            raise HTTPException(400, "you cannot disable or demote yourself")
        if body.role is not None:
            user.role = body.role
        if body.disabled is not None and body.disabled != user.disabled:
            user.disabled = body.disabled
            action = Action.USER_DISABLED if body.disabled else Action.USER_ENABLED
            audit.record(
                session,
                action,
                user_id=admin.id,
                target_type="user",
                target_id=user.id,
                ip=client_ip(request),
            )
    return UserOut.model_validate(user)
