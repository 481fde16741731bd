"""Event subscriptions over WebSocket: ``/v1/calls/{call_id}/events`` (one call) and ``/v1/events`` (every
call). This is how an operator's application reads the transcripts, intents, emotion and escalations of calls
that came in through a platform adapter: each message is the event's JSON exactly as the call's own client
receives it. Read-only: text frames from the client are ignored."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from speechsvc.protocol import event_json
from speechsvc.runtime.bus import Subscription
from speechsvc.runtime.engine import Engine

router = APIRouter()


async def _pump(ws: WebSocket, sub: Subscription) -> None:
    async def send() -> None:
        async for event in sub.events():
            await ws.send_text(event_json(event))

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


@router.websocket("/v1/calls/{call_id}/events")
async def call_events(ws: WebSocket, call_id: str) -> None:
    engine: Engine = ws.app.state.engine
    await ws.accept()
    with engine.bus.subscribe(call_id) as sub:
        await _pump(ws, sub)


@router.websocket("/v1/events")
async def all_events(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    await ws.accept()
    with engine.bus.subscribe() as sub:
        await _pump(ws, sub)
