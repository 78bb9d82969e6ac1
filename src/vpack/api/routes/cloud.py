"""The seed plan's /api/cloud/{provider}/list_folders and /download, over the generic actions.

Its sign-in routes under the same prefix are in vpack.api.routes.oauth."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select

from vpack.api.actions import browse_connection, create_owned_source, start_sync
from vpack.api.deps import CurrentUser, IdQuery, ServicesDep, SessionDep
from vpack.api.owned import owned_connection
from vpack.api.schemas import Accepted, BrowseOut, DownloadRequest
from vpack.db.models import Source

router = APIRouter(prefix="/api/cloud/{provider}", tags=["cloud (seed aliases)"])


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
    return await browse_connection(services, connection, parent_id, page)


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
