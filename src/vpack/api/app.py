"""The FastAPI application; runs the local executor beside the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vpack import __version__
from vpack.api.routes import health
from vpack.services import build, prepare
from vpack.settings import Settings, get_settings
from vpack.sync.executors import LocalExecutor


def create_app(settings: Settings | None = None, *, run_worker: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(prepare, settings)
        services = build(settings)
        app.state.services = services
        stop = asyncio.Event()
        app.state.executor_task = None
        if run_worker:
            executor = LocalExecutor(services.engine, settings.scheduler_tick_seconds)
            app.state.executor_task = asyncio.create_task(executor.run(stop))
        try:
            yield
        finally:
            stop.set()
            if app.state.executor_task is not None:
                await asyncio.gather(app.state.executor_task, return_exceptions=True)
            await services.aclose()

    app = FastAPI(
        title="VPACK Sources",
        version=__version__,
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
    )
    app.include_router(health.router)
    return app
