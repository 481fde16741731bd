"""Wire protocol v1 (JSON): client messages in, events out. The one place that knows the JSON shapes.

Client messages (``start``, ``audio``, ``flush``, ``stop``) are validated with pydantic into a
:class:`CallConfig`. Events are serialised by :func:`event_dict` from a :class:`~speechsvc.types.CallEvent`,
so an event looks the same wherever it is read: the WebSocket API, the platform adapters that return JSON, the
event subscriptions, the webhook, and the gRPC mapping (which parses the same dicts into protobuf messages). Any
event class works: its dataclass fields become the JSON fields, after ``type``, ``version``, ``call_id`` and
``seq``.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from speechsvc.errors import ProtocolError, SpeechsvcError, UnsupportedFormat
from speechsvc.types import (
    PIPELINE_RATE,
    AudioFormat,
    BusEvent,
    CallConfig,
    CallEvent,
    Encoding,
    ErrorEvent,
    Leg,
    RedactionRequest,
    RemoteEvent,
)

PROTOCOL_VERSION = 1

CallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]

# JSON event type -> the field of the gRPC ServerMessage `event` oneof that carries it; other types travel in
# the `extension` field as JSON.
GRPC_ONEOF = {
    "ready": "ready",
    "transcript.partial": "partial",
    "transcript.final": "final",
    "intent": "intent",
    "sentiment": "sentiment",
    "emotion": "emotion",
    "escalation": "escalation",
    "error": "error",
    "ended": "ended",
}


# ---- client messages -------------------------------------------------------------------------------------


class RedactionMessage(BaseModel):
    """A call's PII-redaction wishes (``start.redaction``); anything left out is the deployment's choice."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    types: list[Annotated[str, Field(max_length=32)]] | None = Field(None, max_length=16)
    style: Literal["tag", "mask"] | None = None


class StartMessage(BaseModel):
    """First message of a call."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["start"]
    version: Literal[1] = 1
    call_id: CallId = Field(default_factory=lambda: uuid.uuid4().hex)
    encoding: Encoding = "pcm16"
    sample_rate: int = PIPELINE_RATE
    channels: Literal[1, 2] = 1
    # Leg per channel; defaults: mono -> customer, stereo -> customer, agent.
    legs: list[Leg] | None = None
    # A configured language or "auto"; None = the server's default. Checked against the server's languages.
    language: str | None = Field(None, max_length=16)
    partials: bool = True
    metadata: dict[str, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict, max_length=32)
    redaction: RedactionMessage | None = None
    # Word (Chinese: character) timings on each final (``words: [{text, start_ms, end_ms, probability}]``).
    words: bool = False
    # Names and words to bias recognition toward in this call (on top of the deployment's hotwords).
    hotwords: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=100)

    def to_config(self, default_language: str) -> CallConfig:
        legs = tuple(self.legs) if self.legs else (("customer",) if self.channels == 1 else ("customer", "agent"))
        return CallConfig(
            call_id=self.call_id,
            audio=AudioFormat(self.encoding, self.sample_rate, self.channels),
            legs=legs,
            language=self.language or default_language,
            partials=self.partials,
            metadata=dict(self.metadata),
            redaction=self._redaction(),
            words=self.words,
            hotwords=tuple(dict.fromkeys(w.strip() for w in self.hotwords if w.strip())),
        )

    def _redaction(self) -> RedactionRequest:
        r = self.redaction
        if r is None:
            return RedactionRequest()
        return RedactionRequest(r.enabled, tuple(t.upper() for t in r.types) if r.types is not None else None, r.style)


class StopMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["stop"]


class FlushMessage(BaseModel):
    """Finish every open utterance now (its final follows) without ending the call: the client knows the speaker's
    turn is over (like Deepgram's ``Finalize``)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["flush"]


class AudioMessage(BaseModel):
    """Audio as base64 inside JSON, for platforms that cannot send binary frames."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["audio"]
    data: str = Field(max_length=4 << 20)


ClientMessage = StartMessage | StopMessage | AudioMessage | FlushMessage
_MESSAGES: dict[str, type[ClientMessage]] = {
    "start": StartMessage, "stop": StopMessage, "audio": AudioMessage, "flush": FlushMessage,
}
_FORMAT_FIELDS = {("encoding",), ("sample_rate",), ("channels",)}


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(text: str) -> dict[str, Any]:
    """One JSON text frame that must hold an object.

    Raises:
        ProtocolError: not JSON (NaN/Infinity included), nested too deeply, or not an object.
    """
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise ProtocolError(f"message is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(data, dict):
        raise ProtocolError("message must be a JSON object")
    return data


def parse_client_message(text: str) -> ClientMessage:
    """Parse one JSON text frame of the WebSocket protocol.

    Raises:
        ProtocolError: not JSON, not an object, an unknown ``type``, or fields that fail validation.
        UnsupportedFormat: a start message asking for an audio format we do not take.
    """
    data = parse_json_object(text)
    kind = data.get("type")
    model = _MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {sorted(_MESSAGES)}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, err['loc'])) or kind}: {err['msg']}" for err in e.errors())
        error = UnsupportedFormat if any(err["loc"][:1] in _FORMAT_FIELDS for err in e.errors()) else ProtocolError
        raise error(f"invalid {kind} message: {detail}") from None


# ---- events ----------------------------------------------------------------------------------------------


def event_dict(call_event: BusEvent) -> dict[str, Any]:
    """One event as a JSON-ready dict: ``type``, ``version``, ``call_id``, ``seq`` first, then the event's
    fields, then ``metadata`` when the call has any. A :class:`RemoteEvent` (another replica's call) was
    serialised there by this same function."""
    if isinstance(call_event, RemoteEvent):
        remote: dict[str, Any] = json.loads(call_event.json)
        return remote
    event = call_event.event
    body = asdict(event)
    body.pop("is_final", None)
    if not body.get("words", True):
        body.pop("words")  # word timings travel only when a call asked for them
    for key in ("alternatives", "probabilities"):
        if key in body:  # (label, probability) pairs as objects, the same shape as the protobuf messages
            body[key] = [{"label": label, "probability": p} for label, p in body[key]]
    out: dict[str, Any] = {"type": event.type, "version": PROTOCOL_VERSION, "call_id": call_event.call_id,
                           "seq": call_event.seq}
    out.update(body)
    if call_event.metadata:
        out["metadata"] = dict(call_event.metadata)
    finite: dict[str, Any] = _finite(out)
    return finite


def event_json(call_event: BusEvent) -> str:
    if isinstance(call_event, RemoteEvent):
        return call_event.json
    return json.dumps(event_dict(call_event), ensure_ascii=False)


def error_event(error: SpeechsvcError, call_id: str = "", fatal: bool = True) -> CallEvent:
    """The event for an error that ends a call before (or instead of) its session: seq 0, like ``ready``."""
    return CallEvent(call_id, 0, ErrorEvent(error.code, str(error), fatal))


def _finite(value: Any) -> Any:
    """JSON has no NaN; make sure none leaks out of a model."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
