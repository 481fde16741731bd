"""Twilio Media Streams adapter: ``wss://HOST/v1/twilio`` (Twilio connects; TwiML ``<Stream url=...>``).

Twilio sends JSON text frames: ``connected``, ``start`` (streamSid, callSid, tracks, customParameters,
mediaFormat audio/x-mulaw 8000 Hz mono), ``media`` (track inbound|outbound, chunk, timestamp, base64 μ-law
payload), ``dtmf``, ``mark``, ``stop``. Inbound is the customer leg, outbound the agent leg. speechsvc's
events go back on the same socket as JSON (``?events=none`` turns that off, e.g. for bidirectional streams)
and always to the event bus, keyed by the callSid. Query parameter ``language`` (zh, en, auto) sets the
language; a ``customParameters.language`` does too.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import numpy as np
from fastapi import APIRouter, WebSocket

from speechsvc.errors import InvalidAudio, ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.protocol import event_dict, parse_json_object
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.speech.audio import MULAW_TO_PCM
from speechsvc.transports.common import PeerGone, close, fail, send_json
from speechsvc.transports.lifecycle import serve_call
from speechsvc.types import AudioFormat, CallConfig, CallEvent, Leg

log = logging.getLogger(__name__)
router = APIRouter()

TRACK_LEGS: dict[str, Leg] = {"inbound": "customer", "outbound": "agent"}


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


def call_config(start: dict[str, Any], language: str) -> CallConfig:
    """The ``start`` message as a CallConfig.

    Raises:
        UnsupportedFormat: a media format other than 8 kHz mono μ-law.
        ProtocolError: missing ids.
    """
    media = start.get("mediaFormat") or {}
    if (media.get("encoding"), int(media.get("sampleRate", 0)), int(media.get("channels", 1))) != (
        "audio/x-mulaw", 8000, 1
    ):
        raise UnsupportedFormat(f"mediaFormat {media} is not supported; Twilio streams audio/x-mulaw, 8000 Hz, mono")
    call_sid = start.get("callSid") or start.get("streamSid")
    if not isinstance(call_sid, str) or not call_sid:
        raise ProtocolError("start message has no callSid or streamSid")
    tracks = start.get("tracks") or ["inbound"]
    legs = tuple(TRACK_LEGS[t] for t in ("inbound", "outbound") if t in tracks) or ("customer",)
    custom = {str(k): str(v) for k, v in (start.get("customParameters") or {}).items()}
    ids = {k: str(start[k]) for k in ("callSid", "streamSid", "accountSid") if start.get(k)}
    return CallConfig(
        call_id=call_sid,
        audio=AudioFormat("mulaw", 8000, 1),
        legs=legs,
        language=custom.pop("language", language),
        metadata={**custom, **ids},
        per_leg_audio=True,
    )


@router.websocket("/v1/twilio")
async def twilio(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    await ws.accept()
    language = ws.query_params.get("language") or engine.settings.default_language
    echo = ws.query_params.get("events", "socket") != "none"
    try:
        start = await _wait_for_start(ws)
        config = call_config(start["start"], language)
    except PeerGone:
        return
    except SpeechsvcError as e:
        await fail(ws, e)
        return

    async def receive(session: CallSession) -> SpeechsvcError | None:
        while True:
            try:
                message = await _receive_json(ws)
                event = message["event"]
                if event == "media":
                    _feed_media(session, message.get("media") or {})
                elif event == "stop":
                    return None
                elif event in ("dtmf", "mark", "connected"):
                    log.debug("twilio %s: %s", event, message.get(event))
                else:
                    raise ProtocolError(f"unknown Twilio event {event!r}")
            except (InvalidAudio, ProtocolError) as e:
                session.report(e)  # dropped; the call goes on

    async def send(event: CallEvent) -> None:
        await send_json(ws, event_dict(event))

    try:
        await serve_call(engine, config, "twilio", receive, send if echo else None)
    except SpeechsvcError as e:
        await fail(ws, e)
        return
    await close(ws, None)


async def _wait_for_start(ws: WebSocket) -> dict[str, Any]:
    while True:
        message = await _receive_json(ws)
        if message["event"] == "start":
            return message
        if message["event"] != "connected":
            raise ProtocolError(f"{message['event']!r} received before 'start'")


def _feed_media(session: CallSession, media: dict[str, Any]) -> None:
    leg = TRACK_LEGS.get(str(media.get("track", "inbound")))
    if leg is None or leg not in session.legs:
        raise InvalidAudio(f"media for track {media.get('track')!r}, which this stream did not announce")
    try:
        payload = base64.b64decode(media.get("payload", ""), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidAudio(f"media payload is not valid base64: {e}") from None
    if not payload:
        raise InvalidAudio("empty media payload")
    session.feed(leg, MULAW_TO_PCM[np.frombuffer(payload, np.uint8)])

