"""Run the service: check the security posture, load the engine once, serve HTTP/WebSocket (TLS when
configured) and gRPC, and shut down in stages: stop accepting, finish open utterances of live calls within
the grace period, deliver what subscribers and webhooks are owed, close transports, stop the workers."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn

from speechsvc.analysis import reload_stages
from speechsvc.analysis.base import Stage
from speechsvc.app import create_app
from speechsvc.config import Settings
from speechsvc.errors import Forbidden, Overloaded, SpeechsvcError
from speechsvc.runtime.engine import Engine
from speechsvc.security import logguard
from speechsvc.security.auth import Authenticator

log = logging.getLogger(__name__)

CLIENT_CERT = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class _Server(uvicorn.Server):
    """uvicorn, with our stages around its shutdown. They run here, not after ``serve()`` returns, because
    uvicorn re-raises the captured SIGTERM once serving ends."""

    def __init__(self, config: uvicorn.Config, engine: Engine, grace_s: float) -> None:
        super().__init__(config)
        self._engine = engine
        self._grace_s = grace_s
        self.stops: list[Callable[[], Awaitable[None]]] = []

    async def shutdown(self, sockets: Any = None) -> None:
        await drain(self._engine, self._grace_s, self.stops)
        await super().shutdown(sockets)  # close HTTP/WebSocket connections, lifespan shutdown
        await self._engine.stop()
        log.info("stopped")


async def drain(engine: Engine, grace_s: float, stops: list[Callable[[], Awaitable[None]]]) -> None:
    """Shutdown stages before the transports close: refuse new calls and finish open utterances (every
    transport's calls, platform adapters included), then let subscribers and webhooks receive those finals and
    ``ended`` events, then stop gRPC (with its grace period), the AudioSocket listeners and the webhooks."""
    await engine.drain(grace_s)
    await engine.bus.close(max(1.0, grace_s))
    for stop in stops:
        await stop()


def ws_max_size(settings: Settings) -> int:
    """The WebSocket layer's own frame bound: well above ``max_message_bytes``, so a message over the limit
    reaches the transport, which answers in the protocol (finals of what was heard, then 1009), while a
    message beyond this bound is still cut by the protocol layer without being buffered."""
    return 4 * settings.max_message_bytes + (64 << 10)


def uvicorn_config(app: Any, settings: Settings, **extra: Any) -> uvicorn.Config:
    """uvicorn's configuration for the settings: address, frame bound, graceful shutdown, TLS (and client
    certificates: ``tls_client_cert`` none | optional | required, verified against ``tls_client_ca``)."""
    tls: dict[str, Any] = {}
    if settings.tls_cert and settings.tls_key:
        tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        if settings.tls_client_ca is not None:
            tls["ssl_ca_certs"] = str(settings.tls_client_ca)
        tls["ssl_cert_reqs"] = CLIENT_CERT[settings.tls_client_cert]
    elif settings.tls_cert or settings.tls_key:
        raise ValueError("set both SPEECHSVC_TLS_CERT and SPEECHSVC_TLS_KEY for TLS")
    if settings.tls_client_cert != "none" and settings.tls_client_ca is None:
        raise ValueError("SPEECHSVC_TLS_CLIENT_CERT needs SPEECHSVC_TLS_CLIENT_CA")
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        ws_max_size=ws_max_size(settings),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 1,
        **tls,
        **extra,
    )


class IdleTimeoutReader:
    """A stream reader whose reads fail as a cut stream (``IncompleteReadError``) after ``idle_s`` without data:
    a half-open TCP peer (AudioSocket sends a frame every 20 ms while a call lives) frees its call slot, and what
    was heard is finished like any cut stream."""

    def __init__(self, reader: asyncio.StreamReader, idle_s: float) -> None:
        self._reader = reader
        self.idle_s = idle_s

    async def readexactly(self, n: int) -> bytes:
        try:
            return await asyncio.wait_for(self._reader.readexactly(n), self.idle_s)
        except TimeoutError:
            log.warning("AudioSocket peer silent for %.0f s; ending its call", self.idle_s)
            raise asyncio.IncompleteReadError(b"", n) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


def audiosocket_server(engine: Engine, leg: str, language: str) -> Any:
    """An AudioSocket listener guarded as its protocol cannot guard itself: only peers in ``audiosocket_allow``
    connect, at most ``max_connections`` at once, their calls belong to ``audiosocket_tenant``, and a silent peer
    is dropped after ``audiosocket_idle_s``."""
    from speechsvc.security.principal import platform_principal, principal_var
    from speechsvc.transports.audiosocket import AudioSocketServer

    settings = engine.settings
    guard = engine.guard

    class GuardedAudioSocketServer(AudioSocketServer):
        async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")
            host = str(peer[0]) if peer else None
            refusal: SpeechsvcError | None = None
            if not guard.audiosocket_sources.allows(host):
                refusal = Forbidden(f"AudioSocket peer {host} is not in SPEECHSVC_AUDIOSOCKET_ALLOW")
                guard.refused(refusal, "audiosocket", host or "")
            elif guard.streams.open >= guard.streams.limit:
                refusal = Overloaded("too many open connections")
                engine.metrics.rejections.labels("stream_connections").inc()
            if refusal is not None:
                log.warning("AudioSocket connection refused: %s", refusal)
                writer.close()
                return
            principal_var.set(platform_principal(settings.audiosocket_tenant, "audiosocket"))
            with guard.streams.hold():
                await super()._handle(IdleTimeoutReader(reader, settings.audiosocket_idle_s),  # type: ignore[arg-type]
                                      writer)

    return GuardedAudioSocketServer(engine, leg, language)  # type: ignore[arg-type]


async def start_adapters(engine: Engine, settings: Settings) -> list[Callable[[], Awaitable[None]]]:
    """AudioSocket listeners and the webhook posters; returns their stop functions.

    Raises:
        Forbidden, ValueError: a webhook URL or secret that is not acceptable.
    """
    from speechsvc.transports.webhook import start_webhooks

    stops: list[Callable[[], Awaitable[None]]] = []
    for port, leg in ((settings.audiosocket_port, "customer"), (settings.audiosocket_agent_port, "agent")):
        if port >= 0:
            server = audiosocket_server(engine, leg, settings.default_language)
            await server.start(settings.host, port)
            stops.append(server.stop)
    stops.extend(await start_webhooks(engine, settings))
    return stops


_reloads: set[asyncio.Task[dict[str, bool]]] = set()  # reloads in progress (a task needs a reference until done)


def reload_on_sighup(stages: Sequence[Stage]) -> None:
    """On SIGHUP, every running stage reloads what it can (:func:`~speechsvc.analysis.reload_stages`) on the
    running event loop; calls go on meanwhile."""

    def reload() -> None:
        task = asyncio.get_running_loop().create_task(reload_stages(stages))
        _reloads.add(task)
        task.add_done_callback(_reloads.discard)

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


async def serve(settings: Settings) -> None:
    """Raises:
    ValueError: an insecure or inconsistent security configuration (before any model is loaded).
    """
    logguard.install()
    Authenticator(settings).startup_check()
    config_check = uvicorn_config(None, settings)  # TLS settings are checked before the models load
    del config_check
    engine = await asyncio.to_thread(Engine.load, settings)
    await engine.start()
    app = create_app(settings, engine)
    http = _Server(uvicorn_config(app, settings), engine, settings.shutdown_grace_s)
    if settings.grpc_port >= 0:
        from speechsvc.transports.grpc_server import start_grpc_server

        grpc_server = await start_grpc_server(engine, settings)
        http.stops.append(lambda: grpc_server.stop(settings.shutdown_grace_s))
    http.stops.extend(await start_adapters(engine, settings))
    scheme = "https/wss" if settings.tls_cert else "http/ws"
    log.info("serving %s on %s:%d", scheme, settings.host, settings.port)
    reload_on_sighup(engine.stages)  # kill -HUP: stages reload their models (SPEECHSVC_INTENT_MODEL), no call dropped
    await http.serve()
