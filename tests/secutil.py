"""Clients for the security, fault and fuzz tests: WebSocket calls and subscriptions with credentials, against
:class:`tests.fakeserver.FakeServer` (fake engine: a tone is speech, its text is its frequency)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import websockets

from tests.fakes import pcm16, silence, tone


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def utterance(hz: float = 440.0, speech_s: float = 1.0, pause_s: float = 0.8) -> bytes:
    """16 kHz PCM16: a tone (one utterance for the fake engine) and a pause that ends it."""
    return pcm16(np.concatenate([tone(hz, speech_s), silence(pause_s)]))


def frames(data: bytes, ms: int = 100, rate: int = 16000) -> list[bytes]:
    size = rate * 2 * ms // 1000
    return [data[i : i + size] for i in range(0, len(data), size)]


async def read_until_closed(ws: websockets.ClientConnection, until: str | None = None,
                            timeout: float = 30) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    async def read() -> None:
        try:
            async for raw in ws:
                events.append(json.loads(raw))
                if until and events[-1].get("type") == until:
                    return
        except websockets.ConnectionClosed:
            pass

    await asyncio.wait_for(read(), timeout)
    return events


async def ws_call(url: str, audio: bytes, key: str | None = None, call_id: str | None = None,
                  stop: bool = True, **start: Any) -> tuple[list[dict[str, Any]], int | None]:
    """A whole call over /v1/stream: start, audio in 100 ms frames, stop; the events and the close code."""
    async with websockets.connect(url, additional_headers=bearer(key), max_size=None) as ws:
        body: dict[str, Any] = {"type": "start", **start}
        if call_id:
            body["call_id"] = call_id
        await ws.send(json.dumps(body))
        for frame in frames(audio):
            await ws.send(frame)
        if stop:
            await ws.send(json.dumps({"type": "stop"}))
        events = await read_until_closed(ws)
    return events, ws.close_code


def finals(events: list[dict[str, Any]]) -> list[str]:
    return [e["text"] for e in events if e.get("type") == "transcript.final"]


async def handshake_status(url: str, key: str | None = None, **kwargs: Any) -> int:
    """The HTTP status of a WebSocket upgrade: 101 when accepted, else the refusal's status."""
    try:
        async with websockets.connect(url, additional_headers=bearer(key), **kwargs):
            return 101
    except websockets.InvalidStatus as e:
        return int(e.response.status_code)


def hz(texts: list[str]) -> list[str]:
    """The fake recognizer's tone frequencies (its text also carries the length, which padding moves)."""
    return [t.split("hz")[0] for t in texts]
