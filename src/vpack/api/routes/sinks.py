"""Sinks: where a source's published videos are handed on, their status and log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import ValidationError
from sqlalchemy import func, select

from vpack.api.deps import (
    CurrentUser,
    CursorQuery,
    IdPath,
    ServicesDep,
    SessionDep,
    client_ip,
    cursor_id,
)
from vpack.api.owned import OwnedSink, OwnedSource, owned_sink, owned_source
from vpack.api.schemas import (
    DeliveryOut,
    DeliveryPage,
    NewSink,
    SinkChange,
    SinkKindOut,
    SinkOut,
)
from vpack.connections import secret_fields
from vpack.db.models import Delivery, Sink, SinkStatus, Video
from vpack.handoff.deliverer import vault_id
from vpack.handoff.kinds import KINDS, DeliveryFailed, SinkKind
from vpack.security import audit
from vpack.security.audit import Action
from vpack.services import Services

router = APIRouter(tags=["sinks"])


def _kind(name: str) -> type[SinkKind]:
    kind = KINDS.get(name)
    if kind is None:
        raise HTTPException(400, f"unknown sink kind {name!r} (known: {', '.join(sorted(KINDS))})")
    return kind


def _validated(
    services: Services, kind: type[SinkKind], config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(stored settings, secrets) of a configuration the kind accepts and can use."""
    try:
        parsed = kind.Config.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "config"
        raise HTTPException(
            400, f"invalid {kind.label} settings: {where}: {first['msg']}"
        ) from None
    try:
        kind(parsed, services.settings, services.store.zone).check()
    except DeliveryFailed as exc:
        raise HTTPException(400, str(exc)) from None
    hidden = secret_fields(kind.Config)
    plain = parsed.model_dump(mode="json", exclude=hidden)
    secrets = {
        name: getattr(parsed, name).get_secret_value()
        for name in hidden
        if getattr(parsed, name) is not None
    }
    return plain, secrets


def _out(sink: Sink) -> SinkOut:
    return SinkOut(
        id=sink.id,
        source_id=sink.source_id,
        kind=sink.kind,
        name=sink.name,
        config=dict(sink.config),
        status=sink.status,
        status_detail=sink.status_detail,
        failures=sink.failures,
        delivered=sink.delivered,
        after_seq=sink.after_seq,
        next_attempt_at=sink.next_attempt_at,
        created_at=sink.created_at,
    )


@router.get("/api/sinks/kinds", response_model=list[SinkKindOut])
async def sink_kinds(user: CurrentUser) -> list[SinkKindOut]:
    """What a sink can be, with the JSON schema of its settings (for the UI's form)."""
    return [
        SinkKindOut(name=k.name, label=k.label, config_schema=k.Config.model_json_schema())
        for k in KINDS.values()
    ]


@router.get("/api/sources/{source_id}/sinks", response_model=list[SinkOut])
async def list_sinks(source: OwnedSource, session: SessionDep) -> list[SinkOut]:
    rows = await session.execute(select(Sink).where(Sink.source_id == source.id).order_by(Sink.id))
    return [_out(s) for s in rows.scalars()]


@router.post(
    "/api/sources/{source_id}/sinks", status_code=status.HTTP_201_CREATED, response_model=SinkOut
)
async def create_sink(
    source_id: IdPath,
    body: NewSink,
    user: CurrentUser,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> SinkOut:
    source = await owned_source(session, source_id, user)  # after the body is validated
    kind = _kind(body.kind)
    plain, secrets = _validated(services, kind, body.config)
    after = 0
    if not body.from_start:
        after = int(
            await session.scalar(
                select(func.coalesce(func.max(Video.published_seq), 0)).where(
                    Video.source_id == source.id
                )
            )
            or 0
        )
    async with services.db.transaction() as tx:
        sink = Sink(
            source_id=source.id,
            kind=kind.name,
            name=body.name.strip(),
            config=plain,
            after_seq=after,
            status=SinkStatus.OK,
            failures=0,
            delivered=0,
        )
        tx.add(sink)
        await tx.flush()  # the id the secrets are bound to
        if secrets:
            sink.secrets = services.connections.vault.encrypt(vault_id(sink.id), secrets)
        audit.record(
            tx,
            Action.SINK_CREATED,
            user_id=user.id,
            target_type="sink",
            target_id=sink.id,
            ip=client_ip(request),
            source_id=source.id,
            kind=kind.name,
        )
    _nudge(request)
    return _out(sink)


@router.patch("/api/sinks/{sink_id}", response_model=SinkOut)
async def change_sink(
    sink_id: IdPath,
    body: SinkChange,
    user: CurrentUser,
    request: Request,
    services: ServicesDep,
    session: SessionDep,
) -> SinkOut:
    sink = await owned_sink(session, sink_id, user)
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name.strip()
    if body.config is not None:
        plain, secrets = _validated(services, _kind(sink.kind), body.config)
        values["config"] = plain
        values["secrets"] = (
            services.connections.vault.encrypt(vault_id(sink.id), secrets) if secrets else None
        )
    if body.enabled is True or (body.config is not None and body.enabled is not False):
        # Started again (or set right): tried at once, its count of failures cleared.
        values.update(status=SinkStatus.OK, status_detail=None, failures=0, next_attempt_at=None)
    elif body.enabled is False:
        values.update(status=SinkStatus.DISABLED, status_detail="stopped by its owner")
    async with services.db.transaction() as tx:
        fresh = await tx.get(Sink, sink.id)
        assert fresh is not None
        for name, value in values.items():
            setattr(fresh, name, value)
        audit.record(
            tx,
            Action.SINK_CHANGED,
            user_id=user.id,
            target_type="sink",
            target_id=sink.id,
            ip=client_ip(request),
            fields=sorted(body.model_dump(exclude_none=True)),
        )
    _nudge(request)
    return _out(fresh)


@router.delete("/api/sinks/{sink_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_sink(
    sink: OwnedSink, user: CurrentUser, request: Request, services: ServicesDep
) -> None:
    async with services.db.transaction() as tx:
        fresh = await tx.get(Sink, sink.id)
        if fresh is not None:
            await tx.delete(fresh)
        audit.record(
            tx,
            Action.SINK_REMOVED,
            user_id=user.id,
            target_type="sink",
            target_id=sink.id,
            ip=client_ip(request),
        )


@router.get("/api/sinks/{sink_id}/deliveries", response_model=DeliveryPage)
async def sink_deliveries(
    sink: OwnedSink,
    session: SessionDep,
    cursor: CursorQuery = None,
    limit: int = Query(default=50, ge=1, le=500),
) -> DeliveryPage:
    """The delivery log, newest first: each attempt, delivered or why not."""
    query = select(Delivery).where(Delivery.sink_id == sink.id)
    if (before := cursor_id(cursor)) is not None:
        query = query.where(Delivery.id < before)
    rows = list(
        (await session.execute(query.order_by(Delivery.id.desc()).limit(limit + 1))).scalars()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(
        items=[
            DeliveryOut(id=d.id, video_id=d.video_id, seq=d.seq, ok=d.ok, detail=d.detail, at=d.at)
            for d in rows
        ],
        next_cursor=str(rows[-1].id) if more and rows else None,
    )


def _nudge(request: Request) -> None:
    executor = request.app.state.executor
    if executor is not None:
        executor.published.set()
