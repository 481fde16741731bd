"""FreeSWITCH mod_audio_fork adapter: ``ws://HOST/v1/audio_fork`` (or ``/v1/audio_fork/{call_id}``; FreeSWITCH
connects, subprotocol ``audio.drachtio.org``).

    uuid_audio_fork <uuid> start ws://HOST:8080/v1/audio_fork/<uuid>?mix=stereo&rate=8k stereo 8k {"callId":"..."}

What mod_audio_fork does (drachtio-freeswitch-modules, ``mod_audio_fork/lws_glue.cpp``, ``audio_pipe.cpp``):

- The first frame is the metadata text **only if the command gave one**, and it may be any text (texts queued
  together arrive concatenated, ``{...}{...}``). JSON objects are merged into the call's metadata; other text is
  kept as ``metadata``. Later text frames (``send_text``) are logged.
- It tells the server neither the rate nor the mix, so they come from the URL (``mix`` = mono | mixed | stereo,
  ``rate`` = any integer or ``8k``/``16k``/``24k``/..., optional ``language`` and ``legs``) or the metadata
  (``mixType``, ``sampleRate``). The call id: the metadata's ``callId``/``uuid``/``call_id``, else the URL path
  ``/v1/audio_fork/{call_id}``, else ``?uuid=``/``?call_id=``, else a new one.
- Binary frames are L16 little-endian, stereo interleaved with channel 0 = the party on the forked channel (read
  stream) and channel 1 = what that party hears (write stream): fork the caller's leg and the legs are
  ``customer,agent`` (the default); fork the agent's and give ``legs=agent,customer``.
- The bytes per second of the first second are checked against the declared format: stereo sent without
  ``mix=stereo`` (twice the bytes, two interleaved signals) and a rate other than the URL's are detected, reported
  (``format_mismatch``, non-fatal) and adapted to (:mod:`speechsvc.transports.platform`).
- ``uuid_audio_fork <uuid> stop`` closes the socket at once: the open utterances are still finished and
  published on the subscriptions. ``graceful-shutdown`` sends one **empty binary frame** "to flush any final
  responses" and waits: speechsvc finishes the open utterances, sends their finals, then closes (1000).

Events go back as ``{"type": "transcription", "data": <event>}`` for transcripts (FreeSWITCH raises
``mod_audio_fork::transcription``), ``{"type": "error", "data": ...}`` for errors (``mod_audio_fork::error``), and
``{"type": "json", "data": <event>}`` for every other event — ``ready``, ``ended``, ``intent``, ``emotion``,
``escalation``, ``dtmf``, ... (``mod_audio_fork::json``, whose body is the whole message). All events also reach the
event bus, keyed by the call id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from speechsvc.errors import InvalidAudio, ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.protocol import event_dict
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.security.access import access
from speechsvc.transports.common import PeerGone, close, close_code, close_reason, send_json
from speechsvc.transports.lifecycle import serve_call
from speechsvc.transports.platform import FormatMismatch, RateProbe, looks_interleaved, pieces, rate_ratio
from speechsvc.types import AudioFormat, CallConfig, CallEvent, Leg

log = logging.getLogger(__name__)
router = APIRouter()

SUBPROTOCOL = "audio.drachtio.org"
MIX_LEGS: dict[str, tuple[Leg, ...]] = {"mono": ("customer",), "mixed": ("mixed",), "stereo": ("customer", "agent")}
# Most audio held while the first second's byte rate is measured (bytes), whatever the sender's pace.
PROBE_MAX_BYTES = 4 << 20


@dataclass(frozen=True)
class ForkOptions:
    """What the URL and the metadata say about a fork."""

    call_id: str
    mix: str
    rate: int
    legs: tuple[Leg, ...]
    language: str
    metadata: dict[str, str]

    def config(self) -> CallConfig:
        return CallConfig(call_id=self.call_id, audio=AudioFormat("pcm16", self.rate, len(self.legs)), legs=self.legs,
                          language=self.language, metadata=self.metadata)


def parse_metadata(text: str) -> dict[str, Any]:
    """The metadata text frame: JSON objects (one, or several concatenated) merged; anything else kept as text."""
    decoder = json.JSONDecoder()
    merged: dict[str, Any] = {}
    position, text = 0, text.strip()
    while position < len(text):
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return {**merged, "metadata": text[position:][:256]}
        if isinstance(value, dict):
            merged.update(value)
        else:
            merged["metadata"] = json.dumps(value)[:256]
        position = end
        while position < len(text) and text[position].isspace():
            position += 1
    return merged


def parse_rate(text: str) -> int:
    """``8k``, ``16k``, ``8000``, ``44100``, ... as Hz (the range is checked at admission)."""
    value = text.strip().lower()
    try:
        return int(float(value[:-1]) * 1000) if value.endswith("k") else int(value)
    except ValueError:
        raise UnsupportedFormat(f"rate {text!r} is not a sample rate; use e.g. 8k, 16k, 24000 or 48000") from None


def fork_options(metadata: dict[str, Any], query: dict[str, str], path_id: str | None,
                 default_language: str) -> ForkOptions:
    """Raises UnsupportedFormat for a mix, rate or leg list that cannot be."""
    mix = str(query.get("mix") or metadata.get("mixType") or "mono").lower()
    if mix not in MIX_LEGS:
        raise UnsupportedFormat(f"mix {mix!r} is not supported; use mono, mixed or stereo")
    rate = parse_rate(str(query.get("rate") or metadata.get("sampleRate") or "8000"))
    legs = MIX_LEGS[mix]
    if query.get("legs"):
        legs = tuple(leg.strip() for leg in query["legs"].split(","))  # type: ignore[misc]
        if len(legs) != len(MIX_LEGS[mix]):
            raise UnsupportedFormat(f"legs={query['legs']} names {len(legs)} leg(s) for mix {mix} "
                                    f"({len(MIX_LEGS[mix])} channel(s))")
    call_id = (metadata.get("callId") or metadata.get("uuid") or metadata.get("call_id") or path_id
               or query.get("uuid") or query.get("call_id") or uuid.uuid4().hex)
    return ForkOptions(
        call_id=str(call_id)[:128],
        mix=mix,
        rate=rate,
        legs=legs,
        language=str(query.get("language") or metadata.get("language") or default_language),
        metadata={str(k): str(v)[:256] for k, v in metadata.items() if isinstance(v, str | int | float)},
    )


def adapt(options: ForkOptions, probe: RateProbe, head: bytes) -> tuple[ForkOptions, FormatMismatch | None]:
    """The options the audio actually fits, judged from its byte rate (and, when that is ambiguous between "two
    channels" and "twice the rate", from whether the samples look interleaved)."""
    channels = len(options.legs)
    ratio = rate_ratio(probe.bytes_per_second(), options.rate * 2 * channels)
    if ratio == 1.0:
        return options, None
    pcm = np.frombuffer(head[: len(head) // 2 * 2], "<i2")
    interleaved = looks_interleaved(pcm)
    measured = f"{probe.bytes_per_second() or 0:.0f} bytes/s"
    if ratio == 2.0 and channels == 1 and interleaved and options.mix != "mixed":
        adapted = replace(options, mix="stereo", legs=(options.legs[0], "agent" if options.legs[0] != "agent"
                                                       else "customer"))
        why = "stereo audio without mix=stereo"
    elif ratio == 0.5 and channels == 2 and not interleaved:
        adapted = replace(options, mix="mono", legs=options.legs[:1])
        why = "mono audio with mix=stereo"
    elif ratio == 0.5:  # fewer bytes than declared is as likely a slow sender as a lower rate: not judged
        return options, None
    else:
        adapted = replace(options, rate=int(options.rate * ratio))
        why = f"{adapted.rate} Hz audio declared as {options.rate} Hz"
    message = (f"{measured} arrive for {options.mix} L16 at {options.rate} Hz: {why}; treated as {adapted.mix} "
               f"at {adapted.rate} Hz. Put the format uuid_audio_fork sends in the URL (mix=, rate=).")
    log.warning("audio_fork %s: %s", options.call_id, message)
    return adapted, FormatMismatch(message)


@router.websocket("/v1/audio_fork")
@router.websocket("/v1/audio_fork/{call_id}")
@access("stream", "audio_fork")
async def audio_fork(ws: WebSocket, call_id: str | None = None) -> None:
    engine: Engine = ws.app.state.engine
    settings = engine.settings
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        first = await asyncio.wait_for(ws.receive(), settings.platform_start_timeout_s)
    except TimeoutError:
        await _fail(ws, ProtocolError(f"nothing received within {settings.platform_start_timeout_s:.0f} s"))
        return
    if first["type"] == "websocket.disconnect":
        return
    frames: list[bytes] = []
    if first.get("text") is not None:
        metadata = parse_metadata(first["text"])
    else:
        metadata = {}
        frames.append(first.get("bytes") or b"")
    try:
        options = fork_options(metadata, dict(ws.query_params), call_id, settings.default_language)
        engine.check(options.config())  # a bad format or language is refused before any audio is held
    except SpeechsvcError as e:
        await _fail(ws, e)
        return

    probe = RateProbe()
    end = await _probe(ws, frames, probe, settings.platform_rate_probe_s, settings.platform_idle_timeout_s)
    mismatch = None
    if settings.platform_rate_probe_s > 0:
        options, mismatch = adapt(options, probe, b"".join(f for f in frames[:50]))
    config = options.config()
    max_bytes = config.audio.bytes_for_ms(engine.stream_options.max_frame_ms)

    async def send(event: CallEvent) -> None:
        kind = event.event.type
        wire = "transcription" if kind.startswith("transcript.") else "error" if kind == "error" else "json"
        await send_json(ws, {"type": wire, "data": event_dict(event)})

    def feed(session: CallSession, data: bytes) -> None:
        for piece in pieces(data, max_bytes, config.audio.frame_bytes):
            try:
                session.feed_bytes(piece)
            except InvalidAudio as e:
                session.report(e)  # this frame is dropped; the call goes on

    async def receive(session: CallSession) -> SpeechsvcError | None:
        if mismatch is not None:
            session.report(mismatch)
        for held in frames:
            feed(session, held)
        frames.clear()
        if end == "graceful":
            return None
        if end == "gone":
            raise PeerGone
        if end == "idle":
            return ProtocolError(f"no audio for {settings.platform_idle_timeout_s:.0f} s")
        while True:
            try:
                message = await asyncio.wait_for(ws.receive(), settings.platform_idle_timeout_s)
            except TimeoutError:
                return ProtocolError(f"no audio for {settings.platform_idle_timeout_s:.0f} s")
            if message["type"] == "websocket.disconnect":
                raise PeerGone  # `uuid_audio_fork stop` or hangup: finals still go to the bus
            data = message.get("bytes")
            if data is None:
                log.debug("audio_fork text frame: %s", (message.get("text") or "")[:200])  # send_text
            elif not data:
                return None  # graceful-shutdown: finish, send the finals, then close
            else:
                feed(session, data)

    try:
        error = await serve_call(engine, config, "audio_fork", receive, send)
    except SpeechsvcError as e:
        await _fail(ws, e)
        return
    await close(ws, error)


async def _probe(ws: WebSocket, frames: list[bytes], probe: RateProbe, probe_s: float, idle_s: float) -> str | None:
    """Hold the first ``probe_s`` of audio (wall clock) to measure its byte rate. Returns how the fork ended
    meanwhile: "graceful" (the empty frame), "gone" (closed), "idle", or None (it goes on)."""
    if frames and not frames[0]:
        frames.clear()
        return "graceful"
    for frame in frames:
        probe.add(len(frame))
    held = sum(len(f) for f in frames)
    while probe_s > 0 and held < PROBE_MAX_BYTES:
        timeout = idle_s if probe.first_at is None else probe_s - probe.elapsed()
        if timeout <= 0:
            return None
        try:
            message = await asyncio.wait_for(ws.receive(), timeout)
        except TimeoutError:
            return "idle" if probe.first_at is None else None
        if message["type"] == "websocket.disconnect":
            return "gone"
        data = message.get("bytes")
        if data is None:
            log.debug("audio_fork text frame: %s", (message.get("text") or "")[:200])
            continue
        if not data:
            return "graceful"
        probe.add(len(data))
        frames.append(data)
        held += len(data)
    return None


async def _fail(ws: WebSocket, error: SpeechsvcError) -> None:
    body = {"type": "error", "data": {"code": error.code, "message": str(error), "fatal": True}}
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await ws.send_text(json.dumps(body, ensure_ascii=False))
        await ws.close(close_code(error), close_reason(error))
