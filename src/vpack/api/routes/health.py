"""Liveness and readiness: is the service up and can it reach its database?"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from vpack import __version__

router = APIRouter(tags=["health"])


@router.get("/api/health")
async def health(request: Request) -> JSONResponse:
    services = request.app.state.services
    body: dict[str, Any] = {"status": "ok", "version": __version__, "database": "ok"}
    try:
        async with services.db.session() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        body.update(status="degraded", database=f"unreachable: {type(exc).__name__}")
        return JSONResponse(body, status_code=503)
    executor = request.app.state.executor_task
    body["worker"] = "running" if executor is not None and not executor.done() else "stopped"
    disk = await asyncio.to_thread(services.engine.disk.check)
    body["disk"] = {"free_bytes": disk.free, "min_free_bytes": disk.floor, "ok": disk.ok}
    if not disk.ok:
        body["status"] = "degraded"
        body["disk"]["detail"] = disk.describe()
    return JSONResponse(body)
