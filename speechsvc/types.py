"""Frozen dataclasses that cross module boundaries.

Wire formats (JSON, protobuf) live only in the transports; everything between a transport and the
models speaks these types. Media times are milliseconds on the call's audio clock (0 = first sample
received for that leg); ``emitted_at`` is the server's wall clock (Unix seconds) when an event was made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Leg = Literal["customer", "agent", "mixed"]
LEGS: tuple[Leg, ...] = ("customer", "agent", "mixed")

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]


def now() -> float:
    """Wall clock used for ``emitted_at`` on every event."""
    return time.time()


@dataclass(frozen=True)
class AudioChunk:
    """Canonical audio handed from a transport to a session: int16 mono PCM of one leg."""

    call_id: str
    leg: Leg
    seq: int
    pcm: Int16Array
    sample_rate: int


@dataclass(frozen=True)
class SpeechSegment:
    """One utterance cut by the VAD: 16 kHz float32 audio and its media times."""

    leg: Leg
    index: int
    start_ms: int
    end_ms: int
    audio: Float32Array
    # True when the segment was cut at the max-length limit, not by a pause.
    forced: bool = False


@dataclass(frozen=True)
class Transcript:
    """A partial or final hypothesis for one utterance of one leg."""

    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    text: str
    language: str
    is_final: bool
    # Mean token probability of the hypothesis, exp(avg log-prob), in [0, 1].
    confidence: float
    # For partials: the prefix that will not change any more (LocalAgreement); equals text for finals.
    stable_text: str = ""
    emitted_at: float = field(default_factory=now)


@dataclass(frozen=True)
class Intent:
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    label: str
    probability: float
    # The top alternatives as (label, probability), best first.
    alternatives: tuple[tuple[str, float], ...] = ()
    emitted_at: float = field(default_factory=now)


@dataclass(frozen=True)
class Sentiment:
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    # Probability that the utterance is negative / a complaint, in [0, 1].
    negativity: float
    emitted_at: float = field(default_factory=now)


@dataclass(frozen=True)
class Emotion:
    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    label: str
    probabilities: tuple[tuple[str, float], ...]
    p_angry: float
    arousal: float
    # P(angry) smoothed over the call so far for this leg.
    p_angry_smoothed: float
    emitted_at: float = field(default_factory=now)


@dataclass(frozen=True)
class Evidence:
    """Why an escalation fired: one utterance and the cue found in it."""

    utterance: int
    leg: Leg
    start_ms: int
    end_ms: int
    cue: str
    text: str


@dataclass(frozen=True)
class Escalation:
    kind: str
    score: float
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    leg: Leg = "customer"
    emitted_at: float = field(default_factory=now)


@dataclass(frozen=True)
class ErrorEvent:
    """A problem reported to the client. ``fatal`` errors end the call."""

    code: str
    message: str
    fatal: bool
    emitted_at: float = field(default_factory=now)


@dataclass(frozen=True)
class LegSummary:
    leg: Leg
    audio_ms: int
    speech_ms: int
    utterances: int


@dataclass(frozen=True)
class CallEnded:
    reason: str
    legs: tuple[LegSummary, ...]
    emitted_at: float = field(default_factory=now)


PipelineEvent = Transcript | Intent | Sentiment | Emotion | Escalation | ErrorEvent | CallEnded
