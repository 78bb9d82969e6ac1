"""Server-sent events: live sync progress of the user's own sources."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from vpack.api.deps import CurrentUser, ServicesDep
from vpack.api.owned import owned
from vpack.db.models import Source

router = APIRouter(prefix="/api", tags=["events"])
_KEEPALIVE_SECONDS = 15.0


@router.get("/events", response_class=StreamingResponse)
async def events(request: Request, user: CurrentUser, services: ServicesDep) -> StreamingResponse:
    progress = request.app.state.progress

    async def visible() -> set[int]:
        async with services.db.session() as session:
            query = owned(select(Source.id), Source.owner_id, user)
            return set((await session.execute(query)).scalars())

    async def stream() -> AsyncIterator[str]:
        queue = progress.listen()
        mine = await visible()
        try:
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), _KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if event["source_id"] not in mine:
                    mine = await visible()  # a source added since the stream opened
                    if event["source_id"] not in mine:
                        continue
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
        finally:
            progress.unlisten(queue)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
