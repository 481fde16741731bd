"""Support for the call-platform conformance tests (``tests/transports/test_platforms_*.py``): the real app on a
free port with the fake engine (so a protocol check costs seconds, not a model load), its AudioSocket listeners, event
subscriptions, and audio helpers (tones as telephone audio, real 8 kHz clips from the eval set)."""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import websockets

from speechsvc.speech.audio import decode_file, resample
from tests.support.datasets import eval_path
from tests.support.fakes import fake_engine, fast_settings
from tests.support.net import free_port

CUSTOMER_ZH = ("asr_zh", "telephone_sim_8k", "aishellsample_BAC009S0150W0001.wav")  # 设定二十九度, 2.4 s
AGENT_EN = ("asr_en", "orig_8k", "asterisk_agent-newlocation.wav")  # "Please enter a new extension...", 3.3 s


class FakeServer:
    """The app (uvicorn) with the fake engine, in a thread with its own loop; optional AudioSocket listeners
    (``audiosocket=True``: customer; ``agent_port=True``: and agent)."""

    def __init__(self, *, audiosocket: bool = False, agent_port: bool = False, texts: dict[int, str] | None = None,
                 **overrides: Any) -> None:
        import uvicorn

        from speechsvc.app import create_app

        self.port = free_port()
        overrides.setdefault("jobs_dir", Path(tempfile.mkdtemp(prefix="speechsvc-jobs-")))
        self.settings = fast_settings(port=self.port, **overrides)
        self.engine = fake_engine(self.settings, texts=texts)
        self.app = create_app(self.settings, self.engine)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)
        self.listeners: dict[str, Any] = {}
        self._audiosocket = audiosocket or agent_port
        self._agent_port = agent_port

    def ws(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        self.run(self.engine.start())
        if self._audiosocket:
            from speechsvc.transports.audiosocket import AudioSocketServer

            legs = ("customer", "agent") if self._agent_port else ("customer",)
            for leg in legs:
                server = AudioSocketServer(self.engine, leg, self.settings.default_language)  # type: ignore[arg-type]
                self.run(server.start("127.0.0.1", 0))
                self.listeners[leg] = server
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.listeners.values():
            self.run(server.stop())
        self.run(self.engine.stop())
        self.server.should_exit = True
        self.thread.join(timeout=30)


@contextmanager
def fake_server(**kwargs: Any) -> Iterator[FakeServer]:
    with FakeServer(**kwargs) as server:
        yield server


async def subscribe(server: FakeServer, call_id: str) -> websockets.ClientConnection:
    ws = await websockets.connect(server.ws(f"/v1/calls/{call_id}/events"))
    await asyncio.sleep(0.05)  # the subscription is registered once the handler runs
    return ws


async def until_ended(ws: websockets.ClientConnection, timeout: float = 30) -> list[dict[str, Any]]:
    """Events of a subscription up to and including ``ended``."""
    events: list[dict[str, Any]] = []

    async def read() -> None:
        async for raw in ws:
            events.append(json.loads(raw))
            if events[-1]["type"] == "ended":
                return

    try:
        await asyncio.wait_for(read(), timeout)
    finally:
        await ws.close()
    return events


def tone(hz: float, seconds: float, rate: int = 8000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def quiet(seconds: float, rate: int = 8000) -> np.ndarray:
    return np.zeros(int(rate * seconds), np.int16)


def write_wav(path: Path, pcm: np.ndarray | list[np.ndarray], rate: int = 8000) -> Path:
    """16-bit PCM WAV, mono (n,) or stereo (n, 2); a list is joined in time."""
    if isinstance(pcm, list):
        pcm = np.concatenate(pcm)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def pcm8k(*parts: str, pad_s: float = 1.0) -> np.ndarray:
    """A clip of the eval set as 8 kHz int16 mono, with ``pad_s`` of silence after it (skips when absent)."""
    audio, rate = decode_file(eval_path(*parts))
    x = resample(audio[0], rate, 8000)
    x = np.concatenate([x, np.zeros(int(8000 * pad_s), np.float32)])
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def finals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "transcript.final"]
