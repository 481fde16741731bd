"""Client helpers: turn a file into paced audio frames and stream it to a speechsvc server.

The sender paces frames at real time (or faster) while a separate task receives events, the skeleton a
latency benchmark needs: each event is stamped with the client's clock on arrival (``received_at``) and
the media time the sender had reached (``sent_ms``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.speech.audio import decode_file
from speechsvc.types import Float32Array


@dataclass(frozen=True)
class StreamAudio:
    """Audio ready to stream: int16 interleaved at ``sample_rate``, ``channels`` channels."""

    pcm: np.ndarray[Any, np.dtype[np.int16]]
    sample_rate: int
    channels: int

    @property
    def duration_s(self) -> float:
        return float(self.pcm.shape[0] / self.sample_rate)

    def frames(self, frame_ms: int) -> Iterator[tuple[int, bytes]]:
        """(media time in ms at the end of the frame, little-endian PCM16 bytes)."""
        step = self.sample_rate * frame_ms // 1000
        for i in range(0, self.pcm.shape[0], step):
            block = self.pcm[i : i + step]
            yield (i + block.shape[0]) * 1000 // self.sample_rate, block.astype("<i2").tobytes()


async def paced(audio: StreamAudio, frame_ms: int, speed: float) -> AsyncIterator[tuple[int, bytes]]:
    """The audio's frames at ``speed`` times real time (0 = as fast as possible), as a caller would send them."""
    t0 = time.perf_counter()
    for media_ms, frame in audio.frames(frame_ms):
        yield media_ms, frame
        if speed > 0:
            delay = t0 + media_ms / 1000 / speed - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)


def load_stream_audio(path: Path | str, channels: int | None = None) -> StreamAudio:
    """Decode a file to 16 kHz PCM16; stereo files keep two channels unless ``channels=1``."""
    audio, rate = decode_file(path)
    if channels == 1 and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True)
    return StreamAudio(to_pcm16(audio.T), rate, audio.shape[0])


def to_pcm16(audio: Float32Array) -> np.ndarray[Any, np.dtype[np.int16]]:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


async def stream_ws(
    url: str,
    audio: StreamAudio,
    *,
    language: str = "zh",
    frame_ms: int = 100,
    speed: float = 1.0,
    call_id: str | None = None,
    partials: bool = True,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    open_timeout: float = 30.0,
    words: bool = False,
) -> list[dict[str, Any]]:
    """Stream ``audio`` to a ``/v1/stream`` WebSocket endpoint; return every event received.

    ``speed`` 1.0 paces at real time; 0 sends as fast as possible. Raises the websockets exceptions
    if the server refuses the connection.
    """
    import websockets

    start: dict[str, Any] = {
        "type": "start",
        "encoding": "pcm16",
        "sample_rate": audio.sample_rate,
        "channels": audio.channels,
        "language": language,
        "partials": partials,
    }
    if call_id:
        start["call_id"] = call_id
    if words:
        start["words"] = True
    events: list[dict[str, Any]] = []
    sent = {"ms": 0}
    async with websockets.connect(url, max_size=None, open_timeout=open_timeout) as ws:
        await ws.send(json.dumps(start))
        ready = json.loads(await ws.recv())
        ready["received_at"] = time.time()
        events.append(ready)
        if ready.get("type") != "ready":
            return events

        async def receive() -> None:
            async for raw in ws:
                event = json.loads(raw)
                event["received_at"] = time.time()
                event["sent_ms"] = sent["ms"]
                events.append(event)
                if on_event:
                    on_event(event)
                if event.get("type") == "ended":
                    return

        receiver = asyncio.get_running_loop().create_task(receive())
        async for media_ms, frame in paced(audio, frame_ms, speed):
            if receiver.done():
                break
            await ws.send(frame)
            sent["ms"] = media_ms
        if not receiver.done():
            await ws.send(json.dumps({"type": "stop"}))
        await receiver
    return events
