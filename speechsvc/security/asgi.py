"""Authentication on the HTTP/WebSocket surfaces (FastAPI/Starlette), for every router: the transports in
``speechsvc/transports`` call these, so a refused handshake looks the same everywhere.

WebSocket: :func:`authenticate_websocket` (raises) or :func:`admit_websocket` (refuses the upgrade itself and
returns None). A refusal is an HTTP response to the upgrade request (401 with ``WWW-Authenticate``, 403, 429,
503), never a silent close; where the server cannot send one, the socket is accepted and closed with 1008
(auth) or 1013 (limits) after an ``error`` event.

REST: :func:`require` is a FastAPI dependency factory returning the principal (401/403/429 otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import HTTPException, Request, WebSocket
from starlette.responses import JSONResponse

from speechsvc.errors import Forbidden, Overloaded, RateLimited, SpeechsvcError, Unauthorized
from speechsvc.security.access import Verifier, access
from speechsvc.security.denial import WS_CLOSE, denial_headers, deny_upgrade, http_status
from speechsvc.security.guard import Guard
from speechsvc.security.principal import Principal, Scope, principal_var

__all__ = [
    "PLATFORM_PATHS",
    "PlatformGuard",
    "Verifier",
    "admit_websocket",
    "authenticate_websocket",
    "denial_headers",
    "deny_websocket",
    "http_status",
    "require",
]


def guard_of(app: object) -> Guard:
    guard: Guard = app.state.guard  # type: ignore[attr-defined]
    return guard


def _source(connection: Request | WebSocket) -> str:
    return connection.client.host if connection.client else ""


def _established(connection: Request | WebSocket, scope: Scope) -> Principal | None:
    """The principal the access gate established for this connection (checked against ``scope``), if any."""
    principal: Principal | None = connection.scope.get("state", {}).get("principal")
    if principal is not None:
        principal.require(scope)
        principal_var.set(principal)
    return principal


async def authenticate_websocket(ws: WebSocket, scope: Scope, surface: str, query_token: bool = True) -> Principal:
    """The principal of a WebSocket upgrade, with ``scope``; call before ``accept``. Behind the access gate
    (:mod:`speechsvc.security.access`, every route of the app) this is the principal it established.

    Raises:
        Unauthorized, Forbidden, RateLimited: refuse the upgrade with :func:`deny_websocket`.
    """
    established = _established(ws, scope)
    if established is not None:
        return established
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
    """A FastAPI dependency: the request's principal with ``scope`` (headers only, never the query string). It also
    declares the route's access to the gate (:func:`speechsvc.security.access.route_access`)."""

    @access(scope, surface)
    async def dependency(request: Request) -> Principal:
        try:
            established = _established(request, scope)
            if established is not None:
                return established
            return guard_of(request.app).authenticate_headers(dict(request.headers), None, scope, surface,
                                                              _source(request))
        except (Unauthorized, Forbidden, RateLimited) as e:
            raise HTTPException(http_status(e), str(e), headers=denial_headers(e)) from None

    return dependency


# ---- platform adapters ----------------------------------------------------------------------------------------

# WebSocket paths of the call-platform adapters, guarded here (in front of their routers) so that every adapter is
# authenticated, bounded and timed out the same way, whatever its own code does.
PLATFORM_PATHS = ("/v1/twilio", "/v1/audio_fork", "/v1/audiohook")


class PlatformGuard:
    """ASGI middleware for the platform adapters' WebSocket upgrades (authenticated before, by the access gate:
    ``Authorization: Bearer``/``Basic`` (mod_audio_fork's ``MOD_AUDIO_FORK_HTTP_AUTH_*``), ``X-API-KEY``
    (AudioHook), ``?access_token=``, or a platform's own verifier such as Twilio's ``X-Twilio-Signature``):

    - a bound on open platform connections (503 at the upgrade);
    - a start timeout: a connection that sends nothing within ``start_timeout_s`` of the upgrade is closed.
    """

    def __init__(self, app: Any, guard: Callable[[], Guard], start_timeout_s: float = 10.0) -> None:
        self.app = app
        self.guard = guard
        self.start_timeout_s = start_timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "websocket" or not path.startswith(PLATFORM_PATHS):
            await self.app(scope, receive, send)
            return
        gate = self.guard().streams
        if gate.open >= gate.limit:
            self.guard().metrics.rejections.labels("stream_connections").inc()
            await deny_upgrade(scope, receive, send, Overloaded(f"too many open connections ({gate.limit})"))
            return
        with gate.hold():
            await self.app(scope, self._timed(receive), send)

    def _timed(self, receive: Any) -> Any:
        """``receive`` with a deadline on the first message after the upgrade (the platform's start)."""
        state = {"accepted": False, "started": False}
        timeout = self.start_timeout_s

        async def timed() -> dict[str, Any]:
            if state["accepted"] and not state["started"]:
                try:
                    message: dict[str, Any] = await asyncio.wait_for(receive(), timeout)
                except TimeoutError:
                    return {"type": "websocket.disconnect", "code": 1008, "reason": "no start within timeout"}
                state["started"] = True
                return message
            message = await receive()
            if message["type"] == "websocket.connect":
                state["accepted"] = True
            return message

        return timed
