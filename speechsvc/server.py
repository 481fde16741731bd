"""Run the service: load the engine once, serve HTTP/WebSocket (and gRPC when enabled), and shut down in
stages: stop accepting, finish open utterances of live calls within the grace period, close transports,
stop the workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from speechsvc.analysis.intent import reload_on_sighup
from speechsvc.app import create_app
from speechsvc.config import Settings
from speechsvc.runtime.engine import Engine

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn, with our stages around its shutdown. They run here, not after ``serve()`` returns, because
    uvicorn re-raises the captured SIGTERM once serving ends."""

    def __init__(self, config: uvicorn.Config, engine: Engine, grace_s: float) -> None:
        super().__init__(config)
        self._engine = engine
        self._grace_s = grace_s
        self.stops: list[Callable[[], Awaitable[None]]] = []

    async def shutdown(self, sockets: Any = None) -> None:
        await self._engine.drain(self._grace_s)  # refuse new calls, finish open utterances
        for stop in self.stops:  # gRPC (with its grace period), AudioSocket listeners, webhook
            await stop()
        await super().shutdown(sockets)  # close HTTP/WebSocket connections, lifespan shutdown
        await self._engine.stop()
        log.info("stopped")


async def start_adapters(engine: Engine, settings: Settings) -> list[Callable[[], Awaitable[None]]]:
    """AudioSocket listeners and the webhook poster; returns their stop functions."""
    from speechsvc.transports.audiosocket import AudioSocketServer
    from speechsvc.transports.webhook import WebhookPoster

    stops: list[Callable[[], Awaitable[None]]] = []
    for port, leg in ((settings.audiosocket_port, "customer"), (settings.audiosocket_agent_port, "agent")):
        if port >= 0:
            server = AudioSocketServer(engine, leg, settings.default_language)  # type: ignore[arg-type]
            await server.start(settings.host, port)
            stops.append(server.stop)
    if settings.webhook_url:
        poster = WebhookPoster(engine.bus, settings.webhook_url, settings.webhook_retries, settings.webhook_timeout_s)
        poster.start()
        stops.append(poster.stop)
    return stops


async def serve(settings: Settings) -> None:
    engine = await asyncio.to_thread(Engine.load, settings)
    await engine.start()
    app = create_app(settings, engine)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=settings.max_message_bytes + 1024,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 1,
    )
    http = _Server(config, engine, settings.shutdown_grace_s)
    if settings.grpc_port >= 0:
        from speechsvc.transports.grpc import start_grpc_server

        grpc_server = await start_grpc_server(engine, settings)
        http.stops.append(lambda: grpc_server.stop(settings.shutdown_grace_s))
    http.stops.extend(await start_adapters(engine, settings))
    reload_on_sighup(engine.stages)  # kill -HUP: reload the intent model (SPEECHSVC_INTENT_MODEL), no call dropped
    await http.serve()
