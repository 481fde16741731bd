"""Event subscriptions over WebSocket: ``/v1/calls/{call_id}/events`` (one call) and ``/v1/events`` (every
call). This is how an operator's application reads the transcripts, intents, emotion and escalations of calls
that came in through a platform adapter: each message is the event's JSON exactly as the call's own client
receives it. Read-only: text frames from the client are ignored.

Needs the ``subscribe`` scope. A subscriber sees its own tenant's calls only (call ids are unique per tenant, so
another tenant's call with the same id stays invisible); an ``admin`` sees every tenant's, or one tenant's with
``?tenant=``. A one-call subscription closes (1000) after that call's ``ended``; at shutdown a subscriber still
receives the finals and ``ended`` of the drained calls, then the socket closes with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from speechsvc.errors import Overloaded
from speechsvc.protocol import event_json
from speechsvc.runtime.bus import Subscription
from speechsvc.runtime.engine import Engine
from speechsvc.security.access import access
from speechsvc.security.asgi import admit_websocket, deny_websocket
from speechsvc.security.principal import Principal
from speechsvc.types import CallEnded

router = APIRouter()


async def _pump(ws: WebSocket, sub: Subscription, one_call: bool) -> None:
    async def send() -> None:
        async for event in sub.events():
            await ws.send_text(event_json(event))
            if one_call and event.type == CallEnded.TYPE:
                with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                    await ws.close(1000, "call ended")
                return
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await ws.close(1001, "server is shutting down")

    async def wait_for_close() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.ensure_future(send()), asyncio.ensure_future(wait_for_close())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError, WebSocketDisconnect):
            await asyncio.gather(*tasks, return_exceptions=True)


def _tenant(ws: WebSocket, principal: Principal) -> str | None:
    """The tenant whose events this subscriber receives; None = every tenant (admins only)."""
    if principal.is_admin:
        return ws.query_params.get("tenant") or None
    return principal.tenant


async def _subscribe(ws: WebSocket, call_id: str | None) -> None:
    engine: Engine = ws.app.state.engine
    principal = await admit_websocket(ws, "subscribe", "subscribe")
    if principal is None:
        return
    guard = engine.guard
    try:
        with guard.subscriptions.hold():
            await ws.accept()
            guard.audit.record("subscribe", principal=principal, surface="subscribe", target=call_id or "*")
            with engine.bus.subscribe(call_id, _tenant(ws, principal)) as sub:
                await _pump(ws, sub, one_call=call_id is not None)
    except Overloaded as e:
        await deny_websocket(ws, e)


@router.websocket("/v1/calls/{call_id}/events")
@access("subscribe", "subscribe")
async def call_events(ws: WebSocket, call_id: str) -> None:
    await _subscribe(ws, call_id)


@router.websocket("/v1/events")
@access("subscribe", "subscribe")
async def all_events(ws: WebSocket) -> None:
    await _subscribe(ws, None)
