"""gRPC transport (``grpc.aio``): ``speechsvc.v1.Speech`` on the same CallSession core as the WebSocket.

The first ``ClientMessage`` is the config (validated by the same schema as the WebSocket start message),
then audio (and any number of ``Control.FLUSH``: end the open utterances now, as the WebSocket ``flush``), then
an optional ``Control.STOP``. Events are the WebSocket events as protobuf. This module
is the single place where expected errors become gRPC status codes (:data:`STATUS`). Also served: the
standard health service (SERVING only once the engine is warmed up; public) and server reflection (``admin``
scope). Authentication: metadata ``authorization: Bearer <key>`` (:mod:`speechsvc.security.grpc_auth`); TLS, and
mutual TLS with ``grpc_tls_client_ca``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode
from speechsvc.batch.speakers import for_engine
from speechsvc.batch.transcribe import rewrite_segments, transcribe_audio_async
from speechsvc.config import Settings
from speechsvc.errors import (
    Forbidden,
    InternalError,
    InvalidAudio,
    MessageTooLarge,
    ModelUnavailable,
    Overloaded,
    ProtocolError,
    RateLimited,
    ShuttingDown,
    SpeechsvcError,
    Unauthorized,
    UnsupportedFormat,
)
from speechsvc.log import call_id_var
from speechsvc.protocol import GRPC_ONEOF, StartMessage, event_dict, parse_client_message
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.security.grpc_auth import AuthInterceptor, settle
from speechsvc.security.limits import AudioPacer
from speechsvc.speech.audio import decode_frame, decode_with_source_rate, resample, to_float
from speechsvc.transports.common import PeerGone
from speechsvc.transports.lifecycle import serve_call
from speechsvc.transports.reflection import enable_reflection
from speechsvc.types import (
    PIPELINE_RATE,
    AudioFormat,
    CallConfig,
    CallEvent,
    Encoding,
    Float32Array,
    Leg,
    fixed_language,
)
from speechsvc.v1 import pb, pb_grpc

log = logging.getLogger(__name__)

SERVICE = pb.DESCRIPTOR.services_by_name["Speech"].full_name
STATUS: dict[type[SpeechsvcError], grpc.StatusCode] = {
    ProtocolError: grpc.StatusCode.INVALID_ARGUMENT,
    UnsupportedFormat: grpc.StatusCode.INVALID_ARGUMENT,
    InvalidAudio: grpc.StatusCode.INVALID_ARGUMENT,
    MessageTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    ModelUnavailable: grpc.StatusCode.UNAVAILABLE,
    Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    InternalError: grpc.StatusCode.INTERNAL,
}
START_TIMEOUT_S = 10.0
# Events waiting for the client to read them (the call's own queue holds max_pending_events more).
OUTBOX = 64
ENCODINGS: dict[int, Encoding] = {
    pb.ENCODING_UNSPECIFIED: "pcm16", pb.PCM16: "pcm16", pb.MULAW: "mulaw", pb.ALAW: "alaw", pb.F32: "f32",
}
ENVELOPE = ("type", "version", "call_id", "seq", "emitted_at", "metadata")


def status_of(error: SpeechsvcError) -> grpc.StatusCode:
    return STATUS.get(type(error), grpc.StatusCode.INTERNAL)


def to_server_message(event: CallEvent) -> pb.ServerMessage:
    """An event as a ``ServerMessage``: the same fields as its JSON (:func:`speechsvc.protocol.event_dict`)."""
    body = event_dict(event)
    message = pb.ServerMessage(call_id=event.call_id, seq=event.seq, emitted_at=body.get("emitted_at", 0))
    message.metadata.update(event.metadata)
    payload = {k: v for k, v in body.items() if k not in ENVELOPE}
    field = GRPC_ONEOF.get(body["type"])
    if field is None:
        message.extension.type = body["type"]
        message.extension.fields.update(payload)
    else:
        json_format.ParseDict(payload, getattr(message, field), ignore_unknown_fields=True)
    return message


def config_from_proto(config: pb.CallConfig, default_language: str) -> CallConfig:
    """A proto config through the same schema (and messages) as the WebSocket start message."""
    start: dict[str, Any] = {
        "type": "start",
        "encoding": ENCODINGS.get(config.encoding, "unknown"),
        "sample_rate": config.sample_rate or PIPELINE_RATE,
        "channels": config.channels or 1,
        "partials": not config.disable_partials,
        "metadata": dict(config.metadata),
        "words": config.words,
        "hotwords": list(config.hotwords),
    }
    if config.call_id:
        start["call_id"] = config.call_id
    if config.legs:
        start["legs"] = list(config.legs)
    if config.language:
        start["language"] = config.language
    if config.HasField("redaction"):
        r = config.redaction
        start["redaction"] = {k: v for k, v in {
            "enabled": r.enabled if r.HasField("enabled") else None,
            "types": list(r.types) or None,
            "style": r.style or None,
        }.items() if v is not None}
    message = parse_client_message(json.dumps(start))
    assert isinstance(message, StartMessage)
    return message.to_config(default_language)


class SpeechServicer(pb_grpc.SpeechServicer):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Calls whose client vanished, finishing in the background (their finals still reach the bus).
        self._orphans: set[asyncio.Task[SpeechsvcError | None]] = set()

    async def StreamCall(
        self, request_iterator: AsyncIterator[pb.ClientMessage], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ServerMessage]:
        """One call on :func:`~speechsvc.transports.lifecycle.serve_call`, like the WebSocket API. The call runs in
        its own task; this RPC relays its events. A client that vanishes (cancels, disconnects) ends the call
        normally: what was heard is finished and published on the subscriptions and webhooks, then ``ended``."""
        engine = self.engine

        async def refuse(code: grpc.StatusCode, details: str) -> None:
            await settle(request_iterator)  # so the client reads the status, not a failed write of its own
            await context.abort(code, details)

        try:
            first = await asyncio.wait_for(anext(request_iterator), START_TIMEOUT_S)
        except StopAsyncIteration:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty stream: the first message must be a config")
        except TimeoutError:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"no config within {START_TIMEOUT_S:.0f} s")
        except DecodeError:
            await refuse(grpc.StatusCode.INVALID_ARGUMENT, "the first message is not a valid ClientMessage")
        if first.WhichOneof("message") != "config":
            await refuse(grpc.StatusCode.INVALID_ARGUMENT,
                         "audio received before the config; the first message must be a config")
        try:
            config = config_from_proto(first.config, engine.settings.default_language)
        except SpeechsvcError as e:
            await refuse(status_of(e), str(e))
        outbox: asyncio.Queue[CallEvent] = asyncio.Queue(maxsize=OUTBOX)
        gone = asyncio.Event()

        async def send(event: CallEvent) -> None:
            if gone.is_set():
                raise PeerGone
            await outbox.put(event)

        async def receive(session: CallSession) -> SpeechsvcError | None:
            reading = asyncio.ensure_future(self._read(request_iterator, session))
            vanished = asyncio.ensure_future(gone.wait())
            try:
                await asyncio.wait({reading, vanished}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                vanished.cancel()
            if not reading.done():
                reading.cancel()
                raise PeerGone
            return reading.result()

        call = asyncio.ensure_future(serve_call(engine, config, "grpc", receive, send))
        getter: asyncio.Future[CallEvent] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(outbox.get())
                await asyncio.wait({getter, call}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    break
                yield to_server_message(getter.result())
            while not outbox.empty():
                yield to_server_message(outbox.get_nowait())
            try:
                failed = call.result()
            except SpeechsvcError as e:  # admission, or the events ended first (shutdown, client not reading)
                failed = e
        finally:
            if getter is not None:
                getter.cancel()
            if not call.done():  # the client vanished, or the RPC was cancelled
                gone.set()
                self._orphans.add(call)
                call.add_done_callback(self._orphan_done)
        if failed is not None:
            await refuse(status_of(failed), str(failed))
        await settle(request_iterator)  # anything sent after STOP is dropped, so the client reads OK, not a write error

    def _orphan_done(self, task: asyncio.Task[SpeechsvcError | None]) -> None:
        self._orphans.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("call of a vanished gRPC client ended: %s", task.exception())

    async def _read(self, requests: AsyncIterator[pb.ClientMessage], session: CallSession) -> SpeechsvcError | None:
        """Feed audio until STOP or the end of the request stream (None), or a fatal error (returned)."""
        settings = self.engine.settings
        pacer = AudioPacer(settings.max_realtime_factor, settings.realtime_burst_s)
        bytes_per_s = session.config.audio.bytes_for_ms(1000)
        try:
            async for message in requests:
                kind = message.WhichOneof("message")
                if kind == "control" and message.control.action == pb.Control.STOP:
                    return None
                if kind == "control" and message.control.action == pb.Control.FLUSH:
                    session.flush()
                    continue
                try:
                    if kind == "audio":
                        session.feed_bytes(message.audio)
                    else:
                        raise ProtocolError(f"unexpected {kind or 'empty'} message during a call; send audio or STOP")
                except (InvalidAudio, ProtocolError) as e:
                    session.report(e)  # the frame is dropped; the call goes on
                await pacer.pace(len(message.audio) / bytes_per_s)
                await session.room()
        except ShuttingDown as e:
            return e
        except grpc.aio.AioRpcError as e:  # pragma: no cover - depends on grpc's version
            log.info("gRPC request stream failed: %s", e.code())
            raise PeerGone from None
        except DecodeError:
            # A message that is not a ClientMessage: the stream cannot be trusted any further.
            return ProtocolError("a message of the request stream is not a valid ClientMessage")
        except (grpc.RpcError, asyncio.InvalidStateError) as e:
            return ProtocolError(f"request stream failed: {type(e).__name__}")
        return None

    async def Transcribe(
        self, request: pb.TranscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranscribeResponse:
        return await self._transcribe(request, context)

    async def TranscribeStream(
        self, request_iterator: AsyncIterator[pb.TranscribeRequest], context: grpc.aio.ServicerContext
    ) -> pb.TranscribeResponse:
        """A recording of any length in as many messages as it takes; ``config``/``language`` from the first."""
        limit = self.engine.settings.max_upload_bytes
        first: pb.TranscribeRequest | None = None
        parts: list[bytes] = []
        size = 0
        async for message in request_iterator:
            if first is None:
                first = message
            size += len(message.audio)
            if size > limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                    f"recording exceeds the {limit}-byte upload limit (SPEECHSVC_MAX_UPLOAD_BYTES)")
            parts.append(message.audio)
        if first is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty stream: send the recording's bytes")
        assert first is not None  # abort raises
        request = pb.TranscribeRequest(audio=b"".join(parts), language=first.language)
        if first.HasField("config"):
            request.config.CopyFrom(first.config)
        parts.clear()
        return await self._transcribe(request, context)

    async def _transcribe(
        self, request: pb.TranscribeRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranscribeResponse:
        engine = self.engine
        language = request.language or engine.settings.default_language
        max_s = engine.settings.transcribe_max_s
        try:
            if language != "auto" and language not in engine.settings.languages:
                raise UnsupportedFormat(f"language {language!r} is not supported; use one of "
                                        f"{[*engine.settings.languages, 'auto']}")
            if not request.audio:
                raise InvalidAudio("no audio: send the recording's bytes in `audio`")
            if request.HasField("config"):
                raw = request.config
                legs: tuple[Leg, ...] = ("customer",) if (raw.channels or 1) == 1 else ("customer", "agent")
                fmt = engine.check(CallConfig(
                    "transcribe", AudioFormat(ENCODINGS.get(raw.encoding, "pcm16"), raw.sample_rate or PIPELINE_RATE,
                                              raw.channels or 1), legs=legs,
                )).audio
                if len(request.audio) / fmt.frame_bytes / fmt.sample_rate > max_s:
                    raise MessageTooLarge(f"recording is longer than the {max_s:.0f} s limit")
                audio = await asyncio.to_thread(_raw_audio, request.audio, fmt)
                rate = fmt.sample_rate
            else:
                audio, rate = await asyncio.to_thread(decode_with_source_rate, io.BytesIO(request.audio), max_s)
            legs, segments = await transcribe_audio_async(
                audio, engine.asr, engine.vad_model, engine.vad_options, fixed_language(language),
                punctuation=engine.settings.punctuation, speaker_split=for_engine(engine, request.speakers or None),
                source_rate=rate,
            )
        except SpeechsvcError as e:
            await context.abort(status_of(e), str(e))
        analyzer = CallAnalyzer(engine.stages, CallInfo("transcribe", legs, Mode.BATCH), engine.metrics)
        response = pb.TranscribeResponse(duration_s=round(audio.shape[1] / PIPELINE_RATE, 3), legs=list(legs))
        for s in rewrite_segments(segments, analyzer):  # PII redaction
            segment = response.segments.add(leg=s.leg, index=s.index, start_ms=s.start_ms, end_ms=s.end_ms,
                                            text=s.text, language=s.language, confidence=s.confidence,
                                            speaker=s.speaker or "")
            for r in s.redactions:
                json_format.ParseDict(asdict(r), segment.redactions.add())
        return response


def _raw_audio(data: bytes, fmt: AudioFormat) -> Float32Array:
    """Raw frames of a Transcribe request → 16 kHz float32 of shape (channels, n) (blocking: in a thread)."""
    pcm = decode_frame(data, fmt)
    if pcm.shape[0] < fmt.sample_rate // 100:
        raise InvalidAudio(f"{pcm.shape[0]} samples is shorter than 10 ms of audio")
    if fmt.sample_rate != PIPELINE_RATE:
        return resample(to_float(pcm), fmt.sample_rate, PIPELINE_RATE).T.reshape(fmt.channels, -1)
    return to_float(pcm).T


class CallIdInterceptor(grpc.aio.ServerInterceptor):
    """Puts a call/request id in the logging context of every RPC (``x-call-id`` metadata, else a new id);
    StreamCall replaces it with the call id from its config."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        metadata = dict(handler_call_details.invocation_metadata or ())
        call_id_var.set(str(metadata.get("x-call-id") or f"rpc-{uuid.uuid4().hex[:8]}"))
        return await continuation(handler_call_details)


@dataclass
class GrpcServer:
    server: grpc.aio.Server
    port: int
    health_task: asyncio.Task[None]

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, give running calls ``grace_s`` to finish, then cancel them."""
        self.health_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.health_task
        await self.server.stop(grace_s)


async def start_grpc_server(engine: Engine, settings: Settings) -> GrpcServer:
    """Start the gRPC server on ``settings.grpc_port`` (0 = a free port; see ``GrpcServer.port``)."""
    server = grpc.aio.server(
        interceptors=[CallIdInterceptor(), AuthInterceptor(engine.guard)],
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", 64 << 20),
        ],
    )
    pb_grpc.add_SpeechServicer_to_server(SpeechServicer(engine), server)
    health_servicer = health.aio.HealthServicer() if hasattr(health, "aio") else health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    enable_reflection((SERVICE, health.SERVICE_NAME), server)  # v1 and v1alpha
    address = f"{settings.host}:{settings.grpc_port}"
    if settings.grpc_tls_cert and settings.grpc_tls_key:
        client_ca = settings.grpc_tls_client_ca.read_bytes() if settings.grpc_tls_client_ca else None
        credentials = grpc.ssl_server_credentials(
            [(settings.grpc_tls_key.read_bytes(), settings.grpc_tls_cert.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,  # mutual TLS: only clients with a certificate of this CA
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    await server.start()
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING

    async def track_readiness() -> None:
        last = None
        while True:
            status = serving if engine.ready else not_serving
            if status != last:
                for name in ("", SERVICE):
                    await _set(health_servicer, name, status)
                last = status
            await asyncio.sleep(0.1)

    task = asyncio.get_running_loop().create_task(track_readiness())
    mode = ("mTLS" if settings.grpc_tls_client_ca else "TLS") if settings.grpc_tls_cert else "plaintext"
    log.info("gRPC listening on %s:%d (%s)", settings.host, port, mode)
    return GrpcServer(server, port, task)


async def _set(servicer: Any, name: str, status: int) -> None:
    result = servicer.set(name, status)
    if asyncio.iscoroutine(result):
        await result
