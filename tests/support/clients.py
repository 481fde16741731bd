"""Clients for the security, fault and fuzz tests: WebSocket calls and subscriptions with credentials, against
:class:`tests.support.fakeserver.FakeServer` (fake engine: a tone is speech, its text is its frequency)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import websockets

from tests.support.fakes import pcm16, silence, tone


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


class RawWebSocket:
    """A minimal blocking WebSocket client on a plain socket with a small receive buffer: it reads only when told
    to, so a server sending to it meets real TCP backpressure (client libraries keep reading into memory)."""

    def __init__(self, host: str, port: int, path: str, rcvbuf: int = 65536) -> None:
        import base64
        import os
        import socket

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head

    def send(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self._send_frame(0x1 if isinstance(payload, str) else 0x2, data)

    def _send_frame(self, opcode: int, data: bytes) -> None:
        import os
        import struct

        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x80 | opcode])
        header += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                                      else bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def read_all(self, timeout: float = 30) -> tuple[list[dict[str, Any]], int | None]:
        """Read frames until the server's close frame (or EOF): the JSON texts and the close code. Pings are
        answered, so the server's keepalive does not end the connection while this client reads."""
        import struct

        self.sock.settimeout(timeout)
        data, pos = bytearray(self.buffer), 0
        texts: list[dict[str, Any]] = []

        def frame_end() -> tuple[int, int] | None:
            if len(data) - pos < 2:
                return None
            n, start = data[pos + 1] & 0x7F, pos + 2
            if n == 126:
                if len(data) - pos < 4:
                    return None
                n, start = struct.unpack(">H", data[pos + 2 : pos + 4])[0], pos + 4
            elif n == 127:
                if len(data) - pos < 10:
                    return None
                n, start = struct.unpack(">Q", data[pos + 2 : pos + 10])[0], pos + 10
            return (start, start + n) if len(data) >= start + n else None

        while True:
            bounds = frame_end()
            if bounds is None:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    return texts, None
                data += chunk
                continue
            opcode, payload = data[pos] & 0x0F, bytes(data[bounds[0] : bounds[1]])
            pos = bounds[1]
            if opcode == 0x1:
                texts.append(json.loads(payload))
            elif opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                return texts, struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None

    def close(self) -> None:
        self.sock.close()
