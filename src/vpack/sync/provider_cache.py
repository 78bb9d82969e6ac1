"""One provider per connection for as long as the engine lives, however it is reached.

A provider holds an HTTP client, a pacer and refreshed tokens: building one per
scan or per video would lose all three."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from vpack.connections import ConnectionManager
from vpack.db.models import Connection, Source
from vpack.db.session import Database
from vpack.providers.base import Provider


class ProviderCache:
    def __init__(self, db: Database, connections: ConnectionManager) -> None:
        self.db = db
        self.connections = connections
        self._providers: dict[int, Provider] = {}

    def get(self, connection: Connection) -> Provider:
        """The connection's provider, built on first use (secrets decrypted then)."""
        cached = self._providers.get(connection.id)
        if cached is None:
            cached = self._providers[connection.id] = self.connections.build(connection)
        return cached

    def built(self, connection_id: int) -> Provider | None:
        """The provider if one was built already; None costs no database read."""
        return self._providers.get(connection_id)

    async def for_source(self, source_id: int) -> tuple[int, Provider]:
        """(connection id, provider) of a source's connection."""
        async with self.db.session() as session:
            source = await source_with_connection(session, source_id)
        return source.connection_id, self.get(source.connection)

    async def aclose(self) -> None:
        providers, self._providers = self._providers, {}
        for provider in providers.values():
            await provider.aclose()


async def source_with_connection(session: AsyncSession, source_id: int) -> Source:
    """The source with its connection loaded; LookupError if there is none."""
    source = (
        await session.execute(
            select(Source).options(selectinload(Source.connection)).where(Source.id == source_id)
        )
    ).scalar_one_or_none()
    if source is None:
        raise LookupError(f"no source with id {source_id}")
    return source
