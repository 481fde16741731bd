"""WebSocket transport against a real server on a free port, with a real websockets client and real audio."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import websockets

from speechsvc.clients.ws import StreamAudio, load_stream_audio, stream_ws, to_pcm16
from speechsvc.evaluation.scoring import error_rate
from speechsvc.speech.audio import decode_file
from tests.support.datasets import eval_path, manifest
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model  # real models and a real server

FAST = 4.0  # pace at 4x real time: frames are real-time sized (100 ms), the suite stays short


def zh_row(prefix: str) -> dict[str, str]:
    return next(r for r in manifest("asr_zh") if r["id"].startswith(prefix))


async def recv_json(ws: websockets.ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 30))


async def start_call(server: LiveServer, **start: object) -> tuple[websockets.ClientConnection, dict]:
    ws = await websockets.connect(server.url, max_size=None)
    await ws.send(json.dumps({"type": "start", **start}))
    return ws, await recv_json(ws)


async def closed(ws: websockets.ClientConnection) -> tuple[int | None, list[dict]]:
    """Read until the server closes; return the close code and the JSON events seen."""
    events = []
    try:
        async for raw in ws:
            events.append(json.loads(raw))
    except websockets.ConnectionClosed:
        pass
    return ws.close_code, events


async def test_stream_real_file_partials_then_finals_in_order(server: LiveServer) -> None:
    path = eval_path("long", "audio", "aishellsample_S0150_S0252_concat_read.wav")
    audio = load_stream_audio(path)
    audio = StreamAudio(audio.pcm[: 16000 * 40], 16000, 1)  # first 40 s: ten utterances
    events = await stream_ws(server.url, audio, frame_ms=100, speed=FAST, call_id="order-test")
    types = [e["type"] for e in events]
    assert types[0] == "ready" and types[-1] == "ended"
    assert [e["seq"] for e in events[1:]] == list(range(1, len(events)))
    finals = [e for e in events if e["type"] == "transcript.final"]
    partials = [e for e in events if e["type"] == "transcript.partial"]
    assert len(finals) >= 9 and partials
    assert [f["utterance"] for f in finals] == sorted(f["utterance"] for f in finals)
    for f in finals:
        assert f["leg"] == "customer" and f["language"] == "zh" and 0 < f["confidence"] <= 1
        assert f["start_ms"] < f["end_ms"] <= 40_000 and f["call_id"] == "order-test"
    # A partial of an utterance never arrives after its final; partial text starts with its stable prefix.
    final_at = {f["utterance"]: i for i, f in enumerate(events) if f["type"] == "transcript.final"}
    for i, p in enumerate(events):
        if p["type"] == "transcript.partial":
            assert i < final_at.get(p["utterance"], len(events))
            assert p["text"].startswith(p["stable_text"])
    text = "".join(f["text"] for f in finals)
    assert "想听歌曲" in text
    # Every final is followed by its intent and sentiment (analysis never precedes the transcript).
    for f in finals:
        i = events.index(f)
        intent = next(e for e in events if e["type"] == "intent" and e["utterance"] == f["utterance"])
        sentiment = next(e for e in events if e["type"] == "sentiment" and e["utterance"] == f["utterance"])
        assert events.index(intent) > i and events.index(sentiment) > i
        assert intent["label"] and 0 <= intent["probability"] <= 1 and intent["alternatives"][0]["label"]
        assert 0 <= sentiment["negativity"] <= 1 and intent["start_ms"] == f["start_ms"]
    ended = events[-1]
    assert ended["reason"] == "stop" and ended["legs"][0]["utterances"] >= 9


async def test_stereo_mulaw_8k_call_keeps_legs_apart(server: LiveServer) -> None:
    from speechsvc.speech.audio import mulaw_encode, resample

    zh, _ = decode_file(eval_path("asr_zh", "telephone_sim_8k", "aishellsample_BAC009S0150W0001.wav"))
    en, _ = decode_file(eval_path("asr_en", "orig_8k", "asterisk_agent-newlocation.wav"))
    n = max(zh.shape[1], en.shape[1]) + 16000
    both = np.zeros((n, 2), np.float32)
    both[: zh.shape[1], 0] = zh[0]
    both[: en.shape[1], 1] = en[0]
    pcm8k = to_pcm16(resample(both, 16000, 8000))
    ws, ready = await start_call(server, encoding="mulaw", sample_rate=8000, channels=2, language="auto",
                                 call_id="stereo-1", metadata={"callSid": "CA123"})
    assert ready["type"] == "ready" and ready["legs"] == ["customer", "agent"]
    payload = mulaw_encode(pcm8k.reshape(-1))
    for i in range(0, len(payload), 320):  # 20 ms of 8 kHz stereo μ-law
        await ws.send(payload[i : i + 320])
    await ws.send(json.dumps({"type": "stop"}))
    code, events = await closed(ws)
    assert code == 1000
    finals = {e["leg"]: e for e in events if e["type"] == "transcript.final"}
    assert "设定" in finals["customer"]["text"] and finals["customer"]["language"] == "zh"
    assert "extension" in finals["agent"]["text"].lower() and finals["agent"]["language"] == "en"
    assert all(e.get("metadata") == {"callSid": "CA123"} for e in events)


async def test_two_concurrent_calls_do_not_mix(server: LiveServer) -> None:
    rows = [zh_row("cosyvoice"), zh_row("mossttsd")]
    audios = [load_stream_audio(eval_path("asr_zh", r["file"])) for r in rows]
    results = await asyncio.gather(*(stream_ws(server.url, a, speed=FAST, call_id=f"mix-{i}")
                                     for i, a in enumerate(audios)))
    texts = ["".join(e["text"] for e in events if e["type"] == "transcript.final") for events in results]
    for i, events in enumerate(results):
        assert all(e["call_id"] == f"mix-{i}" for e in events)
    assert error_rate(rows[0]["reference_text"], texts[0], "zh") < 0.3
    assert error_rate(rows[1]["reference_text"], texts[1], "zh") < 0.3
    assert error_rate(rows[0]["reference_text"], texts[1], "zh") > 0.7


async def test_binary_before_start_closes_1008(server: LiveServer) -> None:
    async with websockets.connect(server.url) as ws:
        await ws.send(b"\x00\x00" * 160)
        code, events = await closed(ws)
    assert code == 1008 and events[0]["code"] == "protocol_error" and "before the start" in events[0]["message"]


@pytest.mark.parametrize(
    ("start", "code", "error", "match"),
    [
        ({"sample_rate": 4000}, 1003, "unsupported_format", "4000"),
        ({"encoding": "opus"}, 1003, "unsupported_format", "encoding"),
        ({"channels": 2, "legs": ["customer"]}, 1003, "unsupported_format", "one leg per channel"),
        ({"call_id": "has spaces"}, 1008, "protocol_error", "call_id"),
    ],
)
async def test_bad_start_closes_with_precise_code(server: LiveServer, start: dict, code: int, error: str,
                                                  match: str) -> None:
    ws, first = await start_call(server, **start)
    close_code, _ = await closed(ws)
    assert first["type"] == "error" and first["code"] == error and match in first["message"] and first["fatal"]
    assert close_code == code


async def test_garbage_text_start_closes_1008(server: LiveServer) -> None:
    async with websockets.connect(server.url) as ws:
        await ws.send("\x00\xff not json")
        code, events = await closed(ws)
    assert code == 1008 and "not valid JSON" in events[0]["message"]


async def test_bad_frames_are_reported_and_the_call_goes_on(server: LiveServer) -> None:
    row = zh_row("aishellsample_BAC009S0150W0001")
    audio = load_stream_audio(eval_path("asr_zh", row["file"]))
    ws, ready = await start_call(server, call_id="bad-frames")
    assert ready["type"] == "ready"
    await ws.send(b"\x01\x02\x03")  # odd byte count for PCM16
    await ws.send("{not json")
    await ws.send(json.dumps({"type": "audio", "data": "***not base64***"}))
    await ws.send(json.dumps({"type": "dance"}))
    await ws.send(b"\x00" * 64000)  # 2 s of audio in one frame > 1 s max_frame_ms
    for _, frame in audio.frames(100):
        await ws.send(frame)
    await ws.send(json.dumps({"type": "stop"}))
    code, events = await closed(ws)
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors] == ["invalid_audio", "protocol_error", "invalid_audio", "protocol_error",
                                           "invalid_audio"]
    assert not any(e["fatal"] for e in errors)
    assert "not a whole number" in errors[0]["message"] and "exceeds 1000 ms" in errors[4]["message"]
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert code == 1000 and finals and "设定" in finals[0]["text"]


async def test_base64_audio_in_json(server: LiveServer) -> None:
    import base64

    audio = load_stream_audio(eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0002.wav"))
    ws, _ = await start_call(server)
    for _, frame in audio.frames(200):
        await ws.send(json.dumps({"type": "audio", "data": base64.b64encode(frame).decode()}))
    await ws.send(json.dumps({"type": "stop"}))
    code, events = await closed(ws)
    assert code == 1000 and any("设定" in e.get("text", "") for e in events if e["type"] == "transcript.final")


async def test_nan_float_frames_are_rejected(server: LiveServer) -> None:
    ws, _ = await start_call(server, encoding="f32")
    await ws.send(np.array([0.0, np.nan] * 80, "<f4").tobytes())
    await ws.send(json.dumps({"type": "stop"}))
    _, events = await closed(ws)
    assert events[0]["type"] == "error" and "NaN" in events[0]["message"] and not events[0]["fatal"]


async def test_oversized_message_closes_1009_after_delivering_what_was_heard(server: LiveServer) -> None:
    audio = load_stream_audio(eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0003.wav"))
    ws, _ = await start_call(server)
    for _, frame in audio.frames(100):
        await ws.send(frame)
    await ws.send(b"\x00" * (server.settings.max_message_bytes + 2))
    code, events = await closed(ws)
    assert code == 1009
    types = [e["type"] for e in events]
    error = next(e for e in events if e["type"] == "error")
    assert error["code"] == "message_too_large" and error["fatal"]
    # Nothing already heard is lost: the open utterance is finished before the call ends.
    assert types.index("error") < types.index("transcript.final") and types[-1] == "ended"


async def test_client_vanishing_mid_call_frees_its_slot(server: LiveServer) -> None:
    audio = load_stream_audio(eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0004.wav"))
    subscriber = await websockets.connect(server.url.replace("/v1/stream", "/v1/calls/vanish/events"))
    ws, _ = await start_call(server, call_id="vanish")
    for _, frame in list(audio.frames(100))[:15]:
        await ws.send(frame)
    await asyncio.sleep(0.5)  # the server has read the frames
    ws.transport.abort()  # no close handshake: the client is just gone
    for _ in range(200):
        if ("default", "vanish") not in server.engine.sessions and server.engine.active_calls == 0:
            break
        await asyncio.sleep(0.05)
    assert ("default", "vanish") not in server.engine.sessions and server.engine.active_calls == 0
    # What the caller said before vanishing is still finished and published to subscribers.
    published = []
    while not published or published[-1]["type"] != "ended":
        published.append(await recv_json(subscriber))
    await subscriber.close()
    assert [e["type"] for e in published].count("transcript.final") == 1 and published[-1]["reason"] == "stop"
    # The server still serves the next call.
    events = await stream_ws(server.url, audio, speed=0)
    assert events[-1]["type"] == "ended"


async def test_health_ready_and_metrics(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = (await http.get("/readyz")).json()
        assert ready["status"] == "ready" and {m["name"] for m in ready["models"]} >= {"asr", "vad"}
        metrics = (await http.get("/metrics")).text
    for name in ("speechsvc_active_calls", "speechsvc_queue_depth", "speechsvc_rejections_total",
                 "speechsvc_endpoint_to_final_seconds_bucket", "speechsvc_asr_real_time_factor_ratio_bucket"):
        assert name in metrics


async def test_capacity_refuses_new_calls_cleanly() -> None:
    with LiveServer(max_calls=1) as small:
        first, ready = await start_call(small, call_id="only")
        assert ready["type"] == "ready"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(small.url)
        assert refused.value.response.status_code == 503
        await first.send(json.dumps({"type": "stop"}))
        assert (await closed(first))[0] == 1000
        async with httpx.AsyncClient(base_url=small.http) as http:
            assert 'speechsvc_rejections_total{reason="handshake"} 1.0' in (await http.get("/metrics")).text


async def test_duplicate_call_id_is_refused_1013(server: LiveServer) -> None:
    first, _ = await start_call(server, call_id="dup")
    second, error = await start_call(server, call_id="dup")
    assert error["type"] == "error" and error["code"] == "overloaded"
    assert (await closed(second))[0] == 1013
    await first.send(json.dumps({"type": "stop"}))
    await closed(first)


def test_pcm_helpers_round_trip() -> None:
    x = np.array([[0.5], [-0.5]], np.float32)
    assert to_pcm16(x).tolist() == [[16383], [-16383]]


async def test_graceful_shutdown_finishes_open_utterances() -> None:
    """SIGTERM to `speechsvc serve` mid-utterance: the utterance heard so far gets its final, then `ended`
    with reason shutdown, and the process stops every stage."""
    import signal
    import subprocess
    import sys

    from tests.support.net import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "speechsvc.cli", "serve", "--port", str(port), "--grpc-port", "0"],
                            stderr=subprocess.PIPE, text=True, env={**__import__("os").environ,
                                                                   "SPEECHSVC_AUDIOSOCKET_PORT": "-1"})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        audio = load_stream_audio(eval_path("long", "audio", "aishellsample_S0150_S0252_concat_read.wav"))
        call = asyncio.ensure_future(stream_ws(f"ws://127.0.0.1:{port}/v1/stream", audio, speed=1.0))
        await asyncio.sleep(5.5)  # inside the second utterance (4.1 s - 7.9 s)
        proc.send_signal(signal.SIGTERM)
        events = await asyncio.wait_for(call, 60)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) == 2 and finals[1]["utterance"] == 1  # the open one was finished, not dropped
    assert events[-1]["type"] == "ended" and events[-1]["reason"] == "shutdown"
    assert "stopped" in stderr
