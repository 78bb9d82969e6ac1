"""Creating and finding users (shared by the API and `vpack users create`)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from vpack.db.models import Role, User
from vpack.security import audit
from vpack.security.audit import Action
from vpack.security.auth import hash_password


class AccountExists(Exception):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def user_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(User.id)))).scalar_one())


async def find_user(session: AsyncSession, email: str) -> User | None:
    return (
        await session.execute(select(User).where(User.email == normalise_email(email)))
    ).scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    email: str,
    password: str,
    role: Role,
    *,
    by: int | None,
    ip: str | None = None,
    via: str,
) -> User:
    """Add a user to the caller's transaction, audited (`by`: who made it, None for
    the account itself or the operator). WeakPassword / AccountExists on bad input."""
    email = normalise_email(email)
    if await find_user(session, email) is not None:
        raise AccountExists(f"an account for {email} already exists")
    user = User(email=email, password_hash=hash_password(password), role=role)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent request made it first
        raise AccountExists(f"an account for {email} already exists") from None
    audit.record(
        session,
        Action.USER_CREATED,
        user_id=by if by is not None else user.id,
        target_type="user",
        target_id=user.id,
        ip=ip,
        email=user.email,
        role=user.role,
        via=via,
    )
    return user
