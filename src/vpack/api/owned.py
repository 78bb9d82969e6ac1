"""What the signed-in user may see: their own rows (an administrator: everyone's).

A connection, source or video that is not theirs answers 404, never 403, so ids reveal
nothing. Routes take one named in the path as `OwnedConnection`, `OwnedSource` or
`OwnedVideo`; an id that comes in a body or query goes through the function of the
same name, the one those dependencies call.

A route that validates more than the id (a body, query parameters) calls the function
itself, first thing: FastAPI runs dependencies before it validates the rest, so a
dependency would answer 404 where the API answers 422 for a malformed request."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, HTTPException
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpack.api.deps import CurrentUser, IdPath, SessionDep
from vpack.db.models import Connection, Role, Sink, Source, User, Video

SelectT = TypeVar("SelectT")  # a Select of any shape


def owned(query: SelectT, owner_column: Any, user: User) -> SelectT:
    """Scope a query to the user's own rows; an administrator sees everyone's."""
    if user.role == Role.ADMIN:
        return query
    return cast(SelectT, cast(Select[Any], query).where(owner_column == user.id))


def can_see(owner_id: int | None, user: User) -> bool:
    return user.role == Role.ADMIN or owner_id == user.id


async def owned_connection(
    session: AsyncSession, connection_id: int, user: User, *, provider: str | None = None
) -> Connection:
    """The connection if this user may see it (and, given `provider`, is of that provider)."""
    connection = await session.get(Connection, connection_id)
    if connection is None or not can_see(connection.owner_id, user):
        raise HTTPException(404, f"no connection with id {connection_id}")
    if provider is not None and connection.provider != provider:
        raise HTTPException(404, f"connection {connection_id} is not a {provider} connection")
    return connection


async def owned_source(session: AsyncSession, source_id: int, user: User) -> Source:
    source = await session.get(Source, source_id)
    if source is None or not can_see(source.owner_id, user):
        raise HTTPException(404, f"no source with id {source_id}")
    return source


async def owned_video(session: AsyncSession, video_id: int, user: User) -> Video:
    found = (
        await session.execute(
            select(Video, Source.owner_id).join(Source).where(Video.id == video_id)
        )
    ).one_or_none()
    if found is None or not can_see(found[1], user):
        raise HTTPException(404, f"no video with id {video_id}")
    return found[0]


async def owned_sink(session: AsyncSession, sink_id: int, user: User) -> Sink:
    found = (
        await session.execute(select(Sink, Source.owner_id).join(Source).where(Sink.id == sink_id))
    ).one_or_none()
    if found is None or not can_see(found[1], user):
        raise HTTPException(404, f"no sink with id {sink_id}")
    return found[0]


# The path parameters keep their names: they are the API's (and its OpenAPI schema's).
async def get_owned_connection(
    connection_id: IdPath, user: CurrentUser, session: SessionDep
) -> Connection:
    return await owned_connection(session, connection_id, user)


async def get_owned_source(source_id: IdPath, user: CurrentUser, session: SessionDep) -> Source:
    return await owned_source(session, source_id, user)


async def get_owned_video(video_id: IdPath, user: CurrentUser, session: SessionDep) -> Video:
    return await owned_video(session, video_id, user)


OwnedConnection = Annotated[Connection, Depends(get_owned_connection)]
OwnedSource = Annotated[Source, Depends(get_owned_source)]


async def get_owned_sink(sink_id: IdPath, user: CurrentUser, session: SessionDep) -> Sink:
    return await owned_sink(session, sink_id, user)


OwnedVideo = Annotated[Video, Depends(get_owned_video)]
OwnedSink = Annotated[Sink, Depends(get_owned_sink)]
