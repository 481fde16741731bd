"""The one call lifecycle every transport uses.

:func:`open_call` (an async context manager) admits the call (the engine checks its config and reserves a
slot), puts its id in the logging context, creates the :class:`~speechsvc.runtime.session.CallSession`,
registers it for the shutdown drain, and in ``finally`` aborts whatever is left and releases everything.

:func:`serve_call` runs a whole call on it for the transports whose peer drives the call (WebSocket API,
Twilio, mod_audio_fork, AudioSocket): it forwards the session's events to the peer's ``send`` while
``receive`` feeds the session, then finishes the open utterances. gRPC ``StreamCall`` uses :func:`open_call`
directly, because its events are the RPC's response stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from speechsvc.errors import InternalError, ShuttingDown, SpeechsvcError
from speechsvc.log import call_id_var
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.transports.common import PeerGone
from speechsvc.types import CallConfig, CallEvent

log = logging.getLogger(__name__)

Receive = Callable[[CallSession], Coroutine[Any, Any, SpeechsvcError | None]]
Send = Callable[[CallEvent], Coroutine[Any, Any, None]]


@contextlib.asynccontextmanager
async def open_call(engine: Engine, config: CallConfig, transport: str) -> AsyncIterator[CallSession]:
    """Admit and run one call's session; always released on exit.

    Raises:
        UnsupportedFormat, ProtocolError: the config is not acceptable.
        Overloaded, ShuttingDown: at admission, before any state is created.
    """
    config = engine.admit(config, transport)  # the tenant is the authenticated principal's
    key = engine.call_key(config)
    token = call_id_var.set(config.call_id)
    session: CallSession | None = None
    try:
        session = CallSession(engine, config, transport)
        engine.sessions[key] = session
        log.info("%s call started: legs=%s %s/%d", transport, list(config.legs), config.audio.encoding,
                 config.audio.sample_rate)
        yield session
    finally:
        if session is not None:
            session.abort()
        engine.sessions.pop(key, None)
        engine.release(key)
        log.info("%s call ended", transport)
        call_id_var.reset(token)


async def serve_call(
    engine: Engine, config: CallConfig, transport: str, receive: Receive, send: Send | None
) -> SpeechsvcError | None:
    """Run one call end to end; return None when it ended normally, or the fatal error that ended it.

    ``receive`` feeds the session until the platform ends the call: it returns None, or a fatal error, which
    becomes the call's last event before ``ended`` (the adapter may still pick a close code for it). A platform
    that hangs up (``receive`` raises PeerGone) ends the call normally: what was heard is still finished and
    published on the bus. ``send`` gets every event (``ready`` first) while the peer is there.

    Raises:
        UnsupportedFormat, ProtocolError, Overloaded, ShuttingDown: at admission (see :func:`open_call`).
        SpeechsvcError: the events ended before ``receive`` did: the server is draining (ShuttingDown) or the
            peer stopped reading them (Overloaded). The adapter tells the peer.
    """
    async with open_call(engine, config, transport) as session:
        peer_open = send is not None

        async def forward() -> None:
            nonlocal peer_open
            async for event in session.events():
                if peer_open and send is not None:
                    try:
                        await send(event)
                    except PeerGone:
                        peer_open = False  # events still reach the bus and webhook subscribers

        loop = asyncio.get_running_loop()
        sender = loop.create_task(forward(), name="send-events")
        receiver = loop.create_task(receive(session), name="receive-audio")
        try:
            done, _ = await asyncio.wait({receiver, sender}, return_when=asyncio.FIRST_COMPLETED)
            if receiver not in done:
                raise session.failed or ShuttingDown("server is shutting down")
            try:
                error = receiver.result()
            except PeerGone:
                error = None
                peer_open = False
            except ShuttingDown as e:
                # The drain is closing this session (a frame arrived after it started): let it finish the open
                # utterances and publish their finals and ``ended`` before the adapter says goodbye.
                await sender
                raise e from None
            except SpeechsvcError as e:
                error = e  # an expected error the adapter did not map: fatal, but the finals are still sent
            except Exception as e:  # a parser bug (logged with its traceback) must not drop the call and its finals
                log.exception("%s receive failed", transport)
                error = InternalError(f"{transport} adapter failed: {type(e).__name__}")
            if error is not None:
                session.report(error, fatal=True)
            await session.close("stop" if error is None else "error")
            await sender
            return error
        finally:
            receiver.cancel()
            sender.cancel()
            # Retrieves what the tasks ended with; whatever receive raised has already propagated above.
            await asyncio.gather(receiver, sender, return_exceptions=True)
