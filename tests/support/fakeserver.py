"""A real server on free loopback ports running the fake engine (fake ASR + energy VAD): the production app,
uvicorn configuration, shutdown stages, gRPC server and AudioSocket listener, with no model loaded. For the
fast-tier security, fault and fuzz tests."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from speechsvc import server as server_module
from speechsvc.app import create_app
from speechsvc.config import Settings
from tests.support.fakes import fake_engine, fast_settings
from tests.support.net import free_port


def _config(app: Any, settings: Settings) -> Any:
    import uvicorn

    make = getattr(server_module, "uvicorn_config", None)
    if make is not None:
        return make(app, settings, log_level="warning")
    # Before the security work, serve() built this configuration inline.
    return uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, log_level="warning",
                          ws_max_size=settings.max_message_bytes + 1024,
                          timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 1)


class FakeServer:
    """``with FakeServer(**settings) as s:`` serves HTTP/WS on ``s.port`` (and gRPC, AudioSocket when asked)."""

    def __init__(self, grpc: bool = False, audiosocket: bool = False, asr_delay_s: float = 0.0,
                 **overrides: object) -> None:
        home = Path(tempfile.mkdtemp(prefix="speechsvc-sec-"))
        values: dict[str, object] = {"home": home, "port": free_port(), "host": "127.0.0.1",
                                     "shutdown_grace_s": 5.0, "audit_log": None}  # home/audit.log
        values.update(overrides)
        self.settings = fast_settings(**values)
        self.home = home
        self.port = self.settings.port
        self.engine = fake_engine(self.settings)
        if asr_delay_s:  # a model as slow as a real one, so races with its results show
            recognizer = self.engine.recognizer
            transcribe = recognizer.transcribe

            def slow(requests: Any) -> Any:
                time.sleep(asr_delay_s)
                return transcribe(requests)

            recognizer.transcribe = slow  # type: ignore[method-assign]
        self.app = create_app(self.settings, self.engine)
        self.loop = asyncio.new_event_loop()
        self.with_grpc = grpc
        self.with_audiosocket = audiosocket
        self.grpc: Any = None
        self.audiosocket: Any = None
        self.http: Any = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc.port}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        self.run(self.engine.start())
        self.http = server_module._Server(_config(self.app, self.settings), self.engine,
                                          self.settings.shutdown_grace_s)
        self.serving = asyncio.run_coroutine_threadsafe(self.http.serve(), self.loop)
        deadline = time.time() + 30
        while not self.http.started:
            if time.time() > deadline or self.serving.done():
                raise RuntimeError(f"server did not start: {self.serving.exception() if self.serving.done() else ''}")
            time.sleep(0.02)
        if self.with_grpc:
            from speechsvc.transports.grpc_server import start_grpc_server

            self.grpc = self.run(start_grpc_server(self.engine, self.settings.model_copy(update={"grpc_port": 0})))
            grpc_server = self.grpc
            self.http.stops.append(lambda: grpc_server.stop(1.0))
        if self.with_audiosocket:
            from speechsvc.transports.audiosocket import AudioSocketServer

            make = getattr(server_module, "audiosocket_server", None)  # the guarded listener serve() starts
            self.audiosocket = (make(self.engine, "customer", "zh") if make is not None
                                else AudioSocketServer(self.engine, "customer", "zh"))
            self.run(self.audiosocket.start("127.0.0.1", 0))
            self.http.stops.append(self.audiosocket.stop)
        return self

    def shutdown(self, timeout: float = 60) -> None:
        """What SIGTERM does: uvicorn's exit flag, then its shutdown (our drain stages)."""
        if self.serving.done():
            return
        self.http.should_exit = True
        self.serving.result(timeout)

    def __exit__(self, *exc: object) -> None:
        try:
            self.shutdown()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
