"""The input model of the per-call analysis (quality inspection, agent assist): a call's final utterances
and how it ended, independent of where they came from (a live session or a batch report).

Times are milliseconds on the call's audio clock. ``index`` is the utterance's number within its leg (as the
VAD numbers them); the order across legs is by time, which a live call learns only as each leg's finals
arrive, so consumers must order by ``start_ms`` themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from speechsvc.types import Leg

# Who a rule or a knowledge entry is about. "any" matches every leg, "mixed" (a mono recording) included.
Role = Literal["agent", "customer", "any"]
EndedBy = Literal["customer", "agent", "platform"]


@dataclass(frozen=True)
class Utterance:
    """One final utterance of one leg, with what the analysis stages found (None where a stage is off)."""

    leg: Leg
    # Number of the utterance within its leg.
    index: int
    start_ms: int
    end_ms: int
    text: str
    # Intent label of the text model and its probability.
    intent: str | None = None
    intent_probability: float | None = None
    # P(negative / complaint) of the text, 0..1.
    negativity: float | None = None
    # Voice emotion label, smoothed P(angry) of this leg so far (0..1), arousal.
    emotion: str | None = None
    p_angry: float | None = None
    arousal: float | None = None


@dataclass(frozen=True)
class CallEnd:
    """How the call ended."""

    duration_ms: int
    # Who hung up; None when the platform did not say.
    ended_by: EndedBy | None = None
    # True when a leg was still speaking when the call ended (cut off), and which one.
    mid_utterance: bool = False
    mid_utterance_leg: Leg | None = None


def utterances_from_report(report: Mapping[str, Any]) -> list[Utterance]:
    """The utterances of a batch report (``CallReport.to_json``): its ``segments``, in time order."""
    out = [
        Utterance(
            leg=s["leg"], index=int(s["index"]), start_ms=int(s["start_ms"]), end_ms=int(s["end_ms"]),
            text=str(s.get("text") or ""), intent=s.get("intent"), intent_probability=s.get("intent_probability"),
            negativity=s.get("negativity"), emotion=s.get("emotion"), p_angry=s.get("p_angry"),
            arousal=s.get("arousal"),
        )
        for s in report.get("segments", ())
    ]
    return sorted(out, key=lambda u: (u.start_ms, u.end_ms, u.leg, u.index))


# A segment ending this close to the end of the recording was still going when the recording stopped.
CUT_OFF_MS = 300


def call_end_from_report(report: Mapping[str, Any]) -> CallEnd:
    """How a recorded call ended, as far as the report tells: its duration; who hung up when the report
    carries ``ended_by`` (recordings alone do not say); cut off when a segment reaches the last 300 ms."""
    duration_ms = round(float(report.get("duration_s", 0.0)) * 1000)
    last = max(report.get("segments", ()), key=lambda s: int(s["end_ms"]), default=None)
    cut = last is not None and int(last["end_ms"]) >= duration_ms - CUT_OFF_MS
    ended_by = report.get("ended_by")
    return CallEnd(
        duration_ms=duration_ms,
        ended_by=ended_by if ended_by in ("customer", "agent", "platform") else None,
        mid_utterance=cut,
        mid_utterance_leg=last["leg"] if cut and last is not None else None,
    )
