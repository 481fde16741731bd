"""Twilio Media Streams adapter: ``wss://HOST/v1/twilio`` (Twilio connects; TwiML ``<Stream url=...>``).

Twilio sends JSON text frames: ``connected``, ``start`` (streamSid, callSid, tracks, customParameters,
mediaFormat audio/x-mulaw 8000 Hz mono), ``media`` (track inbound|outbound, chunk, timestamp, base64 μ-law
payload), ``dtmf`` and ``mark`` (bidirectional streams only), ``stop``. Inbound is the customer leg, outbound the
agent leg; the call id is the callSid.

**Nothing is ever sent back on this socket.** A ``<Start><Stream>`` fork must receive nothing, and a
bidirectional ``<Connect><Stream>`` only Twilio's own ``media``/``mark``/``clear`` (errors 31951, 31924): events
go to the event subscriptions and the webhook. A stream that cannot be served is closed with a close code only.

Twilio forbids query strings in ``<Stream url>`` (error 31920): the call's options (``language``, and any
operator ids, which are echoed in every event's metadata) come from ``<Parameter>``s, i.e. ``start.customParameters``.

Each media frame is placed by its ``media.timestamp`` (ms from the stream's start, one clock for both tracks):
a gap (Twilio does not always send silent or lost audio) is filled with silence, a repeated or overlapping
frame is dropped or trimmed (:class:`TrackClock`), so both legs' times stay on the call's clock.

When ``SPEECHSVC_TWILIO_AUTH_TOKEN`` is set, the upgrade must carry a valid ``X-Twilio-Signature`` (HMAC of the
public ``wss://`` URL with the account's auth token, checked with the ``twilio`` SDK); others get HTTP 403.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.responses import PlainTextResponse
from twilio.request_validator import RequestValidator, get_signature_algorithm

from speechsvc.config import Settings
from speechsvc.errors import InvalidAudio, ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.protocol import parse_json_object
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.security.access import access
from speechsvc.security.asgi import Verifier
from speechsvc.security.principal import Principal, platform_principal
from speechsvc.speech.audio import MULAW_TO_PCM
from speechsvc.transports.common import PeerGone, close
from speechsvc.transports.lifecycle import serve_call
from speechsvc.transports.platform import silence
from speechsvc.types import AudioFormat, CallConfig, Leg

log = logging.getLogger(__name__)
router = APIRouter()

RATE = 8000
SAMPLES_PER_MS = RATE // 1000
# Twilio names tracks "inbound"/"outbound" in media and "inbound_track"/"outbound_track" in dtmf.
TRACK_LEGS: dict[str, Leg] = {"inbound": "customer", "outbound": "agent",
                              "inbound_track": "customer", "outbound_track": "agent"}


@dataclass
class Placement:
    """Where one media frame goes on its track: silence to insert first, and the part of the payload to keep."""

    silence: int  # samples of silence before the payload (a gap)
    skip: int  # leading payload samples already covered (an overlap)
    gap_over: int = 0  # samples of the gap beyond the fill limit (not filled)


class TrackClock:
    """One track's position on the stream clock, in samples from the stream's start.

    Frames come in order over one TCP connection, so nothing is held back to reorder: only the look-behind that
    keeps the track monotonic. A frame entirely before the track's position is a duplicate (dropped), one that
    starts before it overlaps (its covered head is cut), one that starts after it follows a gap (silence first,
    at most ``max_gap`` samples).
    """

    def __init__(self, max_gap: int) -> None:
        self.position = 0
        self.max_gap = max_gap

    def place(self, timestamp: int | None, samples: int) -> Placement | None:
        """Placement of a frame of ``samples`` samples starting at ``timestamp`` (samples; None = right after the
        last one); None when it adds nothing (a duplicate)."""
        start = self.position if timestamp is None else timestamp
        end = start + samples
        if end <= self.position:
            return None
        skip = max(0, self.position - start)
        gap = max(0, start - self.position)
        filled = min(gap, self.max_gap)
        self.position = self.position + filled + (samples - skip)
        return Placement(filled, skip, gap - filled)


def call_config(start: dict[str, Any], default_language: str) -> CallConfig:
    """The ``start`` message as a CallConfig; options from ``customParameters`` only.

    Raises:
        UnsupportedFormat: a media format other than 8 kHz mono μ-law.
        ProtocolError: missing ids.
    """
    media = start.get("mediaFormat") or {}
    if not isinstance(media, dict):
        raise UnsupportedFormat("start.mediaFormat must be an object")
    try:
        declared = (media.get("encoding"), int(media.get("sampleRate", 0)), int(media.get("channels", 1)))
    except (TypeError, ValueError):
        declared = (None, 0, 0)
    if declared != ("audio/x-mulaw", RATE, 1):
        raise UnsupportedFormat(f"mediaFormat {media} is not supported; Twilio streams audio/x-mulaw, 8000 Hz, mono")
    call_sid = start.get("callSid") or start.get("streamSid")
    if not isinstance(call_sid, str) or not call_sid:
        raise ProtocolError("start message has no callSid or streamSid")
    tracks = start.get("tracks") or ["inbound"]
    parameters = start.get("customParameters") or {}
    if not isinstance(tracks, list) or not isinstance(parameters, dict):
        raise ProtocolError("start.tracks must be a list and start.customParameters an object")
    legs = tuple(TRACK_LEGS[t] for t in ("inbound", "outbound") if t in tracks) or ("customer",)
    custom = {str(k): str(v) for k, v in parameters.items()}
    ids = {k: str(start[k]) for k in ("callSid", "streamSid", "accountSid") if start.get(k)}
    return CallConfig(
        call_id=call_sid,
        audio=AudioFormat("mulaw", RATE, 1),
        legs=legs,
        language=custom.pop("language", default_language),
        metadata={**custom, **ids},
        per_leg_audio=True,
    )


def signature_ok(headers: Mapping[str, str], path: str, settings: Settings) -> bool:
    """Whether the upgrade carries the ``X-Twilio-Signature`` Twilio makes for the public URL (no token: yes).

    Twilio signs the ``<Stream url>`` exactly as written in the TwiML (``wss://...``, no query string, no body);
    behind a TLS proxy the app sees another URL, so the public one comes from the settings.
    """
    if settings.twilio_auth_token is None:
        return True
    signature = headers.get("x-twilio-signature", "")
    if not signature:
        return False
    url = settings.twilio_public_url or f"wss://{headers.get('host', '')}{path}"
    algorithm = get_signature_algorithm(headers.get("x-twilio-webhooks-signature-settings", ""))
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    try:
        return bool(validator.validate(url, {}, signature, algorithm=algorithm))
    except ValueError:  # an algorithm the SDK does not know
        return False


def signature_verifier(settings: Settings) -> Verifier:
    """For the platform guard: a valid ``X-Twilio-Signature`` authenticates the upgrade as the Twilio platform of
    ``twilio_tenant`` (Twilio cannot send an API key); without one the guard falls back to the other credentials."""

    def verify(scope: dict[str, Any]) -> Principal | None:
        if settings.twilio_auth_token is None:
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if signature_ok(headers, scope.get("path", ""), settings):
            return platform_principal(settings.twilio_tenant, "twilio")
        return None

    return verify


@router.websocket("/v1/twilio")
@access("stream", "twilio")
async def twilio(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    settings = engine.settings
    if not signature_ok(ws.headers, ws.url.path, settings):
        engine.metrics.rejections.labels("twilio_signature").inc()
        log.warning("Twilio stream refused: missing or invalid X-Twilio-Signature")
        with contextlib.suppress(RuntimeError):
            await ws.send_denial_response(PlainTextResponse("invalid X-Twilio-Signature", status_code=403))
            return
        await ws.close(1008)  # servers without the denial-response extension answer 403 to a close before accept
        return
    await ws.accept()
    try:
        start = await asyncio.wait_for(_wait_for_start(ws), settings.platform_start_timeout_s)
        config = call_config(start["start"] if isinstance(start.get("start"), dict) else {},
                             settings.default_language)
    except (PeerGone, WebSocketDisconnect):
        return
    except TimeoutError:
        log.warning("Twilio stream sent no start within %.0f s; closed", settings.platform_start_timeout_s)
        await close(ws, ProtocolError("no start message"))
        return
    except SpeechsvcError as e:
        log.warning("Twilio stream refused: %s", e)
        await close(ws, e)
        return

    clocks = {leg: TrackClock(settings.twilio_max_gap_ms * SAMPLES_PER_MS) for leg in config.legs}

    async def receive(session: CallSession) -> SpeechsvcError | None:
        while True:
            try:
                message = await asyncio.wait_for(_receive_json(ws), settings.platform_idle_timeout_s)
            except TimeoutError:
                return ProtocolError(f"no message from Twilio for {settings.platform_idle_timeout_s:.0f} s")
            except (InvalidAudio, ProtocolError) as e:
                session.report(e)  # dropped; the call goes on
                continue
            try:
                event = message["event"]
                if event == "media":
                    _feed_media(session, clocks, message.get("media"))
                elif event == "dtmf":
                    _dtmf(session, message.get("dtmf"))
                elif event == "stop":
                    return None
                elif event in ("mark", "connected", "start"):
                    log.debug("twilio %s: %s", event, message.get(event))
                else:
                    raise ProtocolError(f"unknown Twilio event {event!r}")
            except (InvalidAudio, ProtocolError) as e:
                session.report(e)  # dropped; the call goes on

    try:
        error = await serve_call(engine, config, "twilio", receive, None)
    except SpeechsvcError as e:  # admission, or the server is draining
        log.warning("Twilio stream ended: %s", e)
        await close(ws, e)
        return
    await close(ws, error)


async def _receive_json(ws: WebSocket) -> dict[str, Any]:
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise PeerGone
    text = message.get("text")
    if text is None:
        raise ProtocolError("Twilio Media Streams sends JSON text frames only")
    data = parse_json_object(text)
    if not isinstance(data.get("event"), str):
        raise ProtocolError("message has no 'event'")
    return data


async def _wait_for_start(ws: WebSocket) -> dict[str, Any]:
    while True:
        message = await _receive_json(ws)
        if message["event"] == "start":
            return message
        if message["event"] != "connected":
            raise ProtocolError(f"{message['event']!r} received before 'start'")


def _timestamp(media: dict[str, Any]) -> int | None:
    raw = media.get("timestamp")
    if raw is None:
        return None
    try:
        ms = int(str(raw))
    except ValueError:
        raise InvalidAudio(f"media.timestamp {str(raw)[:20]!r} is not an integer") from None
    if ms < 0:
        raise InvalidAudio(f"media.timestamp {ms} is negative")
    return ms * SAMPLES_PER_MS


def _feed_media(session: CallSession, clocks: dict[Leg, TrackClock], media: Any) -> None:
    if not isinstance(media, dict):
        raise InvalidAudio("media message without a 'media' object")
    leg = TRACK_LEGS.get(str(media.get("track", "inbound")))
    if leg is None or leg not in session.legs:
        raise InvalidAudio(f"media for track {media.get('track')!r}, which this stream did not announce")
    try:
        payload = base64.b64decode(media.get("payload", ""), validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise InvalidAudio(f"media payload is not valid base64: {e}") from None
    if not payload:
        raise InvalidAudio("empty media payload")
    placement = clocks[leg].place(_timestamp(media), len(payload))
    if placement is None:
        log.debug("%s: duplicate media frame at %s ms dropped", leg, media.get("timestamp"))
        return
    for chunk in silence(placement.silence, RATE):
        session.feed(leg, chunk)
    session.feed(leg, MULAW_TO_PCM[np.frombuffer(payload[placement.skip :], np.uint8)])
    if placement.gap_over:
        raise InvalidAudio(f"{leg}: media.timestamp jumped {placement.gap_over // SAMPLES_PER_MS} ms beyond the "
                           f"{clocks[leg].max_gap // SAMPLES_PER_MS} ms gap limit; this track's times now run early")


def _dtmf(session: CallSession, dtmf: Any) -> None:
    if not isinstance(dtmf, dict):
        raise ProtocolError("dtmf message without a 'dtmf' object")
    leg = TRACK_LEGS.get(str(dtmf.get("track", "inbound_track")), "customer")
    if leg not in session.legs:
        leg = session.legs[0]
    session.dtmf(leg, str(dtmf.get("digit", "")))
