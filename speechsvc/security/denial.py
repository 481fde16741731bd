"""How a refusal looks on the HTTP/WebSocket surfaces: the HTTP status and headers of each expected error, the
WebSocket close code after accept, and an upgrade refused at the ASGI level."""

from __future__ import annotations

import json
from typing import Any

from speechsvc.errors import Forbidden, Overloaded, RateLimited, ShuttingDown, SpeechsvcError, Unauthorized

HTTP_STATUS: dict[type[SpeechsvcError], int] = {
    Unauthorized: 401, Forbidden: 403, RateLimited: 429, Overloaded: 503, ShuttingDown: 503,
}
WS_CLOSE: dict[type[SpeechsvcError], int] = {
    Unauthorized: 1008, Forbidden: 1008, RateLimited: 1013, Overloaded: 1013, ShuttingDown: 1001,
}


def http_status(error: SpeechsvcError) -> int:
    return HTTP_STATUS.get(type(error), 500)


def denial_headers(error: SpeechsvcError) -> dict[str, str]:
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="speechsvc"'}
    if isinstance(error, Overloaded | RateLimited):
        return {"Retry-After": "1"}
    return {}


def _header_list(error: SpeechsvcError) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json")] + [
        (k.lower().encode(), v.encode()) for k, v in denial_headers(error).items()]


async def deny_http(send: Any, error: SpeechsvcError) -> None:
    """An HTTP refusal whose body FastAPI-style clients (``detail``) and OpenAI's SDKs (``error.message``) read."""
    kind = "authentication_error" if isinstance(error, Unauthorized) else error.code
    body = json.dumps({"detail": str(error),
                       "error": {"message": str(error), "type": kind, "param": None, "code": error.code}})
    await send({"type": "http.response.start", "status": http_status(error), "headers": _header_list(error)})
    await send({"type": "http.response.body", "body": body.encode()})


async def deny_upgrade(scope: dict[str, Any], receive: Any, send: Any, error: SpeechsvcError) -> None:
    """Refuse a WebSocket upgrade at the ASGI level: an HTTP response when the server supports it, else a close
    before accept (which servers answer with 403)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    body = json.dumps({"type": "error", "code": error.code, "message": str(error), "fatal": True}).encode()
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": http_status(error),
                    "headers": _header_list(error)})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": WS_CLOSE.get(type(error), 1008)})
