"""Call-platform adapters with real models and real 8 kHz telephone audio: Twilio Media Streams, Asterisk
AudioSocket, FreeSWITCH mod_audio_fork, and the event subscriptions operators read adapter calls from. The
protocol conformance of each adapter, driven by third-party clients on the fake engine, is in
``tests/transports/test_platforms_*.py``."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import uuid

import numpy as np
import pytest
import websockets

from speechsvc.clients.ws import to_pcm16
from speechsvc.speech.audio import decode_file, mulaw_encode, resample
from tests.support.datasets import eval_path
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model  # real models and a real server

CUSTOMER_ZH = ("asr_zh", "telephone_sim_8k", "aishellsample_BAC009S0150W0001.wav")  # 设定二十九度
AGENT_EN = ("asr_en", "orig_8k", "asterisk_agent-newlocation.wav")  # "Please enter a new extension..."


def pcm8k(*parts: str, pad_s: float = 1.0) -> np.ndarray:
    audio, rate = decode_file(eval_path(*parts))
    x = resample(audio[0], rate, 8000)
    return to_pcm16(np.concatenate([x, np.zeros(int(8000 * pad_s), np.float32)]))


def ws_url(server: LiveServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


async def read_all(ws: websockets.ClientConnection, until: str | None = None) -> list[dict]:
    events = []
    try:
        async for raw in ws:
            events.append(json.loads(raw))
            if until and events[-1].get("type") == until:
                break
    except websockets.ConnectionClosed:
        pass
    return events


# ---- Twilio Media Streams -------------------------------------------------------------------------------

def twilio_start(call_sid: str, tracks: list[str], encoding: str = "audio/x-mulaw") -> str:
    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ" + call_sid[2:],
        "start": {"accountSid": "AC123", "streamSid": "MZ" + call_sid[2:], "callSid": call_sid, "tracks": tracks,
                  "customParameters": {"agentId": "a-7"},
                  "mediaFormat": {"encoding": encoding, "sampleRate": 8000, "channels": 1}},
    })


def twilio_media(track: str, chunk: int, payload: bytes) -> str:
    return json.dumps({"event": "media", "sequenceNumber": str(chunk + 2), "streamSid": "MZ1",
                       "media": {"track": track, "chunk": str(chunk), "timestamp": str(chunk * 20),
                                 "payload": base64.b64encode(payload).decode()}})


async def test_twilio_both_tracks_give_per_leg_transcripts_on_the_subscription(server: LiveServer) -> None:
    """Nothing comes back on the Twilio socket: the events are read from the call's subscription."""
    call_sid = "CA" + uuid.uuid4().hex
    inbound, outbound = mulaw_encode(pcm8k(*CUSTOMER_ZH)), mulaw_encode(pcm8k(*AGENT_EN))
    async with websockets.connect(ws_url(server, f"/v1/calls/{call_sid}/events")) as subscriber:
        await asyncio.sleep(0.1)
        async with websockets.connect(ws_url(server, "/v1/twilio")) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            start = json.loads(twilio_start(call_sid, ["inbound", "outbound"]))
            start["start"]["customParameters"]["language"] = "auto"
            await ws.send(json.dumps(start))
            for i in range(0, max(len(inbound), len(outbound)), 160):  # 20 ms chunks, as Twilio sends them
                if i < len(inbound):
                    await ws.send(twilio_media("inbound", i // 160, inbound[i : i + 160]))
                if i < len(outbound):
                    await ws.send(twilio_media("outbound", i // 160, outbound[i : i + 160]))
            await ws.send(json.dumps({"event": "stop", "stop": {"callSid": call_sid}}))
            on_socket = await read_all(ws)
        published = await asyncio.wait_for(read_all(subscriber, until="ended"), 30)
    assert on_socket == [] and ws.close_code == 1000
    finals = {e["leg"]: e for e in published if e["type"] == "transcript.final"}
    assert "设定" in finals["customer"]["text"] and "extension" in finals["agent"]["text"].lower()
    assert all(e["metadata"]["callSid"] == call_sid and e["metadata"]["agentId"] == "a-7" for e in published)
    assert published[0]["type"] == "ready" and published[-1]["type"] == "ended"


async def test_an_unknown_language_is_refused_at_the_edge_and_other_calls_keep_their_finals(
    server: LiveServer,
) -> None:
    """A language from the platform's parameters used to reach the shared ASR batch and fail other calls'
    finals in it; it is now refused when the call is admitted, whichever transport carried it."""
    inbound = mulaw_encode(pcm8k(*CUSTOMER_ZH))
    start = json.loads(twilio_start("CA" + uuid.uuid4().hex, ["inbound"]))
    start["start"]["customParameters"]["language"] = "klingon"

    async def good_call() -> list[dict]:
        call_sid = "CA" + uuid.uuid4().hex
        async with websockets.connect(ws_url(server, f"/v1/calls/{call_sid}/events")) as subscriber:
            await asyncio.sleep(0.1)
            async with websockets.connect(ws_url(server, "/v1/twilio")) as ws:
                await ws.send(twilio_start(call_sid, ["inbound"]))
                for i in range(0, len(inbound), 160):
                    await ws.send(twilio_media("inbound", i // 160, inbound[i : i + 160]))
                await ws.send(json.dumps({"event": "stop"}))
            return await asyncio.wait_for(read_all(subscriber, until="ended"), 30)

    async def bad_call() -> tuple[list[dict], int | None, str]:
        async with websockets.connect(ws_url(server, "/v1/twilio")) as ws:
            await ws.send(json.dumps(start))
            events = await read_all(ws)
        return events, ws.close_code, ws.close_reason or ""

    good, (bad, code, reason) = await asyncio.gather(good_call(), bad_call())
    assert code == 1003 and bad == [] and "klingon" in reason  # a close code only: Twilio takes no JSON of ours
    assert any(e["type"] == "transcript.final" and "设定" in e["text"] for e in good)
    fork = ws_url(server, "/v1/audio_fork?language=xx")
    async with websockets.connect(fork, subprotocols=["audio.drachtio.org"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"callId": "fork-lang"}))
        events = await read_all(ws)
    assert ws.close_code == 1003 and "language 'xx'" in events[0]["data"]["message"]


# ---- Asterisk AudioSocket -------------------------------------------------------------------------------

def tlv(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


async def audiosocket_call(server: LiveServer, pcm: np.ndarray, *, extra: list[bytes] | None = None,
                           hangup: bool = True, cut: bool = False) -> tuple[str, list[dict]]:
    call = uuid.uuid4()
    async with websockets.connect(ws_url(server, f"/v1/calls/{call}/events")) as subscriber:
        await asyncio.sleep(0.1)
        _, writer = await asyncio.open_connection("127.0.0.1", server.audiosocket.port)
        writer.write(tlv(0x01, call.bytes))
        data = pcm.astype("<i2").tobytes()
        for i, chunk in enumerate(range(0, len(data), 320)):  # 20 ms of slin16 at 8 kHz
            writer.write(tlv(0x10, data[chunk : chunk + 320]))
            if i == 5:
                for frame in extra or []:
                    writer.write(frame)
            if i % 50 == 0:
                await writer.drain()
        if cut:
            writer.write(bytes([0x10, 0x01, 0x40]) + b"\x00" * 10)  # header promises 320 bytes, stream ends
        elif hangup:
            writer.write(tlv(0x00))
        await writer.drain()
        writer.close()
        events = await asyncio.wait_for(read_all(subscriber, until="ended"), 60)
    return str(call), events


async def test_audiosocket_call_is_transcribed_and_published(server: LiveServer) -> None:
    call, events = await audiosocket_call(server, pcm8k(*CUSTOMER_ZH), extra=[tlv(0x03, b"5")])
    assert events[0]["type"] == "ready" and events[0]["metadata"]["uuid"] == call
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert finals and finals[0]["leg"] == "customer" and "设定" in finals[0]["text"]
    assert events[-1]["type"] == "ended" and events[-1]["reason"] == "stop"


async def test_audiosocket_bad_frames_are_reported_and_other_calls_unaffected(server: LiveServer) -> None:
    bad = [tlv(0x10, b"\x01\x02\x03"), tlv(0x42, b"??"), tlv(0x12, b"\x00\x00" * 160)]
    (_, good), (_, broken) = await asyncio.gather(
        audiosocket_call(server, pcm8k("asr_zh", "telephone_sim_8k", "aishellsample_BAC009S0150W0002.wav")),
        audiosocket_call(server, pcm8k(*CUSTOMER_ZH), extra=bad, cut=True),
    )
    errors = [e for e in broken if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["invalid_audio", "protocol_error", "invalid_audio"]
    assert "not whole 16-bit samples" in errors[0]["message"] and "0x42" in errors[1]["message"]
    assert "0x12" in errors[2]["message"] and not any(e["fatal"] for e in errors)
    # The truncated stream still gets the final of what was heard, and the other call is untouched.
    assert any("设定" in e["text"] for e in broken if e["type"] == "transcript.final")
    assert any("设定" in e["text"] for e in good if e["type"] == "transcript.final")  # 设定三十度
    assert not any(e["type"] == "error" for e in good)


async def test_audiosocket_first_frame_must_be_uuid(server: LiveServer) -> None:
    """Refused with a hangup frame only: Asterisk hangs up the channel on an error frame."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.audiosocket.port)
    writer.write(tlv(0x10, b"\x00\x00" * 160))
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert reply == b"\x00\x00\x00"


# ---- FreeSWITCH mod_audio_fork -------------------------------------------------------------------------

async def test_audio_fork_stereo_l16_gives_per_leg_transcriptions(server: LiveServer) -> None:
    customer, agent = pcm8k(*CUSTOMER_ZH), pcm8k(*AGENT_EN)
    n = max(len(customer), len(agent))
    stereo = np.zeros((n, 2), np.int16)
    stereo[: len(customer), 0], stereo[: len(agent), 1] = customer, agent
    data = stereo.astype("<i2").tobytes()
    call = str(uuid.uuid4())
    url = ws_url(server, "/v1/audio_fork?mix=stereo&rate=8k&language=auto")
    async with websockets.connect(ws_url(server, f"/v1/calls/{call}/events")) as subscriber:
        await asyncio.sleep(0.1)
        async with websockets.connect(url, subprotocols=["audio.drachtio.org"]) as ws:
            assert ws.subprotocol == "audio.drachtio.org"
            await ws.send(json.dumps({"callId": call, "from": "6173333456", "to": "2061236666"}))
            for i in range(0, len(data), 640):  # 20 ms of 8 kHz stereo L16
                await ws.send(data[i : i + 640])
            await ws.send(json.dumps({"event": "dtmf", "digit": "2"}))  # uuid_audio_fork send_text
        # `uuid_audio_fork stop` closes the socket at once: what was heard is still finished and published.
        published = await asyncio.wait_for(read_all(subscriber, until="ended"), 60)
    finals = {e["leg"]: e for e in published if e["type"] == "transcript.final"}
    assert "设定" in finals["customer"]["text"] and finals["customer"]["language"] == "zh"
    assert "extension" in finals["agent"]["text"].lower() and finals["agent"]["language"] == "en"
    # The caller's number travels masked (METADATA_KEYS, MASK_METADATA).
    assert published[0]["metadata"]["from"] == "******3456" and published[-1]["reason"] == "stop"


async def test_audio_fork_events_on_the_socket(server: LiveServer) -> None:
    customer = pcm8k(*CUSTOMER_ZH, pad_s=1.5)
    call = str(uuid.uuid4())
    async with websockets.connect(ws_url(server, "/v1/events")) as everything:
        await asyncio.sleep(0.1)
        async with websockets.connect(ws_url(server, "/v1/audio_fork?mix=mono&rate=8000"),
                                      subprotocols=["audio.drachtio.org"]) as ws:
            await ws.send(json.dumps({"callId": call}))
            data = customer.astype("<i2").tobytes()
            for i in range(0, len(data), 320):
                await ws.send(data[i : i + 320])
            await ws.send(b"\x00\x01\x02")
            replies = []
            while not any(r["type"] == "transcription" and r["data"]["type"] == "transcript.final" for r in replies):
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
            assert replies[0]["type"] == "json" and replies[0]["data"]["type"] == "ready"  # not a transcription
        published = await asyncio.wait_for(read_all(everything, until="ended"), 30)
    final = next(r["data"] for r in replies if r["type"] == "transcription" and r["data"]["type"] == "transcript.final")
    assert final["call_id"] == call and final["leg"] == "customer" and "设定" in final["text"]
    assert any(r["type"] == "error" and r["data"]["code"] == "invalid_audio" for r in replies)
    mine = [e for e in published if e.get("call_id") == call]
    assert mine[0]["type"] == "ready" and mine[-1]["type"] == "ended"


async def test_audio_fork_bad_mix_is_refused(server: LiveServer) -> None:
    async with websockets.connect(ws_url(server, "/v1/audio_fork?mix=quad"),
                                  subprotocols=["audio.drachtio.org"]) as ws:
        await ws.send("{}")
        replies = await read_all(ws)
    assert ws.close_code == 1003 and replies[0]["type"] == "error" and "quad" in replies[0]["data"]["message"]
