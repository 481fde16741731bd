"""gRPC transport: a real grpc.aio client against the in-process server, real audio, parity with WebSocket."""

from __future__ import annotations

import asyncio
import wave

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from speechsvc.clients.grpc_client import stream_grpc
from speechsvc.clients.ws import StreamAudio, load_stream_audio, stream_ws
from speechsvc.evaluation.scoring import error_rate
from speechsvc.v1 import pb, pb_grpc
from tests.support.datasets import eval_path, manifest
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.model  # real models and a real server

FAST = 4.0


def short_zh() -> StreamAudio:
    return load_stream_audio(eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0005.wav"))


Result = tuple[list[pb.ServerMessage], grpc.aio.AioRpcError | None]


async def call(target: str, messages: list[pb.ClientMessage]) -> Result:
    async def requests():  # type: ignore[no-untyped-def]
        for m in messages:
            yield m

    out: list[pb.ServerMessage] = []
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            async for message in pb_grpc.SpeechStub(channel).StreamCall(requests()):
                out.append(message)
        except grpc.aio.AioRpcError as e:
            return out, e
    return out, None


def config(**kw: object) -> pb.ClientMessage:
    return pb.ClientMessage(config=pb.CallConfig(**kw))  # type: ignore[arg-type]


STOP = pb.ClientMessage(control=pb.Control(action=pb.Control.STOP))


async def test_events_in_order_with_partials_and_finals(server: LiveServer) -> None:
    audio = load_stream_audio(eval_path("long", "audio", "aishellsample_S0150_S0252_concat_read.wav"))
    audio = StreamAudio(audio.pcm[: 16000 * 20], 16000, 1)
    events = await stream_grpc(server.grpc_target, audio, speed=FAST, call_id="grpc-order")
    types = [e["type"] for e in events]
    assert types[0] == "ready" and types[-1] == "ended" and "transcript.partial" in types
    assert [e["seq"] for e in events] == list(range(len(events)))
    finals = [e for e in events if e["type"] == "transcript.final"]
    assert len(finals) >= 4 and all(e["call_id"] == "grpc-order" for e in events)
    assert [f["utterance"] for f in finals] == sorted(f["utterance"] for f in finals)
    assert "想听歌曲" in "".join(f["text"] for f in finals)


async def test_parity_with_websocket(server: LiveServer) -> None:
    """The same file, partials off, gives the same events over both transports (seq, type, leg, times, text)."""
    row = next(r for r in manifest("asr_zh") if r["id"].startswith("mossttsd"))
    audio = load_stream_audio(eval_path("asr_zh", row["file"]))
    ws_events = await stream_ws(server.url, audio, speed=0, partials=False, call_id="parity-ws")
    grpc_events = await stream_grpc(server.grpc_target, audio, speed=0, partials=False, call_id="parity-grpc")
    keys = ("type", "leg", "utterance", "start_ms", "end_ms", "text", "language", "stable_text")

    def finals(events: list[dict]) -> list[tuple]:
        return [tuple(e.get(k) for k in keys) for e in events if e["type"] == "transcript.final"]

    def analysis(events: list[dict]) -> set[tuple]:
        # Analysis of utterance k may overtake the final of k+1, so these compare as sets.
        return {(e["type"], e["utterance"], e.get("label"), e.get("negativity"), e.get("kind"))
                for e in events if e["type"] in ("intent", "sentiment", "escalation")}

    assert finals(ws_events) == finals(grpc_events) and finals(ws_events)
    assert analysis(ws_events) == analysis(grpc_events)
    assert {e["type"] for e in analysis_events(grpc_events)} == {"intent", "sentiment"}
    assert [e["seq"] for e in grpc_events] == list(range(len(grpc_events)))
    assert ws_events[-1]["legs"] == grpc_events[-1]["legs"]
    assert grpc_events[0]["type"] == "ready" and grpc_events[-1]["type"] == "ended"


def analysis_events(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] in ("intent", "sentiment", "escalation")]


async def test_health_serving_only_when_ready_and_reflection(server: LiveServer) -> None:
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="speechsvc.v1.Speech")
        assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
        server.engine.ready = False  # as before warm-up finishes
        try:
            for _ in range(50):
                if (await health.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    break
                await asyncio.sleep(0.05)
            assert (await health.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        finally:
            server.engine.ready = True
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in responses for s in r.list_services_response.service]
    assert "speechsvc.v1.Speech" in names and "grpc.health.v1.Health" in names


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([pb.ClientMessage(audio=b"\x00\x00" * 160)], "before the config"),
        ([config(sample_rate=4000)], "sample_rate 4000"),
        ([config(channels=3)], "channels"),
        ([config(channels=2, legs=["customer"])], "one leg per channel"),
        ([config(call_id="bad id")], "call_id"),
        ([], "empty stream"),
    ],
)
async def test_bad_calls_get_invalid_argument(server: LiveServer, messages: list, match: str) -> None:
    events, error = await call(server.grpc_target, messages)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert match in (error.details() or "") and events == []


async def test_bad_frames_mid_call_are_reported_and_the_call_goes_on(server: LiveServer) -> None:
    audio = short_zh()
    frames = [pb.ClientMessage(audio=f) for _, f in audio.frames(100)]
    messages = [config(call_id="grpc-bad"), pb.ClientMessage(audio=b"\x01\x02\x03"), config(), *frames, STOP]
    events, error = await call(server.grpc_target, messages)
    assert error is None
    kinds = [m.WhichOneof("event") for m in events]
    assert kinds[:3] == ["ready", "error", "error"] and kinds[-1] == "ended"
    assert "not a whole number" in events[1].error.message and not events[1].error.fatal
    assert "unexpected config" in events[2].error.message
    assert any("度" in m.final.text for m in events if m.WhichOneof("event") == "final")


async def test_oversized_message_is_resource_exhausted(server: LiveServer) -> None:
    big = pb.ClientMessage(audio=b"\x00" * (server.settings.max_message_bytes + 10))
    _, error = await call(server.grpc_target, [config(), big])
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_capacity_is_resource_exhausted() -> None:
    with LiveServer(grpc=True, max_calls=1) as small:
        first_started = asyncio.Event()
        release = asyncio.Event()

        async def hold():  # type: ignore[no-untyped-def]
            yield config(call_id="holder")
            first_started.set()
            await release.wait()
            yield STOP

        async with grpc.aio.insecure_channel(small.grpc_target) as channel:
            held = pb_grpc.SpeechStub(channel).StreamCall(hold())
            ready = await held.read()
            assert ready.WhichOneof("event") == "ready"
            _, error = await call(small.grpc_target, [config(call_id="second")])
            assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "capacity" in (error.details() or "")
            release.set()
            rest = []
            while (message := await held.read()) != grpc.aio.EOF:
                rest.append(message)
            assert rest[-1].WhichOneof("event") == "ended"


async def test_client_cancel_frees_the_session(server: LiveServer) -> None:
    audio = short_zh()

    async def requests():  # type: ignore[no-untyped-def]
        yield config(call_id="grpc-vanish")
        for _, frame in audio.frames(100):
            yield pb.ClientMessage(audio=frame)
        await asyncio.sleep(30)

    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        rpc = pb_grpc.SpeechStub(channel).StreamCall(requests())
        assert (await rpc.read()).WhichOneof("event") == "ready"
        await asyncio.sleep(0.3)
        rpc.cancel()
    for _ in range(100):
        if ("default", "grpc-vanish") not in server.engine.sessions:
            break
        await asyncio.sleep(0.05)
    assert ("default", "grpc-vanish") not in server.engine.sessions and server.engine.active_calls == 0


async def test_concurrent_calls_stay_separate(server: LiveServer) -> None:
    rows = [next(r for r in manifest("asr_zh") if r["id"].startswith(p)) for p in ("cosyvoice", "kimiaudio")]
    audios = [load_stream_audio(eval_path("asr_zh", r["file"])) for r in rows]
    results = await asyncio.gather(*(stream_grpc(server.grpc_target, a, speed=FAST, call_id=f"g-{i}")
                                     for i, a in enumerate(audios)))
    texts = ["".join(e["text"] for e in ev if e["type"] == "transcript.final") for ev in results]
    assert error_rate(rows[0]["reference_text"], texts[0], "zh") < 0.3
    assert error_rate(rows[1]["reference_text"], texts[1], "zh") < 0.3
    assert error_rate(rows[0]["reference_text"], texts[1], "zh") > 0.7


async def test_unary_transcribe_file_and_raw_frames(server: LiveServer) -> None:
    path = eval_path("asr_zh", "audio", "aishellsample_BAC009S0150W0001.wav")
    async with grpc.aio.insecure_channel(server.grpc_target) as channel:
        stub = pb_grpc.SpeechStub(channel)
        whole = await stub.Transcribe(pb.TranscribeRequest(audio=path.read_bytes(), language="zh"))
        assert whole.legs == ["mixed"] and "设定" in whole.segments[0].text and whole.duration_s > 2
        with wave.open(str(path)) as wav:  # the file's own PCM16 samples, as raw frames
            pcm = wav.readframes(wav.getnframes())
        raw = await stub.Transcribe(pb.TranscribeRequest(audio=pcm, config=pb.CallConfig(sample_rate=16000)))
        assert raw.segments[0].text == whole.segments[0].text
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.Transcribe(pb.TranscribeRequest(audio=b"garbage bytes"))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
