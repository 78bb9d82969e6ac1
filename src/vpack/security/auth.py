"""Passwords (Argon2) and session tokens (JWT with expiry)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vpack.db.models import utcnow
from vpack.settings import Settings

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
_ALGORITHM = "HS256"
_ISSUER = "vpack"
MIN_PASSWORD_LENGTH = 8


class AuthError(Exception):
    """A login or session that is not accepted; the message is safe to show."""


class WeakPassword(ValueError):
    """A new password that does not meet the policy."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Made on first use, not at import: argon2id takes 64 MiB and every CLI
    # command imports this module.
    return _hasher.hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """Spend a real check on unknown accounts, so timing does not reveal which emails exist."""
    verify_password(_dummy_hash(), password)


@dataclass(frozen=True)
class SessionToken:
    token: str
    expires_at: datetime


def _key_path(settings: Settings) -> Path:
    return settings.data_dir / "session.key"


def ensure_session_key(settings: Settings) -> None:
    """Create the token-signing key (0600) once; replacing it signs everyone out."""
    path = _key_path(settings)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))


def _signing_key(settings: Settings) -> str:
    try:
        return _key_path(settings).read_text().strip()
    except FileNotFoundError:
        raise AuthError("the service is not initialised: run `vpack init`") from None


def issue_session(settings: Settings, user_id: int) -> SessionToken:
    now = utcnow()
    expires = now + timedelta(hours=settings.session_hours)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": expires,
        "iss": _ISSUER,
        "jti": secrets.token_urlsafe(8),
    }
    return SessionToken(jwt.encode(claims, _signing_key(settings), algorithm=_ALGORITHM), expires)


def read_session(settings: Settings, token: str) -> int:
    """The user id in a valid, unexpired token; AuthError otherwise."""
    try:
        claims = jwt.decode(
            token,
            _signing_key(settings),
            algorithms=[_ALGORITHM],
            issuer=_ISSUER,
            options={"require": ["exp", "sub", "iss"]},
        )
        user_id = int(claims["sub"])
    except jwt.ExpiredSignatureError:
        raise AuthError("your session has expired: sign in again") from None
    except (jwt.InvalidTokenError, ValueError):
        raise AuthError("not signed in") from None
    # Signed by us, yet no row can have that id: a token from another install, or forged
    # with a leaked key. Refused here, not by the database overflowing an integer.
    if not 0 < user_id < 2**31:
        raise AuthError("not signed in")
    return user_id
