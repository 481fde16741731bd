"""Genesys Cloud AudioHook (Monitor) adapter: ``wss://HOST/v1/audiohook`` (Genesys Cloud connects).

The AudioHook protocol, version 2, as Genesys' reference implementation (purecloudlabs/audiohook-reference-
implementation) defines it. Every text message is JSON with ``version: "2"``, ``id`` (the session), ``type``,
``seq`` and ``parameters``; the client's also carry ``serverseq`` (the last server ``seq`` it saw) and
``position`` (``PT12.34S``: audio sent so far), the server's ``clientseq``. Each side's ``seq`` starts at 1 and
grows by one per message; a client message out of sequence, for another session, or claiming a ``serverseq``
not yet sent is a protocol error.

- ``open`` (organization, conversation, participant, media offers) → ``opened`` with the chosen offer: PCMU (or
  L16, little-endian) at 8 kHz, stereo interleaved per sample in the order of ``channels`` — ``external`` is the
  customer leg, ``internal`` the agent leg. The call id is the ``conversationId``. A connection probe (the null
  conversation id) is answered ``opened`` and creates no call.
- binary frames: audio, after ``opened`` only. ``position`` is the call's clock: when a client message says more
  audio was sent than arrived, the gap is filled with silence.
- ``ping`` → ``pong``; ``paused``/``resumed``/``discarded`` are logged; ``update`` (language) → ``updated`` (the
  language of an open call does not change); ``error`` is logged.
- ``close`` → the open utterances are finished, their transcripts sent as ``event`` messages, then ``closed``.
  The server ends a session with ``disconnect`` (``completed`` when it drains, ``error`` on a protocol error,
  ``unauthorized``) and answers the ``close`` that follows.

Transcripts go back as ``event`` messages with ``transcript`` entities (channelId 0/1 in channel order, offsets
on the stream position) and escalations as ``speechsvc.escalation`` entities; AudioHook Monitor ignores them,
so every event also reaches the event subscriptions and the webhook, keyed by the conversation id. The
participant's ``ani``, ``aniName`` and ``dnis`` are personal data: never logged nor put in the call's metadata.

Authentication, when ``SPEECHSVC_AUDIOHOOK_API_KEY`` is set: the upgrade must carry that ``X-API-KEY``; when
``SPEECHSVC_AUDIOHOOK_CLIENT_SECRET`` is set too, an RFC 9421 signature made with it (HMAC-SHA256, key = the
base64-decoded secret) over ``@request-target``, ``@authority``, ``audiohook-organization-id``,
``audiohook-session-id``, ``audiohook-correlation-id`` and ``x-api-key``, at most 10 s old, with a nonce; the
``Audiohook-Organization-Id`` header must match the ``open``. A failure is answered ``disconnect``
(``unauthorized``) after a fixed delay, as the reference server does.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)

from speechsvc.config import Settings
from speechsvc.errors import InvalidAudio, ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.protocol import event_dict
from speechsvc.runtime.engine import Engine
from speechsvc.runtime.session import CallSession
from speechsvc.security.access import access
from speechsvc.security.asgi import Verifier
from speechsvc.security.principal import Principal, platform_principal
from speechsvc.transports.common import PeerGone
from speechsvc.transports.lifecycle import serve_call
from speechsvc.transports.platform import pieces, silence
from speechsvc.types import AudioFormat, CallConfig, CallEvent, Leg

log = logging.getLogger(__name__)
router = APIRouter()

VERSION = "2"
RATE = 8000
NULL_UUID = "00000000-0000-0000-0000-000000000000"
SIGNED_COMPONENTS = ("@request-target", "@authority", "audiohook-organization-id", "audiohook-session-id",
                     "audiohook-correlation-id", "x-api-key")
MAX_SIGNATURE_AGE = datetime.timedelta(seconds=10)
MIN_NONCE = 22
# A failed authentication is answered this long after the connection, whatever failed (no timing oracle).
FAILURE_DELAY_S = 0.5
MAX_TEXT = 65535
# How long the client gets to answer a disconnect with close, and to close the socket after closed.
CLOSE_WAIT_S = 10.0
MAX_POSITION_GAP_S = 60.0
DURATION = re.compile(r"^PT(\d*\.)?\d+S$")
FORMATS = {"PCMU": "mulaw", "L16": "pcm16"}
CHANNEL_LEGS: dict[str, Leg] = {"external": "customer", "internal": "agent"}
LANGUAGE_TAGS = {"zh": "zh-CN", "en": "en-US"}


def duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.3f}".rstrip("0").rstrip(".") + "S"


def parse_duration(value: Any) -> float:
    if not isinstance(value, str) or not DURATION.match(value):
        raise ProtocolError(f"{str(value)[:40]!r} is not an AudioHook duration (PT<seconds>S)")
    return float(value[2:-1])


# ---- authentication --------------------------------------------------------------------------------------------


@dataclass
class _Upgrade:
    """The upgrade request as http-message-signatures reads it."""

    url: str
    headers: dict[str, str]
    method: str = "GET"


class _Key(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, secret: bytes) -> None:
        self.key_id, self.secret = key_id, secret

    def resolve_public_key(self, key_id: str) -> bytes:
        if not hmac.compare_digest(key_id, self.key_id):
            raise InvalidSignature("the signature's keyid is not the X-API-KEY")
        return self.secret

    def resolve_private_key(self, key_id: str) -> bytes:
        return self.resolve_public_key(key_id)


def authenticate(ws: WebSocket, settings: Settings) -> str | None:
    """Why the connection is not authorized, or None when it is (or no API key is configured)."""
    if settings.audiohook_api_key is None:
        return None
    api_key = settings.audiohook_api_key.get_secret_value()
    given = ws.headers.get("x-api-key", "")
    if not given or not hmac.compare_digest(given, api_key):
        return "missing or unknown X-API-KEY"
    if settings.audiohook_client_secret is None:
        return None
    if "signature" not in ws.headers or "signature-input" not in ws.headers:
        return "the connection request is not signed"
    try:
        secret = base64.b64decode(settings.audiohook_client_secret.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        log.error("SPEECHSVC_AUDIOHOOK_CLIENT_SECRET is not base64")
        return "server misconfigured"
    query = f"?{ws.url.query}" if ws.url.query else ""
    request = _Upgrade(f"https://{ws.headers.get('host', '')}{ws.url.path}{query}", dict(ws.headers.items()))
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.HMAC_SHA256, key_resolver=_Key(api_key, secret))
    try:
        results = verifier.verify(request, max_age=MAX_SIGNATURE_AGE, require_components=SIGNED_COMPONENTS)
    except (HTTPMessageSignaturesException, ValueError, KeyError) as e:  # malformed, expired, wrong key or MAC
        return f"signature not valid: {type(e).__name__}: {str(e)[:120]}"
    if any(len(str(r.parameters.get("nonce") or "")) < MIN_NONCE for r in results):
        return f"the signature needs a nonce of at least {MIN_NONCE} characters"
    return None


def guard_verifier(settings: Settings) -> Verifier:
    """For the platform guard: with ``audiohook_api_key`` set, AudioHook's own key and signature authenticate a
    connection (checked by the adapter, which refuses in the protocol's terms: a ``disconnect`` with reason
    ``unauthorized``), and the call belongs to ``audiohook_tenant``; without it, the connection needs a speechsvc
    credential (``X-API-KEY`` may carry a speechsvc key) like any other platform."""

    def verify(scope: dict[str, Any]) -> Principal | None:
        if settings.audiohook_api_key is None:
            return None
        return platform_principal(settings.audiohook_tenant, "audiohook")

    return verify


# ---- the session -----------------------------------------------------------------------------------------------


@dataclass
class _Media:
    encoding: str
    channels: tuple[str, ...]
    offer: dict[str, Any]

    @property
    def legs(self) -> tuple[Leg, ...]:
        return tuple(CHANNEL_LEGS[c] for c in self.channels)


def choose_media(offers: Any) -> _Media | None:
    """The offer speechsvc takes: stereo before mono, PCMU before L16 (L16's byte order is not specified)."""
    usable = []
    for offer in offers if isinstance(offers, list) else []:
        if not isinstance(offer, dict) or offer.get("type") != "audio" or offer.get("rate") != RATE:
            continue
        channels = offer.get("channels")
        if (offer.get("format") not in FORMATS or not isinstance(channels, list) or not channels
                or len(channels) > 2 or len(set(channels)) != len(channels)
                or not set(channels) <= set(CHANNEL_LEGS)):
            continue
        usable.append(_Media(FORMATS[offer["format"]], tuple(channels), offer))
    usable.sort(key=lambda m: (-len(m.channels), m.encoding != "mulaw"))
    return usable[0] if usable else None


@dataclass
class _Conn:
    ws: WebSocket
    session_id: str | None
    seq: int = 0
    clientseq: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    state: str = "PREPARING"
    closed_sent: bool = False

    async def send(self, kind: str, parameters: dict[str, Any]) -> None:
        async with self.lock:
            if self.closed_sent:
                return
            self.seq += 1
            body = {"version": VERSION, "id": self.session_id or NULL_UUID, "type": kind, "seq": self.seq,
                    "clientseq": self.clientseq, "parameters": parameters}
            if kind == "closed":
                self.closed_sent = True
            try:
                await self.ws.send_text(json.dumps(body, ensure_ascii=False))
            except (RuntimeError, WebSocketDisconnect, OSError):
                raise PeerGone from None

    async def receive(self, timeout: float) -> dict[str, Any] | bytes:
        """The next message (checked JSON, or audio bytes). Raises PeerGone, TimeoutError, ProtocolError."""
        message = await asyncio.wait_for(self.ws.receive(), timeout)
        if message["type"] == "websocket.disconnect":
            raise PeerGone
        if message.get("bytes") is not None:
            data: bytes = message["bytes"]
            return data
        return self.check(message.get("text") or "")

    def check(self, text: str) -> dict[str, Any]:
        if len(text) > MAX_TEXT:
            raise ProtocolError(f"text message of {len(text)} characters exceeds 64 KiB")
        try:
            message = json.loads(text)
        except ValueError:
            raise ProtocolError("text message is not valid JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str) \
                or not isinstance(message.get("seq"), int) or not isinstance(message.get("serverseq"), int) \
                or not isinstance(message.get("id"), str) or not isinstance(message.get("parameters"), dict):
            raise ProtocolError("not a well-formed AudioHook client message (version, id, type, seq, serverseq, "
                                "position, parameters)")
        if message.get("version") != VERSION:
            raise ProtocolError(f"protocol version {message.get('version')!r} is not supported; speechsvc speaks 2")
        parse_duration(message.get("position"))
        if message["seq"] != self.clientseq + 1:
            raise ProtocolError(f"invalid seq {message['seq']} (expected {self.clientseq + 1})")
        self.clientseq = message["seq"]
        if message["serverseq"] > self.seq:
            raise ProtocolError(f"invalid serverseq {message['serverseq']} (the server has sent {self.seq})")
        if self.session_id is None:
            self.session_id = message["id"]
        elif message["id"] != self.session_id:
            raise ProtocolError("session identifier mismatch")
        return message

    async def end(self, reason: str, info: str, idle_s: float) -> None:
        """``disconnect`` (unless the client already asked to close), then the close transaction."""
        with contextlib.suppress(PeerGone):
            if self.state != "CLOSING":
                await self.send("disconnect", {"reason": reason, "info": info[:200]})
                await self._wait_for_close(min(idle_s, CLOSE_WAIT_S))
            await self.send("closed", {})
            await self._wait_for_socket_close()

    async def _wait_for_close(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                message = await self.receive(left)
            except (TimeoutError, ProtocolError):
                return
            if isinstance(message, dict) and message["type"] == "close":
                return

    async def _wait_for_socket_close(self) -> None:
        """The client closes the socket after ``closed``; close it ourselves if it does not."""
        with contextlib.suppress(TimeoutError, PeerGone, ProtocolError):
            while True:
                await self.receive(CLOSE_WAIT_S)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await self.ws.close(1000)


def call_config(open_message: dict[str, Any], media: _Media, session_id: str, settings: Settings,
                correlation_id: str) -> CallConfig:
    params = open_message["parameters"]
    language = str(params.get("language") or "").split("-")[0].lower()
    if language not in settings.languages:
        language = settings.default_language
    participant = params.get("participant") if isinstance(params.get("participant"), dict) else {}
    metadata = {"audiohookSessionId": session_id, "conversationId": str(params.get("conversationId")),
                "organizationId": str(params.get("organizationId", "")), "correlationId": correlation_id,
                "participantId": str(participant.get("id", ""))}
    return CallConfig(call_id=str(params["conversationId"])[:128],
                      audio=AudioFormat(media.encoding, RATE, len(media.channels)),  # type: ignore[arg-type]
                      legs=media.legs, language=language,
                      metadata={k: v[:128] for k, v in metadata.items() if v})


def entity(call_event: CallEvent, media: _Media, session_id: str) -> dict[str, Any] | None:
    """An event as an AudioHook event entity: transcripts as ``transcript``, escalations as our own type."""
    body = event_dict(call_event)
    if body["type"] in ("transcript.final", "transcript.partial") and body["leg"] in media.legs:
        start, end = body["start_ms"] / 1000, body["end_ms"] / 1000
        alternative: dict[str, Any] = {
            "confidence": body["confidence"],
            "interpretations": [{"type": "display", "transcript": body["text"]}],
        }
        if body.get("language"):
            alternative["languages"] = [LANGUAGE_TAGS.get(body["language"], body["language"])]
        return {"type": "transcript", "data": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}/{body['leg']}/{body['utterance']}")),
            "channelId": media.legs.index(body["leg"]),
            "isFinal": body["type"] == "transcript.final",
            "offset": duration(start),
            "duration": duration(end - start),
            "alternatives": [alternative],
        }}
    if body["type"] == "escalation":
        return {"type": "speechsvc.escalation", "data": body}
    return None


@router.websocket("/v1/audiohook")
@access("stream", "audiohook")
async def audiohook(ws: WebSocket) -> None:
    engine: Engine = ws.app.state.engine
    settings = engine.settings
    await ws.accept()
    conn = _Conn(ws, ws.headers.get("audiohook-session-id"))
    idle = settings.platform_idle_timeout_s
    failure = authenticate(ws, settings)
    if failure is not None:
        engine.metrics.rejections.labels("audiohook_unauthorized").inc()
        log.warning("AudioHook session refused: %s", failure)
        await asyncio.sleep(FAILURE_DELAY_S)
        await conn.end("unauthorized", failure, idle)
        return
    try:
        message = await conn.receive(settings.platform_start_timeout_s)
        if not isinstance(message, dict) or message["type"] != "open":
            raise ProtocolError("the first message must be open")
    except PeerGone:
        return
    except TimeoutError:
        await conn.end("error", f"no open message within {settings.platform_start_timeout_s:.0f} s", idle)
        return
    except ProtocolError as e:
        await conn.end("error", f"Client Error: {e}", idle)
        return
    conn.state = "OPENING"
    params = message["parameters"]
    header_org = ws.headers.get("audiohook-organization-id")
    if settings.audiohook_api_key is not None and header_org != params.get("organizationId"):
        await asyncio.sleep(FAILURE_DELAY_S)
        await conn.end("unauthorized", "organizationId does not match the Audiohook-Organization-Id header", idle)
        return
    media = choose_media(params.get("media"))
    if not isinstance(params.get("conversationId"), str) or not params["conversationId"]:
        await conn.end("error", "Client Error: open has no conversationId", idle)
        return
    if media is None:
        await conn.end("error", "no offered media is supported: speechsvc takes PCMU or L16 at 8000 Hz, "
                                "channels external and/or internal", idle)
        return
    opened: dict[str, Any] = {"media": [media.offer], "startPaused": False}
    if params.get("supportedLanguages") is True:
        opened["supportedLanguages"] = [LANGUAGE_TAGS.get(lang, lang) for lang in settings.languages]
    if params["conversationId"] == NULL_UUID:  # a connection probe: answer, create no call
        with contextlib.suppress(PeerGone):
            await conn.send("opened", opened)
            conn.state = "ACTIVE"
            await _probe_session(conn, idle)
        return
    config = call_config(message, media, conn.session_id or NULL_UUID, settings,
                         ws.headers.get("audiohook-correlation-id", ""))
    ended: list[SpeechsvcError | None] = []

    async def send(event: CallEvent) -> None:
        if not settings.audiohook_events:
            return
        item = entity(event, media, conn.session_id or NULL_UUID)
        if item is not None:
            await conn.send("event", {"entities": [item]})

    async def receive(session: CallSession) -> SpeechsvcError | None:
        await conn.send("opened", opened)
        conn.state = "ACTIVE"
        error = await _stream(conn, session, media, settings)
        ended.append(error)
        return error

    try:
        error = await serve_call(engine, config, "audiohook", receive, send)
    except SpeechsvcError as e:  # admission (format, capacity) or the server draining
        log.warning("AudioHook session %s: %s", conn.session_id, e)
        await conn.end("completed" if conn.state == "ACTIVE" and not isinstance(e, UnsupportedFormat) else "error",
                       str(e), idle)
        return
    if error is not None:
        await conn.end("error", str(error), idle)
    else:
        await conn.end("completed", "", idle)


async def _probe_session(conn: _Conn, idle_s: float) -> None:
    """A connection probe: answer pings, end on close."""
    while True:
        try:
            message = await conn.receive(idle_s)
        except (TimeoutError, ProtocolError) as e:
            await conn.end("error", str(e) or "timeout", idle_s)
            return
        if isinstance(message, dict):
            if message["type"] == "ping":
                await conn.send("pong", {})
            elif message["type"] == "close":
                conn.state = "CLOSING"
                await conn.end("completed", "", idle_s)
                return


async def _stream(conn: _Conn, session: CallSession, media: _Media, settings: Settings) -> SpeechsvcError | None:
    """Audio and control messages until ``close`` (None) or a protocol error (returned); PeerGone when the
    socket goes."""
    frame_bytes = session.config.audio.frame_bytes
    max_bytes = session.max_frame_bytes
    received = 0  # samples per channel
    while True:
        try:
            message = await conn.receive(settings.platform_idle_timeout_s)
        except TimeoutError:
            return ProtocolError(f"nothing received for {settings.platform_idle_timeout_s:.0f} s")
        except ProtocolError as e:
            return ProtocolError(f"Client Error: {e}")
        if isinstance(message, bytes):
            if conn.state != "ACTIVE":
                session.report(ProtocolError(f"audio received while {conn.state.lower()}; dropped"))
                continue
            for piece in pieces(message, max_bytes, frame_bytes):
                try:
                    session.feed_bytes(piece)
                    received += len(piece) // frame_bytes
                except InvalidAudio as e:
                    session.report(e)  # this frame is dropped; the call goes on
            continue
        kind, params = message["type"], message["parameters"]
        received = _follow_position(session, media, received, parse_duration(message["position"]))
        if kind == "ping":
            await conn.send("pong", {})
        elif kind == "close":
            conn.state = "CLOSING"
            log.info("AudioHook close: %s", params.get("reason"))
            return None
        elif kind == "paused":
            conn.state = "PAUSED"
        elif kind == "resumed":
            conn.state = "ACTIVE"
            log.info("AudioHook resumed at %s after %s discarded", params.get("start"), params.get("discarded"))
        elif kind == "discarded":
            log.info("AudioHook discarded %s at %s", params.get("discarded"), params.get("start"))
        elif kind == "update":
            log.info("AudioHook update %s (the call's ASR language stays %s)", params, session.config.language)
            await conn.send("updated", {})
        elif kind == "error":
            log.warning("AudioHook client error %s: %s", params.get("code"), str(params.get("message"))[:200])
        elif kind == "open":
            return ProtocolError("Client Error: open received twice")
        else:
            return ProtocolError(f"Client Error: '{kind}' is not a supported client message")


def _follow_position(session: CallSession, media: _Media, received: int, position_s: float) -> int:
    """``position`` is the call's clock: audio the client counts but that never arrived becomes silence."""
    missing = int(position_s * RATE) - received
    if missing <= RATE // 50:  # within a frame
        return received
    fill = min(missing, int(MAX_POSITION_GAP_S * RATE))
    for leg in media.legs:
        for chunk in silence(fill, RATE):
            session.feed(leg, chunk)
    log.info("AudioHook position %.3f s is %d ms ahead of the audio received; filled with silence", position_s,
             missing * 1000 // RATE)
    return received + fill
