"""Signing in through a provider's own page (OAuth2): where to send the browser, and
where it comes back. Paths under /api/cloud/{provider}, as the seed plan names them."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from vpack.api.deps import CurrentUser, ServicesDep, SessionDep, client_ip
from vpack.api.owned import owned_connection
from vpack.api.schemas import OAuthStart, OAuthStarted
from vpack.oauth_signin import begin, complete
from vpack.providers.base import AuthKind, Provider
from vpack.providers.errors import BadConfig, ProviderError
from vpack.providers.kit.oauth import spec_from_env
from vpack.providers.registry import get_provider_class
from vpack.security import audit
from vpack.security.audit import Action

router = APIRouter(prefix="/api/cloud/{provider}", tags=["oauth sign-in"])


def _oauth_provider(provider: str) -> type[Provider]:
    cls = get_provider_class(provider)
    if cls.auth != AuthKind.OAUTH2 or cls.oauth is None:
        raise BadConfig(f"{cls.label} does not connect through a sign-in page")
    return cls


@router.post("/auth", response_model=OAuthStarted)
async def start_oauth(
    provider: str,
    body: OAuthStart,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
) -> OAuthStarted:
    """Where to send the user's browser to sign in; `state` ties the answer to this user."""
    cls = _oauth_provider(provider)
    if body.connection_id is not None:
        await owned_connection(session, body.connection_id, user, provider=provider)
    assert cls.oauth is not None
    spec = spec_from_env(cls.name, cls.oauth, services.settings)
    auth_url, state = await begin(
        services.db,
        spec,
        user_id=user.id,
        connection_name=body.name,
        connection_id=body.connection_id,
    )
    return OAuthStarted(auth_url=auth_url, state=state)


@router.get("/oauth/callback", response_class=RedirectResponse, status_code=303)
async def oauth_callback(
    provider: str,
    request: Request,
    user: CurrentUser,
    services: ServicesDep,
    state: str = Query(max_length=200),
    code: str | None = Query(default=None, max_length=4096),
    error: str | None = Query(default=None, max_length=200),
    error_description: str | None = Query(default=None, max_length=1000),
) -> RedirectResponse:
    """The provider sends the browser back here; store the connection, then show the UI."""
    cls = _oauth_provider(provider)
    assert cls.oauth is not None
    spec = spec_from_env(cls.name, cls.oauth, services.settings)
    try:
        tokens, pending = await complete(
            services.db,
            spec,
            state=state,
            code=code,
            user_id=user.id,
            error=error,
            error_description=error_description,
        )
        connection, identity, created = await services.connections.connect_oauth(
            provider=provider,
            owner_id=user.id,
            tokens=tokens,
            name=pending.connection_name,
            reconnect_id=pending.connection_id,
        )
    except ProviderError as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise
        # A person's browser: back to the connect page, which says what went wrong.
        query = urlencode({"error": str(exc)})
        return RedirectResponse(f"/connect/{quote(provider)}?{query}", status_code=303)
    actions = [Action.OAUTH_CALLBACK] + ([Action.CONNECTION_CREATED] if created else [])
    async with services.db.transaction() as tx:
        for action in actions:
            audit.record(
                tx,
                action,
                user_id=user.id,
                target_type="connection",
                target_id=connection.id,
                ip=client_ip(request),
                provider=provider,
                account=identity.label,
                reconnected=not created,
            )
    return RedirectResponse(f"/?connected={connection.id}", status_code=303)
