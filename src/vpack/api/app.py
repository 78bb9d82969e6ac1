"""The FastAPI application; runs the local executor beside the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vpack import __version__
from vpack.api import errors
from vpack.api.edge import BodyLimit, InputGuard, Unforeseen
from vpack.api.routes import (
    audit,
    auth,
    cloud,
    connections,
    events,
    health,
    imports,
    oauth,
    providers,
    sinks,
    sources,
    users,
    videos,
)
from vpack.api.web import mount_web
from vpack.security.auth import ensure_session_key
from vpack.security.throttle import Throttle
from vpack.services import build, prepare
from vpack.settings import Settings, get_settings
from vpack.sync.executors import LocalExecutor
from vpack.sync.progress import LiveProgress


def create_app(settings: Settings | None = None, *, run_worker: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(prepare, settings)
        await asyncio.to_thread(ensure_session_key, settings)
        services = build(settings)
        app.state.services = services
        app.state.throttle = Throttle(settings)
        app.state.progress = LiveProgress()
        app.state.executor = None
        app.state.executor_task = None
        stop = asyncio.Event()
        if run_worker:
            app.state.executor = LocalExecutor(
                services.engine,
                settings.scheduler_tick_seconds,
                progress=app.state.progress,
                deliverer=services.deliverer,
                retention=services.retention,
                retention_every=settings.retention_check_seconds,
            )
            app.state.executor_task = asyncio.create_task(app.state.executor.run(stop))
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
        redoc_url=None,
    )
    errors.install(app)
    routers = (
        health,
        auth,
        users,
        providers,
        connections,
        oauth,
        cloud,
        sources,
        sinks,
        videos,
        audit,
        events,
        imports,
    )
    for module in routers:
        app.include_router(module.router)
    mount_web(app)  # last: the web UI at `/` must never shadow an API route
    app.add_middleware(Unforeseen)
    app.add_middleware(InputGuard)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # outermost: first
    return app
