"""The one record of what the analysis stages found: :class:`Utterance` (one final utterance, filled in by the
stages phase by phase) and :class:`CallEnd` (how the call ended).

The same record is used live (the session's analyzer), for recorded calls (the batch report's ``segments`` are
:meth:`Utterance.to_dict`) and for re-scoring a saved report (:func:`utterances_from_report` reads it back with
:meth:`Utterance.from_dict`), so a rule sees the same values whichever way a call reaches it.

Times are milliseconds on the call's audio clock. ``index`` is the utterance's number within its leg (as the VAD
numbers them); the order across legs is by time, which a live call learns only as each leg's finals arrive, so
consumers must order by ``start_ms`` themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from speechsvc.types import Float32Array, Leg, Redacted, Transcript, Word

# Who a rule or a knowledge entry is about. "any" matches every leg, "mixed" (a mono recording) included.
Role = Literal["agent", "customer", "any"]
EndedBy = Literal["customer", "agent", "platform"]

# What the record carries only while the call is analysed: audio and model inputs, never saved in a report.
_RUNTIME = frozenset({"audio", "encoder_stats", "embedding"})


@dataclass
class Utterance:
    """One final utterance and what the stages found (None where a stage is off or skipped it). Built by
    :class:`~speechsvc.analysis.analyzer.CallAnalyzer` (or read back from a report); each stage's ``apply``
    writes what it found, for the stages of later phases, the report and re-scoring."""

    leg: Leg
    # Number of the utterance within its leg.
    index: int
    start_ms: int
    end_ms: int
    # The transcript as every stage and output sees it (after the stages' rewrite: redacted).
    text: str
    language: str = ""
    confidence: float = 0.0
    # Spans of ``text`` replaced by redaction, and word timings when asked for (they spell ``text``).
    redactions: tuple[Redacted, ...] = ()
    words: tuple[Word, ...] = ()
    # Intent label of the text model and its probability; P(negative / complaint) of the text, 0..1.
    intent: str | None = None
    intent_probability: float | None = None
    negativity: float | None = None
    # Voice emotion label, P(angry) of this utterance, arousal, and P(angry) smoothed over the leg so far (what
    # rules on the voice read: the same live and when a report is re-scored).
    emotion: str | None = None
    p_angry: float | None = None
    arousal: float | None = None
    p_angry_smoothed: float | None = None
    # Escalation cues found in the text: cue name -> the matched words.
    cues: dict[str, str] = field(default_factory=dict)
    # What other stages found, by stage name (JSON-able: it is saved in reports).
    found: dict[str, Any] = field(default_factory=dict)
    # Who said it in a diarized mono recording (speaker_0, speaker_1, ...); None otherwise.
    speaker: str | None = None
    # Runtime only (never saved): 16 kHz audio of the utterance and the Whisper encoder statistics for the voice
    # stages (None in text-only analysis); the L2-normalised sentence embedding of the text (from the text stage),
    # for stages that compare sentences.
    audio: Float32Array | None = field(default=None, repr=False, compare=False)
    encoder_stats: Float32Array | None = field(default=None, repr=False, compare=False)
    embedding: Float32Array | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, final: Transcript, audio: Float32Array | None = None,
           encoder_stats: Float32Array | None = None, speaker: str | None = None) -> Utterance:
        """The record the stages fill in for one final transcript (as the stages' rewrite left it)."""
        return cls(final.leg, final.utterance, final.start_ms, final.end_ms, final.text, final.language,
                   round(final.confidence, 4), final.redactions, final.words, speaker=speaker, audio=audio,
                   encoder_stats=encoder_stats)

    @property
    def where(self) -> tuple[Leg, int, int, int]:
        """(leg, utterance, start_ms, end_ms): the leading fields of every per-utterance event."""
        return self.leg, self.index, self.start_ms, self.end_ms

    def to_dict(self) -> dict[str, Any]:
        """The saved form (a report segment): every field but the runtime ones."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _RUNTIME:
                continue
            value = getattr(self, f.name)
            if f.name in ("redactions", "words"):
                value = [vars(v).copy() for v in value]
            elif isinstance(value, dict):
                value = dict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Utterance:
        """A saved record (a report segment) read back; fields it lacks stay unset (None)."""
        known = {f.name for f in fields(cls)} - _RUNTIME
        values = {k: v for k, v in d.items() if k in known}
        values["index"] = int(d["index"])
        values["start_ms"], values["end_ms"] = int(d["start_ms"]), int(d["end_ms"])
        values["text"] = str(d.get("text") or "")
        values["redactions"] = tuple(Redacted(**r) for r in d.get("redactions") or ())
        values["words"] = tuple(Word(**w) for w in d.get("words") or ())
        values["cues"] = dict(d.get("cues") or {})
        values["found"] = dict(d.get("found") or {})
        return cls(**values)


@dataclass(frozen=True)
class CallEnd:
    """How a call ended, for stages that decide at the end (live, recorded, or re-scored from a report)."""

    # "stop", "error", "shutdown" for live calls; "recording" for the end of a recorded call.
    reason: str
    # Audio received per leg, in ms.
    audio_ms: Mapping[str, int] = field(default_factory=dict)
    # Legs that were still speaking when the call ended (cut off mid-utterance), the last one last.
    cut_off: tuple[Leg, ...] = ()
    # Who hung up, when the platform said.
    ended_by: EndedBy | None = None

    @property
    def duration_ms(self) -> int:
        return max(self.audio_ms.values(), default=0)

    @property
    def mid_utterance(self) -> bool:
        """A leg was still speaking when the call ended."""
        return bool(self.cut_off)

    @property
    def mid_utterance_leg(self) -> Leg | None:
        return self.cut_off[-1] if self.cut_off else None


def utterances_from_report(report: Mapping[str, Any]) -> list[Utterance]:
    """The utterances of a batch report (``CallReport.to_json``): its ``segments``, in time order."""
    out = [Utterance.from_dict(s) for s in report.get("segments", ())]
    return sorted(out, key=lambda u: (u.start_ms, u.end_ms, u.leg, u.index))


# A segment ending this close to the end of the recording was still going when the recording stopped.
CUT_OFF_MS = 300


def cut_off_legs(ends: Iterable[tuple[Leg, int]], duration_ms: int) -> tuple[Leg, ...]:
    """The legs whose speech reaches the last :data:`CUT_OFF_MS` of a recording (cut off when it stopped), the
    one that spoke last last; ``ends``: (leg, end_ms) of each segment."""
    latest: dict[Leg, int] = {}
    for leg, end_ms in ends:
        if end_ms >= duration_ms - CUT_OFF_MS:
            latest[leg] = max(end_ms, latest.get(leg, end_ms))
    return tuple(sorted(latest, key=lambda leg: latest[leg]))


def call_end_from_report(report: Mapping[str, Any]) -> CallEnd:
    """How a recorded call ended, as far as the report tells: its duration; who hung up when the report
    carries ``ended_by`` (recordings alone do not say); which legs were cut off (:func:`cut_off_legs`)."""
    duration_ms = round(float(report.get("duration_s", 0.0)) * 1000)
    legs = report.get("legs") or ["mixed"]
    segments = report.get("segments", ())
    ended_by = report.get("ended_by")
    return CallEnd(
        "recording", dict.fromkeys(legs, duration_ms),
        cut_off_legs(((s["leg"], int(s["end_ms"])) for s in segments), duration_ms),
        ended_by=ended_by if ended_by in ("customer", "agent", "platform") else None,
    )
