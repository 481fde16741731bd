"""What every call-platform adapter shares: admit the call, run one CallSession, forward its events (to the
platform's socket when it reads them, and always to the event bus), finish open utterances at the end,
release everything in ``finally``. An adapter supplies only its protocol: a ``receive`` coroutine that
feeds the session until the platform ends the call, and optionally a ``send`` for events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from speechsvc.engine import Engine
from speechsvc.errors import SpeechsvcError
from speechsvc.log import call_id_var
from speechsvc.session import CallConfig, CallSession
from speechsvc.wire import event_to_dict

log = logging.getLogger(__name__)

Receive = Callable[[CallSession], Awaitable[SpeechsvcError | None]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class PeerGone(Exception):
    """The platform closed the connection; nothing more can be sent to it."""


async def serve_call(engine: Engine, config: CallConfig, transport: str, receive: Receive, send: Send | None) -> None:
    """Run one call end to end.

    ``receive`` returns None when the platform ended the call normally, or a fatal error (reported as the
    last event before ``ended``). Raises the admission errors (Overloaded, ShuttingDown) before any state
    is created.
    """
    engine.admit(config.call_id, transport)
    call_id_var.set(config.call_id)
    session = CallSession(engine, config, transport)
    engine.sessions[config.call_id] = session
    peer = {"open": send is not None}

    async def forward() -> None:
        seq = 1
        async for event in session.events():
            body = event_to_dict(event, session.call_id, seq, config.metadata)
            seq += 1
            if peer["open"] and send is not None:
                try:
                    await send(body)
                except PeerGone:
                    peer["open"] = False  # events still reach the bus and webhook subscribers

    sender = asyncio.get_running_loop().create_task(forward())
    log.info("%s call started: legs=%s %s/%d", transport, config.legs, config.audio.encoding, config.audio.sample_rate)
    try:
        try:
            error = await receive(session)
        except PeerGone:
            error = None  # the platform hung up: what was heard is still finished and published
            peer["open"] = False
        if error is not None:
            session.report(error, fatal=True)
        await session.close("stop" if error is None else "error")
        await sender
    finally:
        session.abort()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        engine.sessions.pop(config.call_id, None)
        engine.release(config.call_id, transport)
        log.info("%s call ended", transport)
