"""Asterisk AudioSocket adapter: TCP listeners Asterisk connects to, one connection per direction of a call.

Frames are TLV: 1-byte kind, 2-byte big-endian length, payload (``res/res_audiosocket.c``). ``0x01`` UUID (16
bytes, first), ``0x10`` signed-linear 16-bit little-endian audio at 8 kHz (or ``audiosocket_slin_rate``; older
Asterisk sends any slin rate as 0x10), ``0x11``-``0x18`` slin at 12/16/24/32/44.1/48/96/192 kHz (Asterisk
20.17/21.12/22.7/23.1+), ``0x03`` DTMF (one ASCII digit; 20.14/21.9/22.4/23.0+), ``0x00`` hangup, ``0xff`` error
(its first payload byte is the code). Asterisk ends a stream by closing the socket; that is the normal end.

**One call, two connections.** To transcribe a caller and an agent without touching the media path, Asterisk
sends each direction on its own connection with the call's UUID (ARI snoop channels + ``externalMedia``
``encapsulation=audiosocket``, or ChanSpy into an AudioSocket channel; see the README). Connections with the same
UUID are one call, one leg each:

- by port: connections on ``audiosocket_port`` are the customer leg, on ``audiosocket_agent_port`` the agent leg.
  With both listeners every call has both legs; a leg may connect late (the agent answers later), and the call
  ends when its connected legs have closed and no declared leg is still expected (``audiosocket_pair_grace_s``).
- by arrival order, when one port carries both: the first connection is the customer, the second the agent. Both
  must connect within the call's first ``platform_rate_probe_s`` (ARI creates them together); a later one is
  refused.

There are no timestamps in AudioSocket; Asterisk paces audio in real time, silence included, so a leg that
connects late is aligned by the wall-clock offset of its first frame. Every leg is converted from its own wire
rate to 16 kHz, so the legs of one call may differ in rate.

The byte rate of each connection's first second is checked against its kind: 0x10 frames arriving at twice the
bytes of 8 kHz (16 kHz slin from Asterisk < 20.17) are reported (``format_mismatch`` event and a log line) and
taken as 16 kHz.

**Nothing but a hangup is ever sent.** Asterisk ≥ 20.14 hangs up the channel on any frame other than audio or
hangup (``ast_audiosocket_receive_frame_with_hangup``), and no Asterisk sends or expects error frames, so a
connection that cannot be served gets ``00 00 00`` and is closed; the reason goes to the log (and, for a call
that exists, to its events). Bad frames are non-fatal events; unknown kinds are skipped (their length is known).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from speechsvc.errors import InvalidAudio, ProtocolError, ShuttingDown, SpeechsvcError
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.speech.audio import StreamResampler
from speechsvc.transports.lifecycle import serve_call
from speechsvc.transports.platform import FormatMismatch, RateProbe, rate_ratio, silence
from speechsvc.types import PIPELINE_RATE, AudioFormat, CallConfig, Int16Array, Leg

log = logging.getLogger(__name__)

HANGUP, UUID, DTMF, ERROR = 0x00, 0x01, 0x03, 0xFF
SLIN = 0x10
AUDIO_RATES = {0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000, 0x17: 96000,
               0x18: 192000}
HANGUP_FRAME = b"\x00\x00\x00"
# Most audio one connection holds while its byte rate is measured.
PROBE_MAX_BYTES = 2 << 20


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One TLV frame. Raises IncompleteReadError when the stream ends mid-frame (or before one)."""
    header = await reader.readexactly(3)
    kind, length = header[0], struct.unpack(">H", header[1:])[0]
    payload = await reader.readexactly(length) if length else b""
    return kind, payload


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


@dataclass
class _Connection:
    """One AudioSocket connection: one direction of one call."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    port_leg: Leg
    call_id: str
    # What arrived before the call's session existed, in order: ("audio", pcm) | ("dtmf", digit) | ("error", e).
    held: list[tuple[str, Any]] = field(default_factory=list)
    probe: RateProbe = field(default_factory=RateProbe)
    kind: int | None = None
    rate: int = 8000
    resampler: StreamResampler | None = None
    leg: Leg | None = None
    ended: str | None = None  # why the stream ended while held ("hangup", "eof", "error", "idle")
    unknown: set[int] = field(default_factory=set)
    first_audio_wall: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    probed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None

    def to_call_rate(self, pcm: Int16Array) -> Int16Array:
        if self.resampler is None:
            return pcm
        out = self.resampler.process(pcm)
        return (np.clip(out, -1.0, 1.0) * 32767.0).astype(np.int16)


class _Call:
    """The connections sharing one UUID, and the session they feed once it is open."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.connections: list[_Connection] = []
        self.legs: tuple[Leg, ...] = ()
        self.session: CallSession | None = None
        self.opened = asyncio.Event()
        self.refused: SpeechsvcError | None = None
        self.changed = asyncio.Event()
        self.clock_origin: float | None = None  # wall time of media time 0 (the first leg's first frame)
        self.closing = False

    def attached(self) -> list[_Connection]:
        return [c for c in self.connections if c.leg is not None]


class _Registry:
    """Open calls by UUID, shared by every listener of one engine; and which legs have a listener."""

    def __init__(self) -> None:
        self.calls: dict[str, _Call] = {}
        self.listening: set[Leg] = set()


_REGISTRIES: weakref.WeakKeyDictionary[Engine, _Registry] = weakref.WeakKeyDictionary()


def _registry(engine: Engine) -> _Registry:
    if engine not in _REGISTRIES:
        _REGISTRIES[engine] = _Registry()
    return _REGISTRIES[engine]


class AudioSocketServer:
    """One TCP listener; its connections are ``leg`` (customer or agent) unless arrival order says otherwise."""

    def __init__(self, engine: Engine, leg: Leg, language: str) -> None:
        self.engine = engine
        self.leg = leg
        self.language = language
        self.server: asyncio.Server | None = None
        self.registry = _registry(engine)
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port)
        self.registry.listening.add(self.leg)
        log.info("AudioSocket (%s leg) listening on %s:%d", self.leg, host, self.port)

    async def stop(self) -> None:
        self.registry.listening.discard(self.leg)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    # ---- one connection -------------------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        settings = self.engine.settings
        conn: _Connection | None = None
        try:
            try:
                kind, payload = await asyncio.wait_for(read_frame(reader), settings.platform_start_timeout_s)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                log.warning("AudioSocket connection closed: no UUID frame within %.0f s",
                            settings.platform_start_timeout_s)
                return
            if kind != UUID or len(payload) != 16:
                log.warning("AudioSocket connection refused: the first frame must be a 16-byte UUID (kind 0x01), "
                            "got kind %#04x with %d bytes", kind, len(payload))
                return
            conn = _Connection(reader, writer, self.leg, str(uuid.UUID(bytes=payload)))
            await self._serve(conn)
        finally:
            if conn is None or conn.ended is None:  # we end it: tell Asterisk (the peer's own end needs nothing)
                with contextlib.suppress(ConnectionError, RuntimeError):
                    writer.write(HANGUP_FRAME)  # the only frame ever sent: Asterisk hangs up on anything else
                    await writer.drain()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(self, conn: _Connection) -> None:
        """Join (or start) the connection's call, hold its first audio while its rate is measured, then feed it."""
        call = self.registry.calls.get(conn.call_id)
        owner = call is None or call.closing
        if call is None or call.closing:
            call = _Call(conn.call_id)
            self.registry.calls[conn.call_id] = call
        call.connections.append(conn)
        conn.task = asyncio.current_task()
        runner = None
        if owner:
            runner = asyncio.get_running_loop().create_task(self._run_call(call, conn), name=f"call-{conn.call_id}")
        try:
            await self._hold(conn)
            conn.probed.set()
            await call.opened.wait()
            if conn.kind is None:
                return
            if call.refused is not None or call.session is None:
                log.warning("AudioSocket call %s refused: %s", conn.call_id, call.refused)
                return
            if not self._attach(call, conn):
                return
            await self._feed(call, conn)
        finally:
            conn.done.set()
            conn.probed.set()
            call.changed.set()
            if runner is not None:
                await runner

    async def _hold(self, conn: _Connection) -> None:
        """Read the first ``platform_rate_probe_s`` of audio (wall clock) into ``conn.held`` and fix its rate."""
        settings = self.engine.settings
        probe_s = settings.platform_rate_probe_s
        held = 0
        while True:
            started = conn.probe.first_at is not None
            timeout = probe_s - conn.probe.elapsed() if started else settings.platform_idle_timeout_s
            if conn.kind is not None and (timeout <= 0 or held >= PROBE_MAX_BYTES):
                break
            item = await self._next(conn, max(timeout, 0.001))
            if item is None:
                if conn.kind is None:  # gone, or silent, before any audio: nothing to measure
                    conn.ended = conn.ended or "idle"
                    return
                break  # the probe window passed, or the stream ended within it
            kind, payload = item
            if self._is_audio(kind):
                if conn.kind is None:
                    conn.kind = kind
                    conn.first_audio_wall = time.perf_counter()
                conn.probe.add(len(payload))
                held += len(payload)
            conn.held.append(("frame", (kind, payload)))
        self._fix_rate(conn)

    def _fix_rate(self, conn: _Connection) -> None:
        slin_rate = self.engine.settings.audiosocket_slin_rate
        kind = conn.kind if conn.kind is not None else SLIN
        if conn.probe.first_at is not None and self.engine.settings.platform_rate_probe_s == 0:
            conn.probe = RateProbe()  # the check is off
        declared = slin_rate if kind == SLIN else AUDIO_RATES[kind]
        conn.rate = declared
        ratio = rate_ratio(conn.probe.bytes_per_second(), declared * 2)
        log.debug("AudioSocket %s: kind %#04x, %s bytes/s over the first %.2f s", conn.call_id, kind,
                  conn.probe.bytes_per_second(), conn.probe.last_at - (conn.probe.first_at or conn.probe.last_at))
        if ratio == 2.0:  # fewer bytes than declared is a slow or stalled sender, not a format: not judged
            measured = conn.probe.bytes_per_second() or 0.0
            if kind == SLIN and int(declared * ratio) <= 192000:
                conn.rate = int(declared * ratio)
                message = (f"kind 0x10 frames arrive at {measured:.0f} bytes/s, {ratio:g} times {declared} Hz slin: "
                           f"taken as {conn.rate} Hz (older Asterisk sends any slin rate as 0x10; set "
                           f"SPEECHSVC_AUDIOSOCKET_SLIN_RATE={conn.rate}, or use Asterisk 20.17/21.12/22.7/23.1+)")
            else:
                message = (f"kind {kind:#04x} frames arrive at {measured:.0f} bytes/s, {ratio:g} times "
                           f"{declared} Hz slin; check the channel's format")
            log.warning("AudioSocket %s: %s", conn.call_id, message)
            conn.held.insert(0, ("error", FormatMismatch(message)))
        conn.resampler = None if conn.rate == PIPELINE_RATE else StreamResampler(conn.rate)

    @staticmethod
    def _is_audio(kind: int) -> bool:
        return kind == SLIN or kind in AUDIO_RATES

    async def _next(self, conn: _Connection, timeout: float) -> tuple[int, bytes] | None:
        """The next frame; None when the stream ended (``conn.ended`` says how) or ``timeout`` passed."""
        try:
            kind, payload = await asyncio.wait_for(read_frame(conn.reader), timeout)
        except TimeoutError:
            return None
        except asyncio.IncompleteReadError as e:
            conn.ended = "eof" if not e.partial else "truncated"
            if e.partial:
                log.info("AudioSocket %s: stream ended mid-frame (%d bytes)", conn.call_id, len(e.partial))
            return None
        except ConnectionError:
            conn.ended = "eof"
            return None
        if kind == HANGUP:
            conn.ended = "hangup"
            return None
        if kind == ERROR:
            code = payload[0] if payload else 0
            log.warning("AudioSocket %s: the peer reported error %#04x; stream ended", conn.call_id, code)
            conn.ended = "error"
            return None
        return kind, payload

    # ---- the call -------------------------------------------------------------------------------------------

    async def _run_call(self, call: _Call, first: _Connection) -> None:
        """Open the call's session once its first connection has been measured, and end it when its legs are
        done."""
        settings = self.engine.settings
        try:
            await first.probed.wait()
            if first.kind is None:  # gone before any audio: no call
                call.refused = ProtocolError("the connection ended before any audio")
                return
            both: tuple[Leg, ...] = ("customer", "agent")
            if {"customer", "agent"} <= self.registry.listening:
                call.legs = both
            else:
                call.legs = both[: min(2, len(call.connections))]
            call.clock_origin = first.first_audio_wall
            config = CallConfig(call_id=call.call_id, audio=AudioFormat("pcm16", PIPELINE_RATE, 1), legs=call.legs,
                                language=self.language, metadata={"uuid": call.call_id}, per_leg_audio=True)

            async def receive(session: CallSession) -> SpeechsvcError | None:
                call.session = session
                call.opened.set()
                await self._until_done(call, settings.audiosocket_pair_grace_s)
                call.closing = True
                return None

            await serve_call(self.engine, config, "audiosocket", receive, None)
        except SpeechsvcError as e:
            call.refused = e
            log.warning("AudioSocket call %s: %s", call.call_id, e)
        finally:
            call.closing = True
            call.opened.set()
            if self.registry.calls.get(call.call_id) is call:
                del self.registry.calls[call.call_id]
            for conn in call.connections:  # a draining server hangs up every leg still streaming
                if not conn.done.is_set() and conn.task is not None and conn.task is not asyncio.current_task():
                    conn.task.cancel()

    @staticmethod
    async def _until_done(call: _Call, grace_s: float) -> None:
        """Until every connection of the call is done and no declared leg is still expected within the grace."""
        while True:
            call.changed.clear()
            if all(c.done.is_set() for c in call.connections):
                missing = set(call.legs) - {c.leg for c in call.attached()}
                if not missing:
                    return
                try:
                    await asyncio.wait_for(call.changed.wait(), grace_s)
                except TimeoutError:
                    if all(c.done.is_set() for c in call.connections):
                        return
                continue
            await call.changed.wait()

    def _attach(self, call: _Call, conn: _Connection) -> bool:
        """Give the connection its leg: its port's, else the call's other free leg (arrival order)."""
        taken = {c.leg for c in call.attached()}
        order = [conn.port_leg] + [leg for leg in call.legs if leg != conn.port_leg]
        leg = next((leg for leg in order if leg in call.legs and leg not in taken), None)
        if leg is None:
            log.warning("AudioSocket call %s already has its legs %s; connection refused", call.call_id,
                        list(call.legs))
            return False
        conn.leg = leg
        call.changed.set()
        log.info("AudioSocket call %s: %s leg at %d Hz", call.call_id, leg, conn.rate)
        return True

    async def _feed(self, call: _Call, conn: _Connection) -> None:
        with contextlib.suppress(ShuttingDown):  # the call is closing (the server drains): stop reading
            await self._feed_until_end(call, conn)

    async def _feed_until_end(self, call: _Call, conn: _Connection) -> None:
        session, leg = call.session, conn.leg
        assert session is not None and leg is not None
        if call.clock_origin is not None and conn.first_audio_wall is not None:
            offset = int((conn.first_audio_wall - call.clock_origin) * PIPELINE_RATE)
            if offset > PIPELINE_RATE // 50:  # a leg that connected late starts at its place on the call's clock
                for chunk in silence(offset, PIPELINE_RATE):
                    session.feed(leg, chunk)
        for what, item in conn.held:
            if what == "error":
                session.report(item)
            else:
                self._frame(session, conn, *item)
        conn.held.clear()
        idle = self.engine.settings.platform_idle_timeout_s
        while conn.ended is None and not call.closing:
            item = await self._next(conn, idle)
            if item is None:
                if conn.ended is None and not call.closing:
                    session.report(ProtocolError(f"{leg} leg sent nothing for {idle:.0f} s; hung up"))
                break
            self._frame(session, conn, *item)
        if conn.resampler is not None:  # the converter's last few ms
            tail = conn.resampler.flush()
            if tail.size:
                session.feed(leg, (np.clip(tail, -1.0, 1.0) * 32767.0).astype(np.int16))

    def _frame(self, session: CallSession, conn: _Connection, kind: int, payload: bytes) -> None:
        assert conn.leg is not None
        try:
            if self._is_audio(kind):
                if kind != conn.kind:
                    raise InvalidAudio(f"audio kind {kind:#04x} on a leg that started with {conn.kind:#04x}; "
                                       "frame dropped")
                if not payload or len(payload) % 2:
                    raise InvalidAudio(f"audio frame of {len(payload)} bytes is not whole 16-bit samples")
                session.feed(conn.leg, conn.to_call_rate(np.frombuffer(payload, "<i2").astype(np.int16)))
            elif kind == DTMF:
                session.dtmf(conn.leg, payload[:1].decode("ascii", "replace"))
            elif kind == UUID:
                raise ProtocolError("UUID frame received twice; skipped")
            elif kind not in conn.unknown:
                conn.unknown.add(kind)  # reported once per kind: a sender may repeat it every 20 ms
                raise ProtocolError(f"unknown AudioSocket frame kind {kind:#04x} ({len(payload)} bytes) skipped")
        except (InvalidAudio, ProtocolError) as e:
            session.report(e)

