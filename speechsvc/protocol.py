"""Wire protocol v1 (JSON): client messages validated with pydantic, and pipeline events as dicts.

Every transport that speaks JSON (WebSocket, the event subscription endpoints, platform adapters that
return JSON) uses :func:`event_to_dict`, so an event looks the same wherever it is read. The gRPC
transport maps the same events onto protobuf messages.
"""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from speechsvc.audio import SAMPLE_RATES, AudioFormat, Encoding
from speechsvc.errors import ProtocolError, UnsupportedFormat
from speechsvc.session import CallConfig
from speechsvc.types import Leg
from speechsvc.wire import PROTOCOL_VERSION, event_to_dict, event_type

__all__ = ["PROTOCOL_VERSION", "event_to_dict", "event_type"]

CallId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]


class StartMessage(BaseModel):
    """First message of a call."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["start"]
    version: Literal[1] = 1
    call_id: CallId = Field(default_factory=lambda: uuid.uuid4().hex)
    encoding: Encoding = "pcm16"
    sample_rate: int = 16000
    channels: Literal[1, 2] = 1
    # Leg per channel; defaults: mono -> customer, stereo -> customer, agent.
    legs: list[Leg] | None = None
    language: Literal["zh", "en", "auto"] | None = None
    partials: bool = True
    metadata: dict[str, str] = Field(default_factory=dict, max_length=32)

    @field_validator("sample_rate")
    @classmethod
    def _rate(cls, v: int) -> int:
        if v not in SAMPLE_RATES:
            raise ValueError(f"sample_rate {v} is not supported; use one of {SAMPLE_RATES}")
        return v

    def to_config(self, default_language: str) -> CallConfig:
        legs = tuple(self.legs) if self.legs else (("customer",) if self.channels == 1 else ("customer", "agent"))
        if len(legs) != self.channels:
            raise UnsupportedFormat(f"{len(legs)} legs given for {self.channels} channel(s); give one leg per channel")
        if len(set(legs)) != len(legs):
            raise UnsupportedFormat(f"legs must differ per channel, got {list(legs)}")
        fmt = AudioFormat(self.encoding, self.sample_rate, self.channels).validate()
        return CallConfig(
            call_id=self.call_id,
            audio=fmt,
            legs=legs,
            language=self.language or default_language,
            partials=self.partials,
            metadata=dict(self.metadata),
        )


class StopMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["stop"]


class AudioMessage(BaseModel):
    """Audio as base64 inside JSON, for platforms that cannot send binary frames."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["audio"]
    data: str = Field(max_length=4 << 20)


ClientMessage = StartMessage | StopMessage | AudioMessage
_MESSAGES: dict[str, type[BaseModel]] = {"start": StartMessage, "stop": StopMessage, "audio": AudioMessage}


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def parse_client_message(text: str) -> BaseModel:
    """Parse one JSON text frame.

    Raises:
        ProtocolError: not JSON, not an object, an unknown ``type``, or fields that fail validation.
        UnsupportedFormat: a start message asking for an audio format we do not take.
    """
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise ProtocolError(f"message is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ProtocolError("message must be a JSON object with a 'type'")
    kind = data.get("type")
    model = _MESSAGES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ProtocolError(f"unknown message type {kind!r}; expected one of {sorted(_MESSAGES)}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        detail = "; ".join(f"{'.'.join(map(str, err['loc'])) or kind}: {err['msg']}" for err in e.errors())
        error = UnsupportedFormat if any(err["loc"][:1] in (("encoding",), ("sample_rate",), ("channels",))
                                         for err in e.errors()) else ProtocolError
        raise error(f"invalid {kind} message: {detail}") from None


def ready_event(config: CallConfig, seq: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "ready",
        "version": PROTOCOL_VERSION,
        "call_id": config.call_id,
        "seq": seq,
        "legs": list(config.legs),
        "encoding": config.audio.encoding,
        "sample_rate": config.audio.sample_rate,
        "language": config.language,
    }
    if config.metadata:
        out["metadata"] = config.metadata
    return out
