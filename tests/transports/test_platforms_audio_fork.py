"""FreeSWITCH mod_audio_fork conformance. No mod_audio_fork emulator is published (FreeSWITCH is not packaged
here either), so the client is the third-party ``websocket-client`` library (PyPI; independent of the server's
WebSocket stack) doing on the wire what mod_audio_fork's source does (drachtio-freeswitch-modules,
``lws_glue.cpp``/``audio_pipe.cpp``): subprotocol ``audio.drachtio.org``, an optional metadata text frame of any
text, L16 binary frames, then ``stop`` (close 1000 at once) or ``graceful-shutdown`` (one empty binary frame,
then wait for the server to close). Fake engine: a tone's transcript names its pitch."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import websocket  # websocket-client

from tests.support.platforms import FakeServer, finals, pcm8k, quiet, subscribe, tone, until_ended

SUBPROTOCOL = "audio.drachtio.org"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer(platform_rate_probe_s=0.6) as s:
        yield s


@dataclass
class Fork:
    """What the server sent back to one fork."""

    subprotocol: str | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None


def fork(url: str, pcm: np.ndarray, *, metadata: str | None = None, end: str = "graceful",
         packet_ms: int = 20, pace: float = 0.0, rate: int = 8000) -> Fork:
    """mod_audio_fork's side of one fork; ``pace`` 1.0 sends in real time, 0 as fast as possible."""
    ws = websocket.create_connection(url, subprotocols=[SUBPROTOCOL], timeout=20)
    result = Fork(ws.getsubprotocol())
    if metadata is not None:
        ws.send(metadata)
    data = pcm.astype("<i2").tobytes()
    step = rate * packet_ms // 1000 * 2 * (pcm.shape[1] if pcm.ndim == 2 else 1)
    started = time.perf_counter()
    for n, i in enumerate(range(0, len(data), step)):
        if pace:
            time.sleep(max(0.0, started + n * packet_ms / 1000 / pace - time.perf_counter()))
        ws.send_binary(data[i : i + step])
    if end == "stop":
        ws.send('{"event":"stop"}')  # `uuid_audio_fork <uuid> stop {...}`: a last text, then close 1000 at once
        ws.close(websocket.STATUS_NORMAL)
        return result
    ws.send_binary(b"")  # graceful-shutdown
    while True:
        try:
            opcode, payload = ws.recv_data(control_frame=True)
        except websocket.WebSocketConnectionClosedException:
            break
        if opcode == websocket.ABNF.OPCODE_TEXT:
            result.messages.append(json.loads(payload))
        elif opcode == websocket.ABNF.OPCODE_CLOSE:
            result.close_code = int.from_bytes(payload[:2], "big") if payload else None
            break
    ws.close()
    return result


async def run_fork(*args: Any, **kwargs: Any) -> Fork:
    return await asyncio.to_thread(fork, *args, **kwargs)


def data_of(r: Fork, wire_type: str) -> list[dict[str, Any]]:
    return [m["data"] for m in r.messages if m["type"] == wire_type]


async def test_graceful_shutdown_without_metadata_flushes_sends_the_finals_then_closes(fake: FakeServer) -> None:
    """No metadata frame (optional in mod_audio_fork): the call id comes from the URL. The empty binary frame of
    ``graceful-shutdown`` used to be answered with ``invalid_audio`` and the socket left open; now the open
    utterance (the tone runs to the end) is finished, its final sent as ``transcription``, and the socket
    closed 1000. Non-transcript events come as ``json``."""
    call = str(uuid.uuid4())
    r = await run_fork(fake.ws(f"/v1/audio_fork/{call}?mix=mono&rate=8k"), np.concatenate([quiet(0.3), tone(440, 1.0)]))
    assert r.subprotocol == SUBPROTOCOL and r.close_code == 1000
    assert [f["text"][:5] for f in data_of(r, "transcription") if f["type"] == "transcript.final"] == ["440hz"]
    assert [e["type"] for e in data_of(r, "json")] == ["ready", "ended"]
    assert all(m["data"]["call_id"] == call for m in r.messages) and data_of(r, "error") == []


@pytest.mark.parametrize("metadata", ["not json, just text", '{"callId":"%s","a":1}{"b":"2"}', "", "[1, 2]"])
async def test_metadata_is_optional_and_may_be_any_text(fake: FakeServer, metadata: str) -> None:
    call = f"meta-{uuid.uuid4().hex[:8]}"
    text = metadata.replace("%s", call)
    url = fake.ws(f"/v1/audio_fork?uuid={call}")
    r = await run_fork(url, np.concatenate([tone(500, 0.6), quiet(0.6)]), metadata=text)
    assert r.close_code == 1000 and len(data_of(r, "transcription")) == 1
    ready = data_of(r, "json")[0]
    assert ready["call_id"] == call
    # Only allow-listed keys travel (SPEECHSVC_METADATA_KEYS): the call id does, the operator's own keys do not.
    assert ready.get("metadata", {}) == ({"callId": call} if text.startswith("{") else {})


async def test_stop_closes_at_once_and_the_finals_still_reach_the_subscription(fake: FakeServer) -> None:
    call = str(uuid.uuid4())
    events_ws = await subscribe(fake, call)
    await run_fork(fake.ws(f"/v1/audio_fork/{call}"), tone(440, 1.0), end="stop")
    events = await until_ended(events_ws)
    assert [f["text"][:5] for f in finals(events)] == ["440hz"] and events[-1]["reason"] == "stop"


async def test_stereo_without_mix_is_detected_from_the_byte_rate_and_split_into_legs(fake: FakeServer) -> None:
    """uuid_audio_fork ... stereo, but a URL without mix=stereo: twice the bytes per second of mono, and two
    interleaved signals. It used to be decoded as one 8 kHz leg of garbage; now it is reported
    (``format_mismatch``) and split into the two legs. Sent in real time, as FreeSWITCH does."""
    n = 8000 * 2
    stereo = np.zeros((n, 2), np.int16)
    stereo[2400:10400, 0] = tone(440, 1.0)
    stereo[4000:12000, 1] = tone(660, 1.0)
    r = await run_fork(fake.ws("/v1/audio_fork?rate=8k"), stereo, pace=1.0)
    errors = data_of(r, "error")
    assert [e["code"] for e in errors] == ["format_mismatch"] and "stereo" in errors[0]["message"]
    assert not errors[0]["fatal"]
    got = {f["leg"]: f["text"][:5] for f in data_of(r, "transcription") if f["type"] == "transcript.final"}
    assert got == {"customer": "440hz", "agent": "660hz"}


async def test_a_rate_other_than_the_urls_is_detected_and_adapted(fake: FakeServer) -> None:
    pcm = np.concatenate([quiet(0.3, 16000), tone(440, 1.0, 16000), quiet(0.3, 16000)])
    r = await run_fork(fake.ws("/v1/audio_fork?mix=mono&rate=8k"), pcm, pace=1.0, rate=16000)
    assert [e["code"] for e in data_of(r, "error")] == ["format_mismatch"]
    assert data_of(r, "json")[-1]["legs"][0]["audio_ms"] == 1600  # 16 kHz audio, counted at 16 kHz
    assert [f["text"][:5] for f in data_of(r, "transcription") if f["type"] == "transcript.final"] == ["440hz"]


@pytest.mark.parametrize("rate", ["24k", "32000", "48k", "64000"])
async def test_every_rate_mod_audio_fork_can_send_is_accepted(fake: FakeServer, rate: str) -> None:
    hz = int(rate[:-1]) * 1000 if rate.endswith("k") else int(rate)
    r = await run_fork(fake.ws(f"/v1/audio_fork?mix=mono&rate={rate}"),
                       np.concatenate([tone(500, 0.6, hz), quiet(0.6, hz)]), rate=hz, packet_ms=100)
    assert data_of(r, "json")[0]["sample_rate"] == hz and data_of(r, "error") == []
    assert [f["text"][:5] for f in data_of(r, "transcription")] == ["500hz"]


async def test_a_long_frame_is_taken_whole_and_legs_follow_the_url(fake: FakeServer) -> None:
    """FreeSWITCH sends whatever accumulated since its last write: 3 s in one frame is not dropped. Forking the
    agent's channel puts the agent in channel 0: ``legs=agent,customer``."""
    stereo = np.zeros((8000 * 3, 2), np.int16)
    stereo[:8000, 0] = tone(440, 1.0)
    r = await run_fork(fake.ws("/v1/audio_fork?mix=stereo&rate=8000&legs=agent,customer"), stereo, packet_ms=3000)
    assert data_of(r, "error") == [] and data_of(r, "json")[0]["legs"] == ["agent", "customer"]
    assert [(f["leg"], f["text"][:5]) for f in data_of(r, "transcription")] == [("agent", "440hz")]


async def test_bad_options_are_refused_with_an_error_message_and_a_close_code(fake: FakeServer) -> None:
    for query, match in (("mix=quad", "quad"), ("rate=4k", "sample_rate 4000"), ("language=xx", "language 'xx'"),
                         ("mix=stereo&legs=agent", "1 leg(s)")):
        ws = websocket.create_connection(fake.ws(f"/v1/audio_fork?{query}"), subprotocols=[SUBPROTOCOL], timeout=10)
        ws.send('{"callId":"bad"}')
        reply = json.loads(ws.recv())
        opcode, payload = ws.recv_data(control_frame=True)
        assert reply["type"] == "error" and match in reply["data"]["message"] and reply["data"]["fatal"]
        assert opcode == websocket.ABNF.OPCODE_CLOSE and int.from_bytes(payload[:2], "big") == 1003
        ws.close()


@pytest.mark.model
async def test_real_telephone_audio_through_a_graceful_fork(server: object) -> None:
    """Real 8 kHz speech (eval set) in both channels, real models: each leg's words, finals before the close."""
    from tests.support.liveserver import LiveServer
    from tests.support.platforms import AGENT_EN, CUSTOMER_ZH

    assert isinstance(server, LiveServer)
    customer, agent = pcm8k(*CUSTOMER_ZH), pcm8k(*AGENT_EN)
    stereo = np.zeros((max(len(customer), len(agent)), 2), np.int16)
    stereo[: len(customer), 0], stereo[: len(agent), 1] = customer, agent
    url = f"ws://127.0.0.1:{server.port}/v1/audio_fork/{uuid.uuid4()}?mix=stereo&rate=8k&language=auto"
    r = await run_fork(url, stereo)
    got = {f["leg"]: f for f in data_of(r, "transcription") if f["type"] == "transcript.final"}
    assert "设定" in got["customer"]["text"] and "extension" in got["agent"]["text"].lower()
    assert r.close_code == 1000


async def test_an_upgrade_without_the_subprotocol_is_refused(fake: FakeServer) -> None:
    """mod_audio_fork always offers audio.drachtio.org; anything that does not is not a fork: HTTP 400, no call."""
    def connect(subprotocols: list[str] | None) -> int:
        try:
            ws = websocket.create_connection(fake.ws("/v1/audio_fork?mix=mono&rate=8k"), subprotocols=subprotocols,
                                             timeout=10)
        except websocket.WebSocketBadStatusException as e:
            return int(e.status_code)
        ws.close()
        return 101

    assert await asyncio.to_thread(connect, None) == 400
    assert await asyncio.to_thread(connect, ["audio.example.org"]) == 400
    assert await asyncio.to_thread(connect, ["x", SUBPROTOCOL]) == 101
