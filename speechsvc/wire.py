"""Pipeline events as JSON-ready dicts: the one serialisation every JSON transport, the event bus and the
gRPC mapping share (no transport or session imports here)."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from speechsvc.types import CallEnded, Emotion, ErrorEvent, Escalation, Intent, PipelineEvent, Sentiment, Transcript

PROTOCOL_VERSION = 1

# JSON event type -> the field of the gRPC ServerMessage `event` oneof that carries it.
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

EVENT_TYPES: dict[type, str] = {
    Intent: "intent",
    Sentiment: "sentiment",
    Emotion: "emotion",
    Escalation: "escalation",
    ErrorEvent: "error",
    CallEnded: "ended",
}


def event_type(event: PipelineEvent) -> str:
    if isinstance(event, Transcript):
        return "transcript.final" if event.is_final else "transcript.partial"
    return EVENT_TYPES[type(event)]


def event_to_dict(
    event: PipelineEvent, call_id: str, seq: int, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    """One event as a JSON-ready dict: ``type``, ``call_id``, ``seq`` first, then the event's fields."""
    body = asdict(event)
    if isinstance(event, Transcript):
        body.pop("is_final")
    for key in ("alternatives", "probabilities"):
        if key in body:  # (label, probability) pairs as objects, the same shape as the protobuf messages
            body[key] = [{"label": label, "probability": p} for label, p in body[key]]
    out: dict[str, Any] = {"type": event_type(event), "version": PROTOCOL_VERSION, "call_id": call_id, "seq": seq}
    out.update(body)
    if metadata:
        out["metadata"] = metadata
    finite: dict[str, Any] = _finite(out)
    return finite


def _finite(value: Any) -> Any:
    """JSON has no NaN; make sure none leaks out of a model."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
