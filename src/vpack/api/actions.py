"""What more than one route does for a signed-in user: add a source, sync it, browse.

The generic routes and the seed plan's /api/cloud aliases both call these, so no
route module imports another's handlers."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import update

from vpack import catalog
from vpack.api.deps import client_ip
from vpack.api.schemas import BrowseOut, NodeOut
from vpack.db.models import Connection, Source, User
from vpack.security import audit
from vpack.security.audit import Action
from vpack.services import Services


async def create_owned_source(
    request: Request,
    services: Services,
    user: User,
    *,
    connection_id: int,
    name: str,
    selections: list[str],
    options: dict[str, Any],
    interval_s: int,
    cameras: dict[str, str] | None = None,
    filters: dict[str, Any] | None = None,
    keep_days: int | None = None,
    via: str = "sources",
) -> int:
    """Validate and store a source of the user's, audited, and sync it soon."""
    source_id = await catalog.add_source(
        services.db,
        services.connections,
        connection_id=connection_id,
        name=name,
        selections=selections,
        options=options,
        interval_s=interval_s,
        cameras=cameras,
        owner_id=user.id,
        filters=filters,
        keep_days=keep_days,
    )
    async with services.db.transaction() as tx:
        audit.record(
            tx,
            Action.SOURCE_CREATED,
            user_id=user.id,
            target_type="source",
            target_id=source_id,
            ip=client_ip(request),
            name=name,
            connection_id=connection_id,
            via=via,
        )
    nudge(request)
    return source_id


async def start_sync(request: Request, services: Services, source_id: int) -> None:
    """Scan now and retry failed videos; the background worker picks it up at once."""
    await services.engine.requeue([source_id])
    async with services.db.transaction() as tx:
        await tx.execute(update(Source).where(Source.id == source_id).values(next_scan_at=None))
    nudge(request)


def nudge(request: Request) -> None:
    """Wake this process's worker, if it runs one, instead of waiting for its tick."""
    executor = request.app.state.executor
    if executor is not None:
        executor.sync_soon()


async def browse_connection(
    services: Services, connection: Connection, node: str | None, page: str | None
) -> BrowseOut:
    """One page of `node`'s children (the top when None) from the connection's provider."""
    provider = services.connections.build(connection)
    try:
        result = await provider.browse(node or None, page or None)
    finally:
        await provider.aclose()
    return BrowseOut(
        nodes=[
            NodeOut(
                id=n.id,
                name=n.name,
                kind=n.kind,
                has_children=n.has_children,
                selectable=n.selectable,
            )
            for n in result.nodes
        ],
        next_page=result.next_page,
    )
