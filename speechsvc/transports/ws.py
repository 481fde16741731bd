"""WebSocket transport, protocol v1: ``/v1/stream``.

Thin: it validates messages and runs the call on :func:`~speechsvc.transports.adapter.serve_call` like every
platform adapter; it is the single place where expected errors become WebSocket close codes (see
:data:`CLOSE_CODES`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.responses import PlainTextResponse

from speechsvc.engine import Engine
from speechsvc.errors import (
    InvalidAudio,
    MessageTooLarge,
    ModelUnavailable,
    Overloaded,
    ProtocolError,
    ShuttingDown,
    SpeechsvcError,
    UnsupportedFormat,
)
from speechsvc.protocol import (
    AudioMessage,
    StartMessage,
    StopMessage,
    parse_client_message,
    ready_event,
)
from speechsvc.session import CallSession
from speechsvc.transports.adapter import PeerGone, serve_call

log = logging.getLogger(__name__)
router = APIRouter()

# Expected error -> RFC 6455 close code.
CLOSE_CODES: dict[type[SpeechsvcError], int] = {
    ProtocolError: 1008,  # policy violation
    UnsupportedFormat: 1003,  # unsupported data
    InvalidAudio: 1007,  # invalid payload data
    MessageTooLarge: 1009,  # message too big
    Overloaded: 1013,  # try again later
    ShuttingDown: 1001,  # going away
    ModelUnavailable: 1011,
}
START_TIMEOUT_S = 10.0


def close_code(error: SpeechsvcError) -> int:
    return CLOSE_CODES.get(type(error), 1011)


async def fail(ws: WebSocket, error: SpeechsvcError, call_id: str = "") -> None:
    """A fatal error event, then the close code for it (every JSON-speaking adapter uses this)."""
    message = {"type": "error", "version": 1, "call_id": call_id, "seq": -1, "code": error.code,
               "message": str(error), "fatal": True}
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await ws.send_text(json.dumps(message, ensure_ascii=False))
        await ws.close(close_code(error), str(error)[:120])


async def send_json(ws: WebSocket, body: dict[str, Any]) -> None:
    """One JSON text message; a peer that has gone raises PeerGone (every JSON-speaking adapter uses this)."""
    try:
        await ws.send_text(json.dumps(body, ensure_ascii=False))
    except (RuntimeError, WebSocketDisconnect):
        raise PeerGone from None


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    if not engine.ready or engine.active_calls >= engine.settings.max_calls:
        reason = "not ready" if not engine.ready else "at capacity"
        engine.metrics.rejections.labels("handshake").inc()
        with contextlib.suppress(RuntimeError):
            await ws.send_denial_response(PlainTextResponse(f"speechsvc {reason}; retry later", status_code=503))
            return
        await ws.accept()
        await fail(ws, Overloaded(f"speechsvc {reason}; retry later"))
        return
    await ws.accept()
    try:
        start = await asyncio.wait_for(_receive_start(ws, engine), START_TIMEOUT_S)
    except TimeoutError:
        await fail(ws, ProtocolError(f"no start message within {START_TIMEOUT_S:.0f} s"))
        return
    except SpeechsvcError as e:
        await fail(ws, e)
        return
    except WebSocketDisconnect:
        return
    await _run_call(ws, engine, start)


async def _receive_start(ws: WebSocket, engine: Engine) -> StartMessage:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if message.get("bytes") is not None:
        raise ProtocolError("audio received before the start message; send a JSON start message first")
    text = message.get("text") or ""
    if len(text) > engine.settings.max_message_bytes:
        raise MessageTooLarge(f"start message of {len(text)} bytes is too large")
    parsed = parse_client_message(text)
    if not isinstance(parsed, StartMessage):
        raise ProtocolError(f"expected a start message first, got {parsed.type!r}")  # type: ignore[attr-defined]
    return parsed


async def _run_call(ws: WebSocket, engine: Engine, start: StartMessage) -> None:
    try:
        config = start.to_config(engine.stream_options.default_language)
    except SpeechsvcError as e:
        await fail(ws, e, start.call_id)
        return

    send = functools.partial(send_json, ws)

    async def receive(session: CallSession) -> SpeechsvcError | None:
        await send(ready_event(config))
        return await _receive_audio(ws, engine, session)

    try:
        error = await serve_call(engine, config, "ws", receive, send)
    except SpeechsvcError as e:
        await fail(ws, e, config.call_id)
        return
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        if error is None:
            await ws.close(1000)
        else:
            await ws.close(close_code(error), str(error)[:120])


async def _receive_audio(ws: WebSocket, engine: Engine, session: CallSession) -> SpeechsvcError | None:
    """Feed frames until ``stop`` (returns None) or a fatal error (returned); a client that disconnects
    raises PeerGone (what it said is still finished and published)."""
    limit = engine.settings.max_message_bytes
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            log.info("client disconnected mid-call")
            raise PeerGone
        data = message.get("bytes")
        text = message.get("text")
        size = len(data) if data is not None else len(text or "")
        if size > limit:
            return MessageTooLarge(f"message of {size} bytes exceeds the {limit}-byte limit")
        try:
            if data is None:
                parsed = parse_client_message(text or "")
                if isinstance(parsed, StopMessage):
                    return None
                if isinstance(parsed, StartMessage):
                    raise ProtocolError("call already started; send audio or stop")
                assert isinstance(parsed, AudioMessage)
                data = _b64(parsed.data)
            session.feed_bytes(data)
        except (InvalidAudio, ProtocolError) as e:
            session.report(e)  # the frame is dropped; the call goes on
        except ShuttingDown as e:
            return e


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidAudio(f"audio.data is not valid base64: {e}") from None
