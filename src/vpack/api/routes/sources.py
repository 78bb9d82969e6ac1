"""Sources: what to keep in sync, its settings, "sync now" and live status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import func, select, update

from vpack import catalog
from vpack.api.actions import create_owned_source, nudge, start_sync
from vpack.api.deps import CurrentUser, IdPath, ServicesDep, SessionDep, client_ip
from vpack.api.owned import OwnedSource, owned, owned_connection, owned_source
from vpack.api.schemas import (
    Accepted,
    InFlight,
    NewSource,
    SourceChange,
    SourceOut,
    SourceStatusOut,
)
from vpack.db.models import Connection, Source, Video, VideoState
from vpack.providers.registry import source_options
from vpack.security import audit
from vpack.security.audit import Action

router = APIRouter(prefix="/api/sources", tags=["sources"])


async def _counts(session: SessionDep, source_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: {s.value: 0 for s in VideoState} for i in source_ids}
    if source_ids:
        rows = await session.execute(
            select(Video.source_id, Video.state, func.count(Video.id))
            .where(Video.source_id.in_(source_ids))
            .group_by(Video.source_id, Video.state)
        )
        for source_id, state, n in rows:
            counts[source_id][state] = n
    return counts


def _out(source: Source, provider: str, counts: dict[str, int]) -> SourceOut:
    return SourceOut(
        id=source.id,
        connection_id=source.connection_id,
        provider=provider,
        name=source.name,
        selections=list(source.selections),
        selection_names=dict(source.selection_names or {}),
        cameras=dict(source.cameras),
        interval_s=source.interval_s,
        filters=dict(source.filters),
        options=dict(source.options),
        keep_days=source.keep_days,
        status=source.status,
        last_error=source.last_error,
        last_scan_at=source.last_scan_at,
        next_scan_at=source.next_scan_at,
        counts=counts,
    )


async def _provider_name(session: SessionDep, source: Source) -> str:
    connection = await session.get(Connection, source.connection_id)
    assert connection is not None
    return connection.provider


async def _source_out(session: SessionDep, source: Source) -> SourceOut:
    counts = await _counts(session, [source.id])
    return _out(source, await _provider_name(session, source), counts[source.id])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SourceOut)
async def create_source(
    body: NewSource,
    user: CurrentUser,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> SourceOut:
    connection = await owned_connection(session, body.connection_id, user)
    source_id = await create_owned_source(
        request,
        services,
        user,
        connection_id=connection.id,
        name=body.name,
        selections=body.selections,
        options=body.options,
        interval_s=body.interval_s,
        cameras=body.cameras,
        filters=body.filters.model_dump(mode="json", exclude_defaults=True),
        keep_days=body.keep_days,
    )
    nudge(request)
    return await _source_out(session, await owned_source(session, source_id, user))


_WHAT_A_SCAN_READS = frozenset({"selections", "cameras", "filters", "options"})


@router.get("", response_model=list[SourceOut])
async def list_sources(user: CurrentUser, session: SessionDep) -> list[SourceOut]:
    query = owned(
        select(Source, Connection.provider).join(Connection).order_by(Source.id),
        Source.owner_id,
        user,
    )
    rows = (await session.execute(query)).all()
    counts = await _counts(session, [s.id for s, _ in rows])
    return [_out(s, provider, counts[s.id]) for s, provider in rows]


@router.get("/{source_id}", response_model=SourceOut)
async def get_source(source: OwnedSource, session: SessionDep) -> SourceOut:
    return await _source_out(session, source)


@router.patch("/{source_id}", response_model=SourceOut)
async def change_source(
    source_id: IdPath,
    body: SourceChange,
    user: CurrentUser,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> SourceOut:
    # Not OwnedSource: after the body is validated (see vpack.api.owned).
    source = await owned_source(session, source_id, user)
    changes: dict[str, Any] = body.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    provider_name = await _provider_name(session, source)
    stored = dict(changes)  # what the row gets: the changes, and names for new selections
    if "options" in changes:
        stored["options"] = source_options(provider_name, changes["options"]).model_dump(
            mode="json"
        )
    if "selections" in changes:
        connection = await owned_connection(session, source.connection_id, user)
        stored["selection_names"] = await catalog.validate_selections(
            services.connections, connection, changes["selections"]
        )
    if "name" in changes:
        stored["name"] = changes["name"].strip()
    if "keep_days" in body.model_fields_set:  # null is a value here: keep for ever
        stored["keep_days"] = body.keep_days
    rescan = bool(changes.keys() & _WHAT_A_SCAN_READS)
    if rescan:
        # New settings are tried at once: a source that needed attention (a folder
        # gone, an option refused) need not wait out its long retry.
        stored["next_scan_at"] = None
    async with services.db.transaction() as tx:
        if stored:
            await tx.execute(update(Source).where(Source.id == source.id).values(**stored))
        audit.record(
            tx,
            Action.SOURCE_CHANGED,
            user_id=user.id,
            target_type="source",
            target_id=source.id,
            ip=client_ip(request),
            fields=sorted(changes),
        )
    if rescan:
        nudge(request)
    await session.refresh(source)
    return await _source_out(session, source)


@router.delete("/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(
    source_id: IdPath,
    user: CurrentUser,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
    purge: bool = Query(default=False),
) -> None:
    """Stop syncing; downloaded videos stay unless purge=true."""
    # Not OwnedSource: after `purge` is validated (see vpack.api.owned).
    source = await owned_source(session, source_id, user)
    purged = await catalog.remove_source(services.db, services.store, source.id, purge)
    async with services.db.transaction() as tx:
        audit.record(
            tx,
            Action.SOURCE_REMOVED,
            user_id=user.id,
            target_type="source",
            target_id=source.id,
            ip=client_ip(request),
            purge=purge,
            files_deleted=purged,
        )


@router.post("/{source_id}/sync", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def sync_now(source: OwnedSource, request: Request, services: ServicesDep) -> Accepted:
    """Scan now and retry failed videos; the background worker does the work."""
    await start_sync(request, services, source.id)
    return Accepted(source_id=source.id)


@router.get("/{source_id}/status", response_model=SourceStatusOut)
async def source_status(
    source: OwnedSource, request: Request, session: SessionDep
) -> SourceStatusOut:
    connection = await session.get(Connection, source.connection_id)
    assert connection is not None
    counts = (await _counts(session, [source.id]))[source.id]
    done_bytes, total_bytes = (
        await session.execute(
            select(
                func.coalesce(func.sum(Video.size).filter(Video.state == VideoState.DONE), 0),
                func.coalesce(func.sum(Video.size).filter(Video.state != VideoState.SKIPPED), 0),
            ).where(Video.source_id == source.id)
        )
    ).one()
    live = request.app.state.progress.for_source(source.id)
    moving = sum(v["bytes_done"] for v in live)
    return SourceStatusOut(
        id=source.id,
        state=source.status,
        connection_status=connection.status,
        counts=counts,
        bytes_done=int(done_bytes or 0) + moving,
        bytes_total=int(total_bytes or 0),
        current=[
            InFlight(
                video_id=v["video_id"], name=v["name"], bytes_done=v["bytes_done"], size=v["size"]
            )
            for v in live
        ],
        last_error=source.last_error or connection.status_detail,
        last_scan_at=source.last_scan_at,
        next_scan_at=source.next_scan_at,
    )
