"""Bounded waits on every platform transport: a connection that never says which call it carries is closed after
``platform_start_timeout_s``, and one that goes silent mid-call after ``platform_idle_timeout_s`` — its call ends
with what was heard kept. Each platform is refused in its own terms. Fake engine, third-party WebSocket client."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import websocket  # websocket-client

from speechsvc.speech.audio import mulaw_encode
from tests.support.platforms import FakeServer, finals, quiet, subscribe, tone, until_ended


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer(audiosocket=True, platform_start_timeout_s=0.5, platform_idle_timeout_s=1.0,
                    platform_rate_probe_s=0) as s:
        yield s


def closes_within(url: str, seconds: float, subprotocols: list[str] | None = None) -> tuple[float, int | None, list]:
    ws = websocket.create_connection(url, subprotocols=subprotocols, timeout=10)
    started, texts, code = time.perf_counter(), [], None
    while True:
        opcode, payload = ws.recv_data(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_TEXT:
            texts.append(json.loads(payload))
            if texts[-1].get("type") == "closed":  # AudioHook: the client closes the socket after closed
                ws.close()
                return time.perf_counter() - started, 1000, texts
            if texts[-1].get("type") == "disconnect":  # AudioHook: answer with close, as Genesys does
                ws.send(json.dumps({"version": "2", "id": texts[-1]["id"], "type": "close", "seq": 1,
                                    "serverseq": texts[-1]["seq"], "position": "PT0S",
                                    "parameters": {"reason": "disconnect"}}))
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            code = int.from_bytes(payload[:2], "big") if payload else None
            break
    ws.close()
    return time.perf_counter() - started, code, texts


@pytest.mark.parametrize(("path", "code", "first"), [
    ("/v1/twilio", 1008, None),
    ("/v1/audio_fork", 1008, "error"),
    ("/v1/audiohook", 1000, "disconnect"),
])
async def test_a_connection_that_never_starts_is_closed(fake: FakeServer, path: str, code: int,
                                                        first: str | None) -> None:
    protocols = ["audio.drachtio.org"] if "fork" in path else None
    elapsed, got, texts = await asyncio.to_thread(closes_within, fake.ws(path), 10, protocols)
    assert got == code and elapsed < 5
    assert [t["type"] for t in texts][:1] == ([first] if first else [])


async def test_an_audiosocket_connection_without_a_uuid_is_hung_up(fake: FakeServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.listeners["customer"].port)
    assert await asyncio.wait_for(reader.read(), 5) == b"\x00\x00\x00"
    writer.close()


async def test_a_twilio_stream_that_goes_silent_ends_its_call_keeping_what_was_heard(fake: FakeServer) -> None:
    import base64

    call_sid = "CA" + uuid.uuid4().hex
    events_ws = await subscribe(fake, call_sid)

    def stream() -> int | None:
        ws = websocket.create_connection(fake.ws("/v1/twilio"), timeout=10)
        ws.send(json.dumps({"event": "start", "start": {"callSid": call_sid, "streamSid": "MZ1", "tracks": [
            "inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
        audio = mulaw_encode(tone(440, 0.8)) + mulaw_encode(quiet(0.2))
        for i in range(0, len(audio), 160):
            ws.send(json.dumps({"event": "media", "media": {"track": "inbound", "timestamp": str(i // 8),
                                                            "payload": base64.b64encode(audio[i : i + 160]).decode()}}))
        opcode, payload = ws.recv_data(control_frame=True)  # then nothing: the server gives up after 1 s
        ws.close()
        return int.from_bytes(payload[:2], "big") if opcode == websocket.ABNF.OPCODE_CLOSE else None

    code = await asyncio.to_thread(stream)
    events = await until_ended(events_ws)
    assert code == 1008 and [f["text"][:5] for f in finals(events)] == ["440hz"]
    errors = [e for e in events if e["type"] == "error"]
    assert len(errors) == 1 and errors[0]["fatal"] and "no message" in errors[0]["message"]
    assert events[-1]["reason"] == "error"
