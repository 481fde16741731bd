"""Frozen dataclasses that cross module boundaries.

Wire formats (JSON, protobuf) live only in :mod:`speechsvc.protocol` and the transports; everything between a
transport and the models speaks these types. Media times are milliseconds on the call's audio clock (0 = first
sample received for that leg); ``emitted_at`` is the server's wall clock (Unix seconds) when an event was made.

Every event a call produces is an :class:`Event` subclass with its wire ``TYPE``; the session wraps each in a
:class:`CallEvent` (call id, ``seq``, metadata), which is what transports, the event bus and subscribers carry.
An analysis stage defines its own event class next to its code (``speechsvc/analysis/*.py``); the protocol
serialises any event generically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, final

import numpy as np
import numpy.typing as npt

Leg = Literal["customer", "agent", "mixed"]

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

Encoding = Literal["pcm16", "mulaw", "alaw", "f32"]
ENCODINGS: tuple[Encoding, ...] = ("pcm16", "mulaw", "alaw", "f32")
BYTES_PER_SAMPLE: dict[str, int] = {"pcm16": 2, "mulaw": 1, "alaw": 1, "f32": 4}
# Any integer rate in this range is taken (libswresample converts it to the pipeline's 16 kHz): 8000, 11025,
# 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000, 176400, 192000, ...
SAMPLE_RATE_RANGE = (8000, 192000)
# The one rate inside the service: every leg is resampled to it on arrival; the VAD, Whisper, the voice stages and
# recorded-call outputs (redacted audio) work at it.
PIPELINE_RATE = 16000


def fixed_language(language: str) -> str | None:
    """The language a call or job is decoded in, or None for ``auto`` (the model detects it per utterance)."""
    return None if language == "auto" else language


def now() -> float:
    """Wall clock used for ``emitted_at`` on every event."""
    return time.time()


@dataclass(frozen=True)
class AudioFormat:
    """What a client declared for its binary frames."""

    encoding: Encoding = "pcm16"
    sample_rate: int = PIPELINE_RATE
    channels: int = 1

    @property
    def frame_bytes(self) -> int:
        """Bytes per sample frame (all channels)."""
        return BYTES_PER_SAMPLE[self.encoding] * self.channels

    def bytes_for_ms(self, ms: float) -> int:
        return math.ceil(self.sample_rate * ms / 1000) * self.frame_bytes


@dataclass(frozen=True)
class RedactionRequest:
    """A call's own PII-redaction wishes on top of the deployment's policy; None = the deployment's choice."""

    # False asks for no redaction (only where the deployment allows calls to opt out).
    enabled: bool | None = None
    # PII types to redact (e.g. PHONE, ID_CARD); None = the deployment's.
    types: tuple[str, ...] | None = None
    # "tag" ([PHONE]) or "mask" (138****5678).
    style: str | None = None


@dataclass(frozen=True)
class CallConfig:
    """What a call declared when it started; checked once, by ``Engine.admit``, whichever transport built it."""

    call_id: str
    audio: AudioFormat = field(default_factory=AudioFormat)
    # Leg carried by each channel, in channel order.
    legs: tuple[Leg, ...] = ("customer",)
    # A configured language ("zh", "en") or "auto" (detect per utterance among the configured languages).
    language: str = "zh"
    partials: bool = True
    # The platform's own ids (callSid, UUID, ...), echoed on every event.
    metadata: Mapping[str, str] = field(default_factory=dict)
    # False: the legs are the channels of each wire frame (``CallSession.feed_bytes``). True: each leg's audio
    # arrives on its own, mono in ``audio``'s format (``CallSession.feed``), as Twilio's tracks do.
    per_leg_audio: bool = False
    redaction: RedactionRequest = field(default_factory=RedactionRequest)
    # Word (Chinese: character) timings on each final: one more decoder pass per utterance.
    words: bool = False
    # Names and words this call may contain (a customer's plan, a branch), on top of the deployment's hotwords.
    hotwords: tuple[str, ...] = ()
    # The tenant of the credentials that started the call (set at admission); call ids are unique per tenant.
    tenant: str = "default"


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


# ---- events ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Base of everything a call emits. ``TYPE`` is the wire name; subclasses add their fields."""

    TYPE: ClassVar[str] = "event"
    emitted_at: float = field(default_factory=now, kw_only=True)

    @property
    def type(self) -> str:
        return self.TYPE


@dataclass(frozen=True)
class Ready(Event):
    """First event of every call (seq 0): what the server understood of the call's start."""

    TYPE: ClassVar[str] = "ready"
    legs: tuple[Leg, ...]
    encoding: str
    sample_rate: int
    language: str
    transport: str


@dataclass(frozen=True)
class Word:
    """A word (a character or token for Chinese) of a transcript and where it was said. The texts of a
    transcript's words, joined, spell its text exactly."""

    text: str
    start_ms: int
    end_ms: int
    probability: float


@dataclass(frozen=True)
class Redacted:
    """One span of a transcript replaced to protect personal information: its type and offsets in the
    redacted text (never the clear value), and where it lies in the audio when word timings are known."""

    type: str
    start: int
    end: int
    start_ms: int | None = None
    end_ms: int | None = None


@final
@dataclass(frozen=True)
class Transcript(Event):
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
    # Spans of ``text`` replaced by the PII redaction stage.
    redactions: tuple[Redacted, ...] = ()
    # Word timings, when the call or job asked for them (finals only).
    words: tuple[Word, ...] = ()

    @property
    def type(self) -> str:
        return "transcript.final" if self.is_final else "transcript.partial"


@dataclass(frozen=True)
class ErrorEvent(Event):
    """A problem reported to the client. ``fatal`` errors end the call."""

    TYPE: ClassVar[str] = "error"
    code: str
    message: str
    fatal: bool


@final
@dataclass(frozen=True)
class Dtmf(Event):
    """A key pressed on a phone's keypad, as the platform reported it. ``digit`` is ``*`` masked when PII
    redaction masks keypad input (card numbers and PINs are typed as often as they are spoken)."""

    TYPE: ClassVar[str] = "dtmf"
    leg: Leg
    digit: str
    # Media time on the leg's clock when the key was reported.
    at_ms: int
    masked: bool = False


@dataclass(frozen=True)
class LegSummary:
    leg: Leg
    audio_ms: int
    speech_ms: int
    utterances: int


@dataclass(frozen=True)
class CallEnded(Event):
    """Last event of every call."""

    TYPE: ClassVar[str] = "ended"
    reason: str
    legs: tuple[LegSummary, ...]


@dataclass(frozen=True)
class CallEvent:
    """One event of one call as transports, the event bus and subscribers carry it."""

    call_id: str
    # 0 for ``ready``, then 1, 2, ... in the order the session produced the events.
    seq: int
    event: Event
    # The platform's own ids, echoed on every event.
    metadata: Mapping[str, str] = field(default_factory=dict)
    # The call's tenant: subscriptions and webhooks deliver an event only to its own tenant (and admins).
    tenant: str = "default"

    @property
    def type(self) -> str:
        """The event's wire type (``transcript.final``, ``ended``, ...)."""
        return self.event.type


@dataclass(frozen=True)
class RemoteEvent:
    """An event of a call that another replica serves, as the event broker carries it: already serialised
    (``json`` is exactly what that call's own client received), with what subscriptions filter on."""

    call_id: str
    seq: int
    tenant: str
    type: str
    json: str


# What the event bus carries: a call of this replica (typed) or of another one (serialised).
BusEvent = CallEvent | RemoteEvent


@dataclass(frozen=True)
class ModelInfo:
    """A loaded model, as /readyz lists it."""

    name: str
    path: str
    device: str
    compute_type: str
