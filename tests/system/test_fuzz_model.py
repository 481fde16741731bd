"""The real-model part of the fuzz suite (model tier, kept small): mutated and truncated WebSocket sessions and
vanishing clients hit the real server while a real call streams real speech beside them; the call's transcript
must be the one it gets alone, and the server must stay ready."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest
import websockets

from speechsvc.clients.ws import load_stream_audio, stream_ws
from tests.support.datasets import eval_path
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model

MUTATIONS = 40


def _mutated_sessions(rng: random.Random) -> list[list[str | bytes]]:
    start = json.dumps({"type": "start", "call_id": "fz", "sample_rate": 16000})
    sessions: list[list[str | bytes]] = []
    for _ in range(MUTATIONS):
        cut = rng.randrange(len(start))
        kind = rng.choice(["truncated", "garbage", "odd", "reorder", "nested", "big"])
        if kind == "truncated":
            sessions.append([start[:cut]])
        elif kind == "garbage":
            sessions.append([start, rng.randbytes(rng.randrange(1, 4000)), '{"type": "stop"}'])
        elif kind == "odd":
            sessions.append([start, b"\x00" * (2 * rng.randrange(1, 3000) + 1), '{"type": "stop"}'])
        elif kind == "reorder":
            sessions.append(['{"type": "stop"}', rng.randbytes(320), start])
        elif kind == "nested":
            sessions.append([start, "[" * 20000 + "]" * 20000, '{"type": "audio", "data": "@@"}', '{"type": "stop"}'])
        else:
            sessions.append([start, rng.randbytes(64), b"\x00" * (1 << 21)])
    return sessions


async def _attack(url: str, messages: list[str | bytes], vanish: bool) -> int | None:
    try:
        async with websockets.connect(url, max_size=None) as ws:
            for message in messages:
                await ws.send(message)
            if vanish:
                ws.transport.abort()
                return None
            try:
                async with asyncio.timeout(30):
                    async for _ in ws:
                        pass
            except websockets.ConnectionClosed:
                pass
            return ws.close_code
    except (websockets.ConnectionClosed, OSError):
        return None


async def test_a_real_call_keeps_its_transcript_under_fuzz(server: LiveServer) -> None:
    audio = load_stream_audio(eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0001.wav"))
    alone = await stream_ws(server.url, audio, speed=0, partials=False, call_id="fuzz-alone")
    rng = random.Random(21)
    sessions = _mutated_sessions(rng)

    async def attacks() -> list[int | None]:
        codes = []
        for i, messages in enumerate(sessions):
            codes.append(await _attack(server.url, messages, vanish=i % 5 == 0))
        return codes

    beside, codes = await asyncio.gather(
        stream_ws(server.url, audio, speed=2.0, partials=False, call_id="fuzz-beside"), attacks())

    def finals(events: list[dict]) -> list[str]:
        return [e["text"] for e in events if e["type"] == "transcript.final"]

    assert finals(beside) == finals(alone) and "设定" in "".join(finals(alone))
    assert set(codes) <= {None, 1000, 1003, 1007, 1008, 1009, 1013}, codes
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{server.http}/readyz")).status_code == 200
