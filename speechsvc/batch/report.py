"""The report of one recorded call: its analysed segments (the analysis record of each utterance), the call's
summary (talk time and speaking rate per leg, silence, overtalk) with its maths, and each analysis stage's
section under the stage's name (what it found beyond the segments: QA outcomes, escalations, ...)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from speechsvc.analysis.record import Utterance
from speechsvc.batch.transcribe import FileSegment, FileTranscript
from speechsvc.types import Leg, SpeechSegment


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


@dataclass(frozen=True)
class CallReport:
    path: str
    duration_s: float
    legs: tuple[Leg, ...]
    segments: tuple[Utterance, ...]
    summary: CallSummary
    # Each analysis stage's section, by stage name (``Stage.report``: ``qa``, ``escalation``, ...); saved as
    # top-level keys of the report.
    sections: Mapping[str, Any] = field(default_factory=dict)
    # The agent who took the call, when the job's manifest says (per-agent QA aggregates).
    agent_id: str | None = None
    # A diarized mono recording: speakers found, each one's role (or speaker_N when unsure), role confidence.
    speakers: dict[str, Any] | None = None

    def transcript(self) -> FileTranscript:
        return FileTranscript(self.path, self.duration_s, self.legs, tuple(
            FileSegment(s.leg, s.index, s.start_ms, s.end_ms, s.text, s.language, s.confidence, s.redactions, s.words,
                        speaker=s.speaker)
            for s in self.segments
        ))

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "duration_s": self.duration_s, "legs": list(self.legs),
                "segments": [s.to_dict() for s in self.segments], "summary": asdict(self.summary),
                **self.sections, "agent_id": self.agent_id,
                **({"speakers": self.speakers} if self.speakers is not None else {})}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


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
              utterances: Iterable[Utterance]) -> CallSummary:
    """The figures of one call from its speech segments (VAD) and transcribed utterances."""
    per_leg = {leg: _union(_intervals(segments, leg)) for leg in legs}
    said = list(utterances)
    leg_stats = []
    for leg in legs:
        talk_s = sum(e - s for s, e in per_leg[leg]) / 1000
        mine = [u for u in said if u.leg == leg]
        rate, unit = _rate([u.text for u in mine], [u.language for u in mine], talk_s)
        leg_stats.append(LegStats(leg, round(talk_s, 2), len(mine), rate, unit))
    speech = _union([i for ivs in per_leg.values() for i in ivs])
    gaps = [b[0] - a[1] for a, b in zip([(0, 0), *speech], [*speech, (int(duration_s * 1000),) * 2], strict=True)]
    overtalk = _overlap(per_leg["customer"], per_leg["agent"]) if {"customer", "agent"} <= set(legs) else 0
    return CallSummary(
        duration_s=round(duration_s, 2),
        legs=tuple(leg_stats),
        silence_s=round(max(0, sum(gaps)) / 1000, 2),
        overtalk_s=round(overtalk / 1000, 2),
        longest_silence_s=round(max(gaps, default=0) / 1000, 2),
    )
