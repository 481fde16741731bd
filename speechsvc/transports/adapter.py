"""What every call-platform adapter shares: admit the call, run one CallSession, forward its events (to the
platform's socket when it reads them, and always to the event bus), finish open utterances at the end,
release everything in ``finally``. An adapter supplies only its protocol: a ``receive`` coroutine that
feeds the session until the platform ends the call, and optionally a ``send`` for events. The WebSocket
API, Twilio, mod_audio_fork and AudioSocket all run on it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from speechsvc.engine import Engine
from speechsvc.errors import ShuttingDown, SpeechsvcError
from speechsvc.log import call_id_var
from speechsvc.session import CallConfig, CallSession
from speechsvc.wire import event_to_dict

log = logging.getLogger(__name__)

Receive = Callable[[CallSession], Coroutine[Any, Any, SpeechsvcError | None]]
Send = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]


class PeerGone(Exception):
    """The platform closed the connection; nothing more can be sent to it."""


async def serve_call(
    engine: Engine, config: CallConfig, transport: str, receive: Receive, send: Send | None
) -> SpeechsvcError | None:
    """Run one call end to end; return None when it ended normally, or the fatal error that ended it.

    ``receive`` feeds the session until the platform ends the call: it returns None, or a fatal error,
    which becomes the call's last event before ``ended`` (the adapter may still pick a close code for it).
    A platform that hangs up (``receive`` raises PeerGone) ends the call normally: what was heard is still
    finished and published to the bus.

    Raises:
        Overloaded, ShuttingDown: at admission, before any state is created.
        SpeechsvcError: the events ended before ``receive`` did: the server is draining (ShuttingDown) or
            the peer stopped reading them (Overloaded). The adapter tells the peer.
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

    loop = asyncio.get_running_loop()
    sender = loop.create_task(forward())
    receiver = loop.create_task(receive(session))
    log.info("%s call started: legs=%s %s/%d", transport, config.legs, config.audio.encoding, config.audio.sample_rate)
    try:
        done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
        if receiver not in done:
            raise session.failed or ShuttingDown("server is shutting down")
        try:
            error = receiver.result()
        except PeerGone:
            error = None
            peer["open"] = False
        if error is not None:
            session.report(error, fatal=True)
        await session.close("stop" if error is None else "error")
        await sender
        return error
    finally:
        session.abort()
        receiver.cancel()
        sender.cancel()
        # Retrieves what the tasks ended with; whatever receive raised has already propagated above.
        await asyncio.gather(receiver, sender, return_exceptions=True)
        engine.sessions.pop(config.call_id, None)
        engine.release(config.call_id, transport)
        log.info("%s call ended", transport)
