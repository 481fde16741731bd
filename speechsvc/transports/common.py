"""What the WebSocket-speaking transports share: the one mapping of expected errors to close codes, sending a
JSON message to a peer that may have gone, and failing a connection with an error event and its close code."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

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
from speechsvc.protocol import error_event, event_dict

# Expected error -> RFC 6455 close code.
CLOSE_CODES: dict[type[SpeechsvcError], int] = {
    ProtocolError: 1008,  # policy violation
    Unauthorized: 1008,
    Forbidden: 1008,
    UnsupportedFormat: 1003,  # unsupported data
    InvalidAudio: 1007,  # invalid payload data
    MessageTooLarge: 1009,  # message too big
    Overloaded: 1013,  # try again later
    RateLimited: 1013,
    ShuttingDown: 1001,  # going away
    ModelUnavailable: 1011,
    InternalError: 1011,
}
# Longest close reason RFC 6455 allows is 123 bytes; keep well inside it (UTF-8).
CLOSE_REASON_CHARS = 60


class PeerGone(Exception):
    """The peer closed the connection; nothing more can be sent to it."""


def close_code(error: SpeechsvcError) -> int:
    return CLOSE_CODES.get(type(error), 1011)


def close_reason(error: SpeechsvcError) -> str:
    return str(error)[:CLOSE_REASON_CHARS]


async def send_json(ws: WebSocket, body: dict[str, Any]) -> None:
    """One JSON text message; a peer that has gone raises PeerGone."""
    try:
        await ws.send_text(json.dumps(body, ensure_ascii=False))
    except (RuntimeError, WebSocketDisconnect, OSError):
        raise PeerGone from None


async def close(ws: WebSocket, error: SpeechsvcError | None) -> None:
    """Close with 1000, or with the error's close code; quietly if the peer has gone."""
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        if error is None:
            await ws.close(1000)
        else:
            await ws.close(close_code(error), close_reason(error))


async def fail(ws: WebSocket, error: SpeechsvcError, call_id: str = "") -> None:
    """A fatal ``error`` event in the WebSocket protocol, then the close code for it."""
    with contextlib.suppress(PeerGone):
        await send_json(ws, event_dict(error_event(error, call_id)))
    await close(ws, error)
