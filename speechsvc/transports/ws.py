"""WebSocket transport, protocol v1: ``/v1/stream``.

Thin: it parses messages (:mod:`speechsvc.protocol`) and runs the call on
:func:`~speechsvc.transports.lifecycle.serve_call` like every platform adapter; expected errors become
WebSocket close codes through :mod:`speechsvc.transports.common`.

The upgrade needs the ``stream`` scope (``Authorization: Bearer``, or ``?access_token=`` for browsers); a refusal
is the HTTP status of the upgrade (401, 403, 429, 503). The call belongs to the key's tenant. A sender faster than
``max_realtime_factor`` x real time (after a burst) is slowed down, so it cannot stall other calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.responses import PlainTextResponse

from speechsvc.errors import (
    InvalidAudio,
    MessageTooLarge,
    Overloaded,
    ProtocolError,
    ShuttingDown,
    SpeechsvcError,
)
from speechsvc.protocol import (
    AudioMessage,
    FlushMessage,
    StartMessage,
    StopMessage,
    event_dict,
    parse_client_message,
)
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.security.access import access
from speechsvc.security.asgi import admit_websocket, deny_websocket
from speechsvc.security.limits import AudioPacer
from speechsvc.transports.common import PeerGone, close, fail, send_json
from speechsvc.transports.lifecycle import serve_call
from speechsvc.types import CallEvent

log = logging.getLogger(__name__)
router = APIRouter()

START_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 10.0
_CLOSING: set[asyncio.Task[None]] = set()  # closes of stalled clients in flight (a reference keeps them alive)


@router.websocket("/v1/stream")
@access("stream", "ws")
async def stream(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    if await admit_websocket(ws, "stream", "ws") is None:
        return
    gate = engine.guard.streams
    if gate.open >= gate.limit:
        engine.metrics.rejections.labels("stream_connections").inc()
        await deny_websocket(ws, Overloaded(f"too many open connections ({gate.limit}); retry later"))
        return
    with gate.hold():
        await _stream(ws, engine)


async def _stream(ws: WebSocket, engine: Engine) -> None:
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
    except (WebSocketDisconnect, PeerGone):
        return
    config = start.to_config(engine.settings.default_language)

    stalled: Overloaded | None = None
    send_timeout = engine.settings.send_timeout_s

    async def send(event: CallEvent) -> None:
        nonlocal stalled
        try:
            await asyncio.wait_for(send_json(ws, event_dict(event)), send_timeout)
        except TimeoutError:
            # The client stopped reading: tell it so (1013, as documented) instead of waiting for the keepalive
            # to drop it (1006). The call goes on for the subscriptions; the close unblocks its receive loop.
            stalled = Overloaded(f"client is not reading events (a send waited {send_timeout:g} s)")
            engine.metrics.rejections.labels("slow_reader").inc()
            closing = asyncio.get_running_loop().create_task(_close_stalled(ws, stalled))
            _CLOSING.add(closing)
            closing.add_done_callback(_CLOSING.discard)
            raise PeerGone from None

    async def receive(session: CallSession) -> SpeechsvcError | None:
        return await _receive_audio(ws, engine, session)

    try:
        error = await serve_call(engine, config, "ws", receive, send)
    except SpeechsvcError as e:
        if stalled is None:
            await fail(ws, e, config.call_id)
        return
    if stalled is None:
        await close(ws, error)


async def _close_stalled(ws: WebSocket, error: Overloaded) -> None:
    """Queue the 1013 close frame behind what the client has not read yet (bounded wait for its answer)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(close(ws, error), CLOSE_TIMEOUT_S)


async def _receive_start(ws: WebSocket, engine: Engine) -> StartMessage:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise PeerGone
    if message.get("bytes") is not None:
        raise ProtocolError("audio received before the start message; send a JSON start message first")
    text = message.get("text") or ""
    if len(text) > engine.settings.max_message_bytes:
        raise MessageTooLarge(f"start message of {len(text)} bytes is too large")
    parsed = parse_client_message(text)
    if not isinstance(parsed, StartMessage):
        raise ProtocolError(f"expected a start message first, got {parsed.type!r}")
    return parsed


async def _receive_audio(ws: WebSocket, engine: Engine, session: CallSession) -> SpeechsvcError | None:
    """Feed frames until ``stop`` (returns None) or a fatal error (returned); a client that disconnects
    raises PeerGone (what it said is still finished and published)."""
    limit = engine.settings.max_message_bytes
    pacer = AudioPacer(engine.settings.max_realtime_factor, engine.settings.realtime_burst_s)
    bytes_per_s = session.config.audio.bytes_for_ms(1000)
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
                if isinstance(parsed, FlushMessage):
                    session.flush()
                    continue
                if isinstance(parsed, StartMessage):
                    raise ProtocolError("call already started; send audio or stop")
                assert isinstance(parsed, AudioMessage)
                data = _b64(parsed.data)
            session.feed_bytes(data)
        except (InvalidAudio, ProtocolError) as e:
            session.report(e)  # the frame is dropped; the call goes on
        except ShuttingDown as e:
            return e
        await pacer.pace(len(data or b"") / bytes_per_s)
        await session.room()


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidAudio(f"audio.data is not valid base64: {e}") from None
