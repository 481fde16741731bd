"""Run the service: load the engine once, serve HTTP/WebSocket (and gRPC when enabled), and shut down in
stages: stop accepting, finish open utterances of live calls within the grace period, close transports,
stop the workers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn

from speechsvc.config import Settings
from speechsvc.engine import Engine
from speechsvc.transports.http import create_app

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn, with our drain before it closes connections."""

    def __init__(self, config: uvicorn.Config, engine: Engine, grace_s: float) -> None:
        super().__init__(config)
        self._engine = engine
        self._grace_s = grace_s

    async def shutdown(self, sockets: Any = None) -> None:
        await self._engine.drain(self._grace_s)
        await super().shutdown(sockets)


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
    grpc_server = None
    if settings.grpc_port >= 0:
        from speechsvc.transports.grpc import start_grpc_server

        grpc_server = await start_grpc_server(engine, settings)
    try:
        await http.serve()
    finally:
        if grpc_server is not None:
            await grpc_server.stop(settings.shutdown_grace_s)
        await engine.stop()
        log.info("stopped")
