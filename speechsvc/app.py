"""The FastAPI application: lifespan (load models once, warm up, drain), health, readiness, metrics,
and the routers of the other HTTP/WebSocket transports.

``/healthz`` and ``/readyz`` are public (probes); every other route is behind the access gate
(:mod:`speechsvc.security.access`); ``/metrics`` needs the ``admin`` scope."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from speechsvc import __version__
from speechsvc.batch.jobs import JobRunner, JobStore
from speechsvc.config import Settings
from speechsvc.console.routes import router as console_router
from speechsvc.runtime.engine import Engine
from speechsvc.security.access import AccessGate, Verifier
from speechsvc.security.asgi import PlatformGuard, require
from speechsvc.security.principal import Principal
from speechsvc.transports import audio_fork, audiohook, calls, openai_api, rest_jobs, subscribe, twilio, ws

log = logging.getLogger(__name__)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` may be passed in (tests, or to share it with gRPC); otherwise the
    lifespan loads one from ``settings``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        eng: Engine = engine if engine is not None else await asyncio.to_thread(Engine.load, settings)
        app.state.engine = eng
        app.state.guard = eng.guard
        if engine is None:
            await eng.start()
        store = JobStore(settings.jobs_path, settings.max_job_attempts)
        runner = JobRunner(eng, store, settings.max_jobs, settings.batch_concurrency, settings.keep_audio)
        runner.start()
        app.state.jobs = runner
        try:
            yield
        finally:
            await runner.stop()
            store.close()
            if engine is None:  # otherwise the caller owns the engine's lifecycle
                await eng.drain(settings.shutdown_grace_s)
                await eng.stop()

    # No Swagger UI or ReDoc pages: they load their scripts from a CDN (offline sites, the console's CSP); the
    # OpenAPI document is public.
    # Every HTTP body is capped at MAX_UPLOAD_BYTES while it arrives (413): no route can be made to spool more.
    app = FastAPI(title="speechsvc", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  max_body_size=settings.max_upload_bytes)
    if engine is not None:
        app.state.engine = engine
        app.state.guard = engine.guard
    # The call-platform adapters' upgrades are authenticated, bounded and timed out in front of their routers; a
    # platform with a signature scheme of its own (Twilio) registers its verifier here, by path.
    verifiers: dict[str, Verifier] = {}
    if settings.twilio_auth_token is not None:
        verifiers["/v1/twilio"] = twilio.signature_verifier(settings)
    verifiers["/v1/audiohook"] = audiohook.guard_verifier(settings)
    app.state.platform_verifiers = verifiers
    app.add_middleware(PlatformGuard, guard=lambda: app.state.guard, start_timeout_s=settings.platform_start_timeout_s)
    # One lock for every door: every route below is authenticated by its declared access (admin when it declares
    # none) unless it is in security.access.PUBLIC_ROUTES. Added last, so it runs first.
    app.add_middleware(AccessGate, routes=lambda: app.router.routes, guard=lambda: app.state.guard,
                       verifiers=verifiers, recheck_s=settings.auth_recheck_s)
    routers = (ws, twilio, audio_fork, audiohook, subscribe, rest_jobs, calls, openai_api)
    for router in (*(module.router for module in routers), console_router):
        app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        eng: Engine | None = getattr(request.app.state, "engine", None)
        if eng is None or not eng.ready:
            return JSONResponse({"status": "loading"}, status_code=503)
        body: dict[str, Any] = {
            "status": "ready",
            "active_calls": eng.active_calls,
            "max_calls": eng.settings.max_calls,
            # What is loaded, never where from (paths tell an anonymous prober about the host).
            "models": [{k: v for k, v in m.__dict__.items() if k != "path"} for m in eng.models],
        }
        return JSONResponse(body)

    @app.get("/metrics")
    async def metrics(request: Request, _: Principal = Depends(require("admin", "metrics"))) -> Response:  # noqa: B008
        eng: Engine = request.app.state.engine
        return Response(generate_latest(eng.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
