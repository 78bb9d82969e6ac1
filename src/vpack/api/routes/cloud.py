"""The seed plan's /api/cloud/{provider}/... routes, as thin aliases over the generic ones."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from vpack.api.deps import CurrentUser, IdQuery, ServicesDep, SessionDep, client_ip
from vpack.api.owned import owned_connection
from vpack.api.routes.connections import browse
from vpack.api.routes.sources import create_owned_source, start_sync
from vpack.api.schemas import Accepted, BrowseOut, DownloadRequest, OAuthStart, OAuthStarted
from vpack.db.models import Source
from vpack.oauth_signin import begin, complete
from vpack.providers.base import AuthKind, Provider
from vpack.providers.errors import BadConfig, ProviderError
from vpack.providers.kit.oauth import spec_from_env
from vpack.providers.registry import get_provider_class
from vpack.security import audit
from vpack.security.audit import Action

router = APIRouter(prefix="/api/cloud/{provider}", tags=["cloud (seed aliases)"])


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


@router.get("/list_folders", response_model=BrowseOut)
async def list_folders(
    provider: str,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    connection_id: IdQuery,
    parent_id: str | None = Query(default=None, max_length=4096),
    page: str | None = Query(default=None, max_length=4096),
) -> BrowseOut:
    connection = await owned_connection(session, connection_id, user, provider=provider)
    return await browse(connection.id, user, services, session, node=parent_id, page=page)


@router.post("/download", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def download(
    provider: str,
    body: DownloadRequest,
    user: CurrentUser,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> Accepted:
    """Fetch the chosen folders now: a source over them (reused if it exists), synced at once."""
    connection = await owned_connection(session, body.connection_id, user, provider=provider)
    existing = (
        (await session.execute(select(Source).where(Source.connection_id == connection.id)))
        .scalars()
        .all()
    )
    source = next((s for s in existing if sorted(s.selections) == sorted(body.items)), None)
    if source is None:
        source_id = await create_owned_source(
            request,
            services,
            user,
            connection_id=connection.id,
            name=body.name or f"{connection.name}: {len(body.items)} folder(s)",
            selections=body.items,
            options={},
            interval_s=3600,
            via="download",
        )
    else:
        source_id = source.id
    await start_sync(request, services, source_id)
    return Accepted(source_id=source_id)
