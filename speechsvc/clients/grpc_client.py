"""gRPC client helper: stream a file to ``speechsvc.v1.Speech/StreamCall`` at real time and collect events
as the same dicts the WebSocket protocol sends (so callers and tests can treat both transports alike)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import json_format

from speechsvc.clients.ws import StreamAudio, paced
from speechsvc.protocol import GRPC_ONEOF
from speechsvc.v1 import pb, pb_grpc

EVENT_TYPES = {field: kind for kind, field in GRPC_ONEOF.items()}


def message_to_dict(message: pb.ServerMessage) -> dict[str, Any]:
    """A ``ServerMessage`` as the JSON-protocol event dict."""
    kind = message.WhichOneof("event")
    if kind == "extension":
        body: dict[str, Any] = {"type": message.extension.type}
        fields = json_format.MessageToDict(message.extension.fields)
    else:
        body = {"type": EVENT_TYPES[kind]}
        fields = json_format.MessageToDict(getattr(message, kind), preserving_proto_field_name=True,
                                           always_print_fields_with_no_presence=True)
    body.update(version=1, call_id=message.call_id, seq=message.seq)
    body.update(fields)
    for key in ("start_ms", "end_ms", "audio_ms", "speech_ms", "utterance"):
        if key in body:
            body[key] = int(body[key])  # int64 travels as a JSON string; Struct numbers as floats
    if kind == "ended":
        for leg in body["legs"]:
            leg.update({k: int(v) for k, v in leg.items() if k.endswith("_ms")})
    if message.emitted_at:
        body["emitted_at"] = message.emitted_at
    if message.metadata:
        body["metadata"] = dict(message.metadata)
    return body


async def stream_grpc(
    target: str,
    audio: StreamAudio,
    *,
    language: str = "zh",
    frame_ms: int = 100,
    speed: float = 1.0,
    call_id: str | None = None,
    partials: bool = True,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> list[dict[str, Any]]:
    """Stream ``audio`` over gRPC; return the events. Raises ``grpc.aio.AioRpcError`` on a non-OK status."""
    config = pb.CallConfig(
        call_id=call_id or "", encoding=pb.PCM16, sample_rate=audio.sample_rate, channels=audio.channels,
        language=language, disable_partials=not partials,
    )
    sent = {"ms": 0}

    async def requests() -> AsyncIterator[pb.ClientMessage]:
        yield pb.ClientMessage(config=config)
        async for media_ms, frame in paced(audio, frame_ms, speed):
            yield pb.ClientMessage(audio=frame)
            sent["ms"] = media_ms
        yield pb.ClientMessage(control=pb.Control(action=pb.Control.STOP))

    events: list[dict[str, Any]] = []
    channel = grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
    async with channel:
        stub = pb_grpc.SpeechStub(channel)
        async for message in stub.StreamCall(requests()):
            event = message_to_dict(message)
            event["received_at"] = time.time()
            event["sent_ms"] = sent["ms"]
            events.append(event)
            if on_event:
                on_event(event)
    return events
