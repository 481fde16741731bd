"""FreeSWITCH mod_audio_fork adapter: ``ws://HOST/v1/audio_fork`` (FreeSWITCH connects, subprotocol
``audio.drachtio.org``).

    uuid_audio_fork <uuid> start ws://HOST:8080/v1/audio_fork?rate=8000&mix=stereo <mix> <8k|16k> {"callId":"..."}

mod_audio_fork tells the server neither the mix type nor the rate, so they come from the URL (``mix`` =
mono | mixed | stereo, ``rate`` = 8000 | 16000 or 8k | 16k; also ``language``) or from metadata keys
``mixType`` / ``sampleRate``. The first text frame is the metadata JSON; then binary L16 frames (stereo:
caller in channel 0 = customer leg, callee in channel 1 = agent leg). Events go back as
``{"type": "transcription", "data": <event>}`` (FreeSWITCH raises ``mod_audio_fork::transcription``) and
errors as ``{"type": "error", "data": ...}``; all events also reach the event bus, keyed by the call id
(metadata ``callId``/``uuid``/``call_id``, else the ``call_id`` query parameter, else a new one).
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from speechsvc.errors import InvalidAudio, ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.protocol import event_dict
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.transports.common import close, close_code, close_reason, send_json
from speechsvc.transports.lifecycle import serve_call
from speechsvc.types import AudioFormat, CallConfig, CallEvent, Leg

log = logging.getLogger(__name__)
router = APIRouter()

SUBPROTOCOL = "audio.drachtio.org"
MIX_LEGS: dict[str, tuple[Leg, ...]] = {"mono": ("customer",), "mixed": ("mixed",), "stereo": ("customer", "agent")}
RATES = {"8k": 8000, "8000": 8000, "16k": 16000, "16000": 16000}


def call_config(metadata: dict[str, Any], query: dict[str, str], default_language: str) -> CallConfig:
    mix = str(query.get("mix") or metadata.get("mixType") or "mono").lower()
    rate_text = str(query.get("rate") or metadata.get("sampleRate") or "8000").lower()
    if mix not in MIX_LEGS:
        raise UnsupportedFormat(f"mix {mix!r} is not supported; use mono, mixed or stereo")
    if rate_text not in RATES:
        raise UnsupportedFormat(f"rate {rate_text!r} is not supported; use 8k or 16k")
    call_id = str(metadata.get("callId") or metadata.get("uuid") or metadata.get("call_id")
                  or query.get("call_id") or uuid.uuid4().hex)
    legs = MIX_LEGS[mix]
    return CallConfig(
        call_id=call_id,
        audio=AudioFormat("pcm16", RATES[rate_text], len(legs)),
        legs=legs,
        language=str(query.get("language") or metadata.get("language") or default_language),
        metadata={str(k): str(v) for k, v in metadata.items() if isinstance(v, str | int | float)},
    )


@router.websocket("/v1/audio_fork")
async def audio_fork(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        first = await ws.receive()
        if first["type"] == "websocket.disconnect":
            return
        if first.get("text") is None:
            raise ProtocolError("the first frame must be the metadata JSON text frame")
        try:
            metadata = json.loads(first["text"]) if first["text"].strip() else {}
        except json.JSONDecodeError as e:
            raise ProtocolError(f"metadata is not valid JSON: {e}") from None
        if not isinstance(metadata, dict):
            metadata = {"metadata": json.dumps(metadata)}
        config = call_config(metadata, dict(ws.query_params), engine.settings.default_language)
    except SpeechsvcError as e:
        await _fail(ws, e)
        return

    async def send(event: CallEvent) -> None:
        kind = "error" if event.event.type == "error" else "transcription"
        await send_json(ws, {"type": kind, "data": event_dict(event)})

    async def receive(session: CallSession) -> SpeechsvcError | None:
        limit = engine.settings.max_message_bytes
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return None  # `uuid_audio_fork stop` or hangup: the normal end of a fork
            data = message.get("bytes")
            if data is None:
                log.debug("audio_fork text frame: %s", (message.get("text") or "")[:200])  # send_text, e.g. DTMF
                continue
            if len(data) > limit:
                return ProtocolError(f"frame of {len(data)} bytes exceeds the {limit}-byte limit")
            try:
                session.feed_bytes(data)
            except InvalidAudio as e:
                session.report(e)

    try:
        await serve_call(engine, config, "audio_fork", receive, send)
    except SpeechsvcError as e:
        await _fail(ws, e)
        return
    await close(ws, None)


async def _fail(ws: WebSocket, error: SpeechsvcError) -> None:
    body = {"type": "error", "data": {"code": error.code, "message": str(error), "fatal": True}}
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.send_text(json.dumps(body, ensure_ascii=False))
        await ws.close(close_code(error), close_reason(error))
