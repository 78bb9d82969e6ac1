"""Connections: an account, key pair or device, owned by one user."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import select

from vpack.api.actions import browse_connection
from vpack.api.deps import CurrentUser, IdPath, ServicesDep, SessionDep, client_ip
from vpack.api.owned import OwnedConnection, owned, owned_connection
from vpack.api.schemas import BrowseOut, ConnectionOut, NewConnection
from vpack.db.models import Connection, ConnectionStatus, Source
from vpack.providers.base import AuthKind
from vpack.providers.errors import AuthExpired, BadConfig
from vpack.providers.registry import get_provider_class
from vpack.security import audit
from vpack.security.audit import Action

router = APIRouter(prefix="/api/connections", tags=["connections"])


def connection_out(c: Connection) -> ConnectionOut:
    return ConnectionOut(
        id=c.id,
        provider=c.provider,
        name=c.name,
        account=c.account,
        status=c.status,
        status_detail=c.status_detail,
        config=dict(c.config),
        created_at=c.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConnectionOut)
async def create_connection(
    body: NewConnection, user: CurrentUser, request: Request, services: ServicesDep
) -> ConnectionOut:
    """Key and device connections (and local folders): checked with the provider first."""
    cls = get_provider_class(body.provider)
    if cls.auth == AuthKind.OAUTH2:
        raise BadConfig(
            f"{cls.label} connects through its sign-in page: POST /api/cloud/{cls.name}/auth"
        )
    connection, identity = await services.connections.create(
        provider=body.provider,
        name=body.name,
        config=body.config,
        owner_id=user.id,
        from_api=True,
    )
    async with services.db.transaction() as session:
        audit.record(
            session,
            Action.CONNECTION_CREATED,
            user_id=user.id,
            target_type="connection",
            target_id=connection.id,
            ip=client_ip(request),
            provider=connection.provider,
            account=identity.label,
        )
    return connection_out(connection)


@router.get("", response_model=list[ConnectionOut])
async def list_connections(user: CurrentUser, session: SessionDep) -> list[ConnectionOut]:
    query = owned(select(Connection).order_by(Connection.id), Connection.owner_id, user)
    return [connection_out(c) for c in (await session.execute(query)).scalars()]


@router.get("/{connection_id}", response_model=ConnectionOut)
async def get_connection(connection: OwnedConnection) -> ConnectionOut:
    return connection_out(connection)


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_connection(
    connection: OwnedConnection, user: CurrentUser, request: Request, services: ServicesDep
) -> None:
    """Remove a connection and its sources; downloaded videos stay on disk."""
    async with services.db.transaction() as tx:
        sources = (
            (await tx.execute(select(Source.id).where(Source.connection_id == connection.id)))
            .scalars()
            .all()
        )
        await tx.delete(await tx.get(Connection, connection.id))
        audit.record(
            tx,
            Action.CONNECTION_REMOVED,
            user_id=user.id,
            target_type="connection",
            target_id=connection.id,
            ip=client_ip(request),
            provider=connection.provider,
            sources_removed=len(sources),
        )


@router.post("/{connection_id}/check", response_model=ConnectionOut)
async def check_connection(connection: OwnedConnection, services: ServicesDep) -> ConnectionOut:
    """Test the connection now; its status shows the provider's own message on failure."""
    provider = services.connections.build(connection)
    detail: str | None
    try:
        identity = await provider.check()
    except AuthExpired as exc:
        await services.engine.mark_reauth(connection.id, str(exc))
        status_value, detail, account = (
            ConnectionStatus.REAUTH_REQUIRED,
            str(exc),
            connection.account,
        )
    except BadConfig as exc:
        status_value, detail, account = ConnectionStatus.ERROR, str(exc), connection.account
    else:
        status_value, detail, account = ConnectionStatus.OK, None, identity.label
    finally:
        await provider.aclose()
    async with services.db.transaction() as tx:
        fresh = await tx.get(Connection, connection.id)
        assert fresh is not None
        fresh.status, fresh.status_detail, fresh.account = status_value, detail, account
    return connection_out(fresh)


@router.get("/{connection_id}/browse", response_model=BrowseOut)
async def browse(
    connection_id: IdPath,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    node: str | None = Query(default=None, max_length=4096),
    page: str | None = Query(default=None, max_length=4096),
) -> BrowseOut:
    """Children of `node` (the top when absent) for the lazy tree, one page at a time."""
    # Not OwnedConnection: after `node` and `page` are validated (see vpack.api.owned).
    connection = await owned_connection(session, connection_id, user)
    return await browse_connection(services, connection, node, page)
