"""What every transport gained with the platform work: any input sample rate libswresample handles, the WebSocket
``flush`` message, gRPC transcription of recordings longer than one message (``TranscribeStream``, the way the
README's grpcurl example sends a real file), and server reflection under its ``v1`` name as well as ``v1alpha``.
Fake engine: a tone's transcript names its pitch, so these check the plumbing in seconds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import websockets
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

from speechsvc.errors import UnsupportedFormat
from speechsvc.speech.audio import check_format
from speechsvc.types import AudioFormat
from speechsvc.v1 import pb, pb_grpc
from tests.support.platforms import FakeServer, finals, quiet, tone, write_wav


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    with FakeServer(max_message_bytes=64 * 1024, transcribe_max_s=30) as s:
        from speechsvc.transports.grpc_server import start_grpc_server

        s.grpc = s.run(start_grpc_server(s.engine, s.settings.model_copy(update={"grpc_port": 0})))
        yield s
        s.run(s.grpc.stop(0.5))


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 24000, 32000, 44100, 64000, 96000, 192000])
def test_any_rate_libswresample_handles_is_accepted(rate: int) -> None:
    assert check_format(AudioFormat("pcm16", rate, 1)).sample_rate == rate


@pytest.mark.parametrize("rate", [0, 4000, 7999, 192001, 384000])
def test_rates_outside_the_range_are_refused_with_the_range(rate: int) -> None:
    with pytest.raises(UnsupportedFormat, match="from 8000 to 192000"):
        check_format(AudioFormat("pcm16", rate, 1))


async def ws_call(fake: FakeServer, start: dict, frames: list[bytes | str]) -> list[dict]:
    async with websockets.connect(fake.ws("/v1/stream")) as ws:
        await ws.send(json.dumps({"type": "start", **start}))
        for f in frames:
            await ws.send(f)
        return [json.loads(m) async for m in ws]


@pytest.mark.parametrize("rate", [44100, 24000, 11025])
async def test_websocket_call_at_an_uncommon_rate_is_resampled(fake: FakeServer, rate: int) -> None:
    pcm = np.concatenate([tone(500, 0.8, rate), quiet(0.8, rate)]).astype("<i2").tobytes()
    step = rate // 10 * 2  # 100 ms frames
    events = await ws_call(fake, {"sample_rate": rate, "call_id": f"rate-{rate}"},
                           [pcm[i : i + step] for i in range(0, len(pcm), step)] + [json.dumps({"type": "stop"})])
    assert events[0]["sample_rate"] == rate and [f["text"][:5] for f in finals(events)] == ["500hz"]
    assert events[-1]["legs"][0]["audio_ms"] == 1600


async def test_flush_finishes_the_open_utterance_without_ending_the_call(fake: FakeServer) -> None:
    """No pause after the speech, so only ``flush`` can finish it: its final comes before ``stop``, and the
    call goes on."""
    async with websockets.connect(fake.ws("/v1/stream")) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 8000, "call_id": "flush-1"}))
        await ws.send(tone(440, 1.0).astype("<i2").tobytes())
        await ws.send(json.dumps({"type": "flush"}))
        events = []
        while not finals(events):
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        await ws.send(tone(660, 1.0).astype("<i2").tobytes())
        await ws.send(json.dumps({"type": "stop"}))
        events += [json.loads(m) async for m in ws]
    assert [f["text"][:5] for f in finals(events)] == ["440hz", "660hz"]
    assert events[-1]["type"] == "ended" and not any(e["type"] == "error" for e in events)


async def test_a_one_call_subscription_closes_after_its_ended(fake: FakeServer) -> None:
    async with websockets.connect(fake.ws("/v1/calls/sub-closes/events")) as sub, \
            websockets.connect(fake.ws("/v1/events")) as everything:
        await asyncio.sleep(0.05)
        audio = np.concatenate([tone(440, 1.0), quiet(0.8)]).astype("<i2").tobytes()
        frames: list[bytes | str] = [audio[i : i + 1600] for i in range(0, len(audio), 1600)]
        await ws_call(fake, {"sample_rate": 8000, "call_id": "sub-closes"}, [*frames, json.dumps({"type": "stop"})])
        published = [json.loads(m) async for m in sub]  # ends when the server closes the socket
        assert published[-1]["type"] == "ended" and [f["text"][:5] for f in finals(published)] == ["440hz"]
        assert sub.close_code == 1000 and sub.close_reason == "call ended"
        seen = []
        while not seen or seen[-1]["type"] != "ended":  # the all-calls subscription stays open
            seen.append(json.loads(await asyncio.wait_for(everything.recv(), 10)))
        await everything.ping()


def chunks(data: bytes, size: int, **first: object) -> list[pb.TranscribeRequest]:
    parts = [pb.TranscribeRequest(audio=data[i : i + size]) for i in range(0, len(data), size)]
    for key, value in first.items():
        if key == "config":
            parts[0].config.CopyFrom(value)  # type: ignore[arg-type]
        else:
            setattr(parts[0], key, value)
    return parts


async def stream(stub: pb_grpc.SpeechStub, requests: list[pb.TranscribeRequest]) -> pb.TranscribeResponse:
    async def gen() -> AsyncIterator[pb.TranscribeRequest]:
        for r in requests:
            yield r

    return await stub.TranscribeStream(gen())


async def test_grpc_transcribe_stream_takes_a_recording_larger_than_one_message(fake: FakeServer,
                                                                                 tmp_path: Path) -> None:
    """A WAV of 20 s is 320 kB, five times the server's message limit here: unary Transcribe cannot take it;
    TranscribeStream takes it in pieces, from a container or as raw frames."""
    pcm = np.concatenate([quiet(1.0), tone(440, 1.0), quiet(8.0), tone(660, 1.0), quiet(9.0)])
    wav = write_wav(tmp_path / "call.wav", pcm).read_bytes()
    assert len(wav) > 64 * 1024 * 4
    async with grpc.aio.insecure_channel(f"127.0.0.1:{fake.grpc.port}") as channel:
        stub = pb_grpc.SpeechStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as unary:
            await stub.Transcribe(pb.TranscribeRequest(audio=wav, language="zh"))
        assert unary.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        whole = await stream(stub, chunks(wav, 48 * 1024, language="zh"))
        assert [s.text[:5] for s in whole.segments] == ["440hz", "660hz"] and whole.duration_s == pytest.approx(20)
        assert 9500 <= whole.segments[1].start_ms <= 10000  # the tone starts at 10 s (a 400 ms pad)
        raw = await stream(stub, chunks(pcm.astype("<i2").tobytes(), 40 * 1024,
                                        config=pb.CallConfig(sample_rate=8000)))
        assert [s.text for s in raw.segments] == [s.text for s in whole.segments]


async def test_grpc_transcribe_bounds_the_decoded_duration(fake: FakeServer, tmp_path: Path) -> None:
    long = write_wav(tmp_path / "long.flac", quiet(31.0)).read_bytes()  # a WAV named .flac: FFmpeg reads it anyway
    async with grpc.aio.insecure_channel(f"127.0.0.1:{fake.grpc.port}") as channel:
        stub = pb_grpc.SpeechStub(channel)
        for requests in (chunks(long, 48 * 1024), chunks(quiet(31.0).tobytes(), 48 * 1024,
                                                           config=pb.CallConfig(sample_rate=8000))):
            with pytest.raises(grpc.aio.AioRpcError) as too_long:
                await stream(stub, requests)
            assert too_long.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "30 s" in str(too_long.value)
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await stream(stub, [])
        assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
async def test_reflection_answers_under_v1_and_v1alpha(fake: FakeServer, version: str) -> None:
    """grpcurl, grpcui and Postman ask ``grpc.reflection.v1`` first; grpcio-reflection serves only v1alpha."""
    method = f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{fake.grpc.port}") as channel:
        info = channel.stream_stream(method,
                                     request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                     response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="speechsvc.v1.Speech"),
                    reflection_pb2.ServerReflectionRequest(
                        file_containing_symbol=f"grpc.reflection.{version}.ServerReflection")]
        replies = [r async for r in info(iter(requests))]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"speechsvc.v1.Speech", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"} <= names
    for reply, package in ((replies[1], "speechsvc.v1"), (replies[2], f"grpc.reflection.{version}")):
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in reply.file_descriptor_response.file_descriptor_proto]
        assert package in {f.package for f in files}, reply
    v1 = next(descriptor_pb2.FileDescriptorProto.FromString(b)
              for b in replies[2].file_descriptor_response.file_descriptor_proto)
    assert v1.service[0].method[0].input_type == f".grpc.reflection.{version}.ServerReflectionRequest"
