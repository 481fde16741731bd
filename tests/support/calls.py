"""A call driven through the session core in-process (no transport): audio fed in frames, every event back."""

from __future__ import annotations

import asyncio

import numpy as np

from speechsvc.transports.lifecycle import open_call
from speechsvc.types import CallConfig, CallEvent
from tests.support.fakes import pcm16


async def run_call(engine, cfg: CallConfig, audio: np.ndarray, frame_s: float = 0.1) -> list[CallEvent]:  # type: ignore[no-untyped-def]
    step = int(16000 * frame_s) * cfg.audio.channels
    async with open_call(engine, cfg, "test") as session:
        reader = asyncio.ensure_future(collect(session.events()))
        data = pcm16(audio)
        for i in range(0, len(data), step * 2):
            session.feed_bytes(data[i : i + step * 2])
            await asyncio.sleep(0)
        await session.close("stop")
        return await reader


async def collect(events) -> list[CallEvent]:  # type: ignore[no-untyped-def]
    return [e async for e in events]
