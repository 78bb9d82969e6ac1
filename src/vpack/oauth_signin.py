"""Starting and finishing an OAuth2 sign-in (RFC 6749 §4.1 with PKCE, RFC 7636 S256):
single-use state rows bound to the user, in our own database, then the code
traded for tokens at the provider's token endpoint (`providers.kit.oauth`)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from vpack.db.models import OAuthState
from vpack.db.session import Database
from vpack.providers.kit.oauth import (
    OAuthFlowError,
    OAuthSpec,
    TokenSet,
    token_call,
    token_client,
)

STATE_TTL = timedelta(minutes=10)


def _pkce_pair() -> tuple[str, str]:
    # RFC 7636 §4.1: 43-128 unreserved characters; 64 random bytes -> 86 chars.
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def begin(
    db: Database,
    spec: OAuthSpec,
    *,
    user_id: int,
    connection_name: str | None = None,
    connection_id: int | None = None,
    ttl: timedelta = STATE_TTL,
) -> tuple[str, str]:
    """Start connecting: store a single-use state with its PKCE verifier; return (url, state)."""
    state = secrets.token_urlsafe(32)
    verifier, challenge = _pkce_pair()
    now = datetime.now(UTC)
    async with db.transaction() as session:
        session.add(
            OAuthState(
                state=state,
                user_id=user_id,
                provider=spec.provider,
                code_verifier=verifier,
                connection_name=connection_name,
                connection_id=connection_id,
                created_at=now,
                expires_at=now + ttl,
            )
        )
    params = {
        "response_type": "code",
        "client_id": spec.client_id,
        "redirect_uri": spec.redirect_uri,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **spec.extra_authorize_params,
    }
    if spec.scopes:
        params["scope"] = " ".join(spec.scopes)
    return str(httpx.URL(spec.authorize_url).copy_merge_params(params)), state


async def _consume_state(db: Database, spec: OAuthSpec, state: str, user_id: int) -> OAuthState:
    """Mark the state used, or say exactly why it cannot be."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        # One conditional UPDATE: of two racing callbacks only one can win, on both backends.
        won = (
            await session.execute(
                update(OAuthState)
                .where(
                    OAuthState.state == state,
                    OAuthState.user_id == user_id,
                    OAuthState.provider == spec.provider,
                    OAuthState.used_at.is_(None),
                    OAuthState.expires_at > now,
                )
                .values(used_at=now)
                .returning(OAuthState)
            )
        ).scalar_one_or_none()
        if won is not None:
            return won
        row = (
            await session.execute(select(OAuthState).where(OAuthState.state == state))
        ).scalar_one_or_none()
    if row is None:
        raise OAuthFlowError(
            "unknown OAuth state: this sign-in link was not started here; connect again",
            error="state_unknown",
        )
    if row.user_id != user_id:
        raise OAuthFlowError(
            "this OAuth sign-in was started by another user; connect again from your account",
            error="state_other_user",
        )
    if row.provider != spec.provider:
        raise OAuthFlowError(
            f"this OAuth sign-in was started for {row.provider}, not {spec.provider}",
            error="state_other_provider",
        )
    if row.used_at is not None:
        raise OAuthFlowError(
            "this OAuth sign-in was already used (states are single-use); connect again",
            error="state_used",
        )
    raise OAuthFlowError(
        "this OAuth sign-in expired before it was finished; connect again",
        error="state_expired",
    )


async def complete(
    db: Database,
    spec: OAuthSpec,
    *,
    state: str,
    code: str | None,
    user_id: int,
    http: httpx.AsyncClient | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> tuple[TokenSet, OAuthState]:
    """Finish connecting: check and spend the state, then trade the code for tokens.

    `error`/`error_description` are the callback's own query parameters (RFC 6749
    §4.1.2.1), e.g. when the user pressed "Deny": the state is spent all the same.
    """
    row = await _consume_state(db, spec, state, user_id)
    if error is not None or not code:
        reason = error or "no authorization code in the callback"
        detail = f": {error_description}" if error_description else ""
        message = (
            f"access to {spec.provider} was declined{detail}"
            if error == "access_denied"
            else f"{spec.provider} did not authorise the connection ({reason}{detail})"
        )
        raise OAuthFlowError(message, error=error or "invalid_request")
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": spec.redirect_uri,
        "code_verifier": row.code_verifier,
    }
    async with token_client(http) as client:
        body = await token_call(client, spec, data, refreshing=False)
    return TokenSet.from_response(body, requested=" ".join(spec.scopes)), row
