"""The report of one recorded call: its analysed segments and the quality-inspection summary (talk time and
speaking rate per leg, silence, overtalk, intents, escalations, dominant emotion), with the summary maths."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from speechsvc.batch.transcribe import FileSegment, FileTranscript
from speechsvc.types import Leg, SpeechSegment


@dataclass(frozen=True)
class SegmentReport(FileSegment):
    """A transcribed segment and its analysis (None where that model is off)."""

    intent: str | None = None
    intent_probability: float | None = None
    negativity: float | None = None
    emotion: str | None = None
    p_angry: float | None = None
    arousal: float | None = None


@dataclass(frozen=True)
class LegStats:
    leg: Leg
    talk_s: float
    utterances: int
    # Characters (Chinese) or words (other languages) per minute of this leg's talk time.
    speaking_rate: float
    rate_unit: str


@dataclass(frozen=True)
class CallSummary:
    duration_s: float
    legs: tuple[LegStats, ...]
    # Time in which no leg speaks (hold, silence), and in which two legs speak at once.
    silence_s: float
    overtalk_s: float
    longest_silence_s: float
    intents: dict[str, int]
    escalations: tuple[dict[str, Any], ...]
    dominant_emotion: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallReport:
    path: str
    duration_s: float
    legs: tuple[Leg, ...]
    segments: tuple[SegmentReport, ...]
    summary: CallSummary
    # Quality inspection: score and every rule's outcome with evidence (None when QA is off).
    qa: dict[str, Any] | None = None
    # The agent who took the call, when the job's manifest says (per-agent QA aggregates).
    agent_id: str | None = None
    # A diarized mono recording: speakers found, each one's role (or speaker_N when unsure), role confidence.
    speakers: dict[str, Any] | None = None

    def transcript(self) -> FileTranscript:
        return FileTranscript(self.path, self.duration_s, self.legs, tuple(
            FileSegment(s.leg, s.index, s.start_ms, s.end_ms, s.text, s.language, s.confidence, s.redactions, s.words,
                        s.speaker)
            for s in self.segments
        ))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


def _intervals(segments: Iterable[SpeechSegment], leg: Leg) -> list[tuple[int, int]]:
    return sorted((s.start_ms, s.end_ms) for s in segments if s.leg == leg)


def _union(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    total = 0
    for s1, e1 in a:
        for s2, e2 in b:
            total += max(0, min(e1, e2) - max(s1, s2))
    return total


def _rate(texts: list[str], languages: list[str], talk_s: float) -> tuple[float, str]:
    if not texts or talk_s <= 0:
        return 0.0, "chars/min"
    if Counter(languages).most_common(1)[0][0] == "zh":
        chars = sum(len(re.sub(r"[\W_]", "", t)) for t in texts)
        return round(chars / talk_s * 60, 1), "chars/min"
    words = sum(len(t.split()) for t in texts)
    return round(words / talk_s * 60, 1), "words/min"


def summarize(duration_s: float, legs: tuple[Leg, ...], segments: list[SpeechSegment],
              reports: list[SegmentReport], escalations: list[dict[str, Any]]) -> CallSummary:
    """Quality-inspection figures of one call from its speech segments (VAD) and analysed utterances."""
    per_leg = {leg: _union(_intervals(segments, leg)) for leg in legs}
    leg_stats = []
    for leg in legs:
        talk_s = sum(e - s for s, e in per_leg[leg]) / 1000
        mine = [r for r in reports if r.leg == leg]
        rate, unit = _rate([r.text for r in mine], [r.language for r in mine], talk_s)
        leg_stats.append(LegStats(leg, round(talk_s, 2), len(mine), rate, unit))
    speech = _union([i for ivs in per_leg.values() for i in ivs])
    gaps = [b[0] - a[1] for a, b in zip([(0, 0), *speech], [*speech, (int(duration_s * 1000),) * 2], strict=True)]
    overtalk = _overlap(per_leg["customer"], per_leg["agent"]) if {"customer", "agent"} <= set(legs) else 0
    watched = [r for r in reports if r.leg in ("customer", "mixed") and r.intent]
    emotions: dict[str, str] = {
        leg: Counter(r.emotion for r in reports if r.leg == leg and r.emotion).most_common(1)[0][0]
        for leg in legs if any(r.leg == leg and r.emotion for r in reports)
    }
    return CallSummary(
        duration_s=round(duration_s, 2),
        legs=tuple(leg_stats),
        silence_s=round(max(0, sum(gaps)) / 1000, 2),
        overtalk_s=round(overtalk / 1000, 2),
        longest_silence_s=round(max(gaps, default=0) / 1000, 2),
        intents=dict(Counter(r.intent for r in watched if r.intent).most_common()),
        escalations=tuple(escalations),
        dominant_emotion=emotions,
    )
