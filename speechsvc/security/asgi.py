"""Authentication on the HTTP/WebSocket surfaces (FastAPI/Starlette), for every router: the transports in
``speechsvc/transports`` call these, so a refused handshake looks the same everywhere.

WebSocket: :func:`authenticate_websocket` (raises) or :func:`admit_websocket` (refuses the upgrade itself and
returns None). A refusal is an HTTP response to the upgrade request (401 with ``WWW-Authenticate``, 403, 429,
503), never a silent close; where the server cannot send one, the socket is accepted and closed with 1008
(auth) or 1013 (limits) after an ``error`` event.

REST: :func:`require` is a FastAPI dependency factory returning the principal (401/403/429 otherwise).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable

from fastapi import HTTPException, Request, WebSocket
from starlette.responses import JSONResponse

from speechsvc.errors import Forbidden, Overloaded, RateLimited, ShuttingDown, SpeechsvcError, Unauthorized
from speechsvc.security.guard import Guard
from speechsvc.security.principal import Principal, Scope

HTTP_STATUS: dict[type[SpeechsvcError], int] = {
    Unauthorized: 401, Forbidden: 403, RateLimited: 429, Overloaded: 503, ShuttingDown: 503,
}
WS_CLOSE: dict[type[SpeechsvcError], int] = {
    Unauthorized: 1008, Forbidden: 1008, RateLimited: 1013, Overloaded: 1013, ShuttingDown: 1001,
}


def guard_of(app: object) -> Guard:
    guard: Guard = app.state.guard  # type: ignore[attr-defined]
    return guard


def _source(connection: Request | WebSocket) -> str:
    return connection.client.host if connection.client else ""


def http_status(error: SpeechsvcError) -> int:
    return HTTP_STATUS.get(type(error), 500)


def denial_headers(error: SpeechsvcError) -> dict[str, str]:
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="speechsvc"'}
    if isinstance(error, Overloaded):
        return {"Retry-After": "1"}
    return {}


async def authenticate_websocket(ws: WebSocket, scope: Scope, surface: str, query_token: bool = True) -> Principal:
    """The principal of a WebSocket upgrade, with ``scope``; call before ``accept``.

    Raises:
        Unauthorized, Forbidden, RateLimited: refuse the upgrade with :func:`deny_websocket`.
    """
    query = dict(ws.query_params) if query_token else None
    return guard_of(ws.app).authenticate_headers(dict(ws.headers), query, scope, surface, _source(ws))


async def deny_websocket(ws: WebSocket, error: SpeechsvcError) -> None:
    """Refuse an upgrade with an HTTP status (or, after accept, an error event and a close code)."""
    status = http_status(error)
    body = json.dumps({"type": "error", "code": error.code, "message": str(error), "fatal": True})
    try:
        await ws.send_denial_response(JSONResponse(json.loads(body), status_code=status,
                                                   headers=denial_headers(error)))
        return
    except RuntimeError:
        pass  # the server does not support denial responses, or the socket was already accepted
    with contextlib.suppress(RuntimeError, OSError):
        if ws.client_state.name == "CONNECTING":
            await ws.accept()
        await ws.send_text(body)
        await ws.close(WS_CLOSE.get(type(error), 1008), str(error)[:60])


async def admit_websocket(ws: WebSocket, scope: Scope, surface: str, query_token: bool = True) -> Principal | None:
    """:func:`authenticate_websocket`, refusing the upgrade itself; None when refused (return at once)."""
    try:
        return await authenticate_websocket(ws, scope, surface, query_token)
    except (Unauthorized, Forbidden, RateLimited) as e:
        await deny_websocket(ws, e)
        return None


def require(scope: Scope, surface: str = "rest") -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's principal with ``scope`` (headers only, never the query string)."""

    async def dependency(request: Request) -> Principal:
        try:
            return guard_of(request.app).authenticate_headers(dict(request.headers), None, scope, surface,
                                                              _source(request))
        except (Unauthorized, Forbidden, RateLimited) as e:
            raise HTTPException(http_status(e), str(e), headers=denial_headers(e)) from None

    return dependency
