"""The real app with the real models (uvicorn) on a free loopback port, in a thread with its own event loop; for
the model tier (the session-wide ``server`` fixture in tests/conftest.py is one)."""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from pathlib import Path

from tests.support.net import free_port


class LiveServer:
    """The real app (uvicorn) on a free port, in a thread with its own event loop."""

    def __init__(self, grpc: bool = False, **settings: object) -> None:
        import uvicorn

        from speechsvc.app import create_app
        from speechsvc.config import Settings

        self.port = free_port()
        settings.setdefault("jobs_dir", Path(tempfile.mkdtemp(prefix="speechsvc-jobs-")))  # no job leaks between runs
        settings.setdefault("audit_log", str(Path(tempfile.mkdtemp(prefix="speechsvc-audit-")) / "audit.log"))
        settings.setdefault("keys_file", Path(tempfile.mkdtemp(prefix="speechsvc-keys-")) / "keys.json")
        self.settings = Settings(port=self.port, grpc_port=-1, audiosocket_port=-1, **settings)  # type: ignore[arg-type]
        from speechsvc.security.keys import KeyStore

        # A key of the default tenant for clients that must send one (the openai SDK always does, and a credential
        # that is not a key is refused even where anonymous clients are served).
        self.key = KeyStore(self.settings.keys_path).create("default", "stream,subscribe,jobs")[0]
        self.app = create_app(self.settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                ws_max_size=self.settings.max_message_bytes + 1024)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)
        self.with_grpc = grpc
        self.grpc = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/stream"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.app.state.engine

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 120
        while not (self.server.started and getattr(self.app.state, "engine", None) and self.engine.ready):
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not become ready")
            time.sleep(0.05)
        if self.with_grpc:
            from speechsvc.transports.grpc_server import start_grpc_server

            grpc_settings = self.settings.model_copy(update={"grpc_port": 0})
            self.grpc = asyncio.run_coroutine_threadsafe(start_grpc_server(self.engine, grpc_settings),
                                                         self.loop).result(30)
            from speechsvc.transports.audiosocket import AudioSocketServer

            self.audiosocket = AudioSocketServer(self.engine, "customer", "zh")
            asyncio.run_coroutine_threadsafe(self.audiosocket.start("127.0.0.1", 0), self.loop).result(30)
        return self

    @property
    def grpc_target(self) -> str:
        assert self.grpc is not None
        return f"127.0.0.1:{self.grpc.port}"

    def __exit__(self, *exc: object) -> None:
        if self.grpc is not None:
            asyncio.run_coroutine_threadsafe(self.grpc.stop(1.0), self.loop).result(30)
            asyncio.run_coroutine_threadsafe(self.audiosocket.stop(), self.loop).result(30)
        self.server.should_exit = True
        self.thread.join(timeout=30)
