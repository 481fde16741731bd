"""Asterisk AudioSocket adapter: a TCP server Asterisk connects to (``AudioSocket(uuid,host:port)`` in the
dialplan, or ``Dial(AudioSocket/host:port/uuid)``), one connection per call leg.

Frames are TLV: 1-byte type, 2-byte big-endian payload length, payload. ``0x01`` UUID (16 bytes, first),
``0x10`` signed-linear 16-bit 8 kHz audio, ``0x12`` 16 kHz and ``0x16`` 48 kHz (newer Asterisk), ``0x03``
DTMF digit, ``0x00`` hangup, ``0xff`` error. The connection's leg is ``customer`` (the listener on
``audiosocket_port``) or ``agent`` (``audiosocket_agent_port``, when configured). Events are published on the
event bus (and webhook) keyed by the UUID; nothing is sent back but an ``0xff`` error frame before
closing on a fatal protocol error. A bad frame of one connection never affects another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import uuid

import numpy as np

from speechsvc.errors import InvalidAudio, ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.transports.lifecycle import serve_call
from speechsvc.types import AudioFormat, CallConfig, Leg

log = logging.getLogger(__name__)

HANGUP, UUID, DTMF, ERROR = 0x00, 0x01, 0x03, 0xFF
AUDIO_RATES = {0x10: 8000, 0x12: 16000, 0x16: 48000}
KNOWN_AUDIO = set(range(0x10, 0x19))  # 0x11.. 0x18: slin at 12/16/24/32/44.1/48/96/192 kHz
MAX_AUDIO_PAYLOAD = 48000 * 2  # one second at the highest rate we take
FIRST_FRAME_TIMEOUT_S = 10.0


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One TLV frame. Raises IncompleteReadError when the stream ends mid-frame (or before one)."""
    header = await reader.readexactly(3)
    kind, length = header[0], struct.unpack(">H", header[1:])[0]
    payload = await reader.readexactly(length) if length else b""
    return kind, payload


def frame(kind: int, payload: bytes = b"") -> bytes:
    return bytes([kind]) + struct.pack(">H", len(payload)) + payload


class AudioSocketServer:
    def __init__(self, engine: Engine, leg: Leg, language: str) -> None:
        self.engine = engine
        self.leg = leg
        self.language = language
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, host, port)
        log.info("AudioSocket (%s leg) listening on %s:%d", self.leg, host, self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                kind, payload = await asyncio.wait_for(read_frame(reader), FIRST_FRAME_TIMEOUT_S)
                if kind != UUID or len(payload) != 16:
                    raise ProtocolError(f"first frame must be a 16-byte UUID (type 0x01), got type {kind:#04x} "
                                        f"with {len(payload)} bytes")
                call_id = str(uuid.UUID(bytes=payload))
                first = await self._first_audio(reader)
                if first is None:
                    return  # hung up before any audio
                rate = AUDIO_RATES.get(first[0])
                if rate is None:
                    raise UnsupportedFormat(f"AudioSocket audio type {first[0]:#04x} is not supported; "
                                            "use slin at 8, 16 or 48 kHz")
                config = CallConfig(call_id=call_id, audio=AudioFormat("pcm16", rate, 1), legs=(self.leg,),
                                    language=self.language, metadata={"uuid": call_id})
                await serve_call(self.engine, config, "audiosocket", self._receiver(reader, first[1]), None)
            except (TimeoutError, asyncio.IncompleteReadError):
                log.warning("AudioSocket connection closed before a UUID")
            except SpeechsvcError as e:
                log.warning("AudioSocket: %s", e)
                writer.write(frame(ERROR, e.code.encode()[:255]))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _first_audio(reader: asyncio.StreamReader) -> tuple[int, bytes] | None:
        """Skip DTMF until the first audio frame, whose type fixes the call's sample rate."""
        while True:
            kind, payload = await read_frame(reader)
            if kind in (HANGUP, ERROR):
                return None
            if kind in KNOWN_AUDIO:
                return kind, payload
            if kind != DTMF:
                raise ProtocolError(f"unexpected frame type {kind:#04x} before the first audio frame")

    def _receiver(self, reader: asyncio.StreamReader, first: bytes):  # type: ignore[no-untyped-def]
        async def receive(session: CallSession) -> SpeechsvcError | None:
            rate = session.config.audio.sample_rate
            try:
                self._feed(session, {8000: 0x10, 16000: 0x12, 48000: 0x16}[rate], first, rate)
            except (InvalidAudio, UnsupportedFormat) as e:
                session.report(e)
            while True:
                try:
                    kind, payload = await read_frame(reader)
                except asyncio.IncompleteReadError:
                    log.info("AudioSocket stream ended mid-frame or without hangup")
                    return None  # what was heard is still finished and published
                except ConnectionError:
                    return None
                if kind == HANGUP:
                    return None
                if kind == ERROR:
                    log.warning("Asterisk reported an AudioSocket error: %s", payload.hex())
                    return None
                try:
                    if kind == DTMF:
                        log.debug("DTMF %r", payload[:1])
                    elif kind in KNOWN_AUDIO:
                        rate = self._feed(session, kind, payload, rate)
                    elif kind == UUID:
                        raise ProtocolError("UUID frame received twice")
                    else:
                        raise ProtocolError(f"unknown AudioSocket frame type {kind:#04x} ({len(payload)} bytes)")
                except (InvalidAudio, ProtocolError, UnsupportedFormat) as e:
                    session.report(e)

        return receive

    @staticmethod
    def _feed(session: CallSession, kind: int, payload: bytes, rate: int) -> int:
        frame_rate = AUDIO_RATES.get(kind)
        if frame_rate != rate:
            raise InvalidAudio(f"audio type {kind:#04x} on a {rate} Hz connection; frame dropped")
        if not payload or len(payload) % 2 or len(payload) > MAX_AUDIO_PAYLOAD:
            raise InvalidAudio(f"audio frame of {len(payload)} bytes is not whole 16-bit samples within "
                               f"{MAX_AUDIO_PAYLOAD} bytes")
        pcm = np.frombuffer(payload, "<i2").astype(np.int16)
        session.feed(session.legs[0], pcm)
        return frame_rate
