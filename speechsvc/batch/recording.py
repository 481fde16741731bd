"""Recorded calls: the same stages as streaming (VAD → ASR → intent/sentiment → emotion → escalation), run
through the engine's inference workers at batch priority, plus a quality-inspection summary per call.

:func:`analyze_recording` is shared by ``speechsvc batch``, the REST job API and the Ray actors. Several
recordings analysed concurrently share the workers, so their segments are batched together (cross-file
batching) while live calls keep priority on the same workers.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechsvc.asr import SAMPLE_RATE, AsrRequest
from speechsvc.audio import decode_file
from speechsvc.emotion import MIN_SAMPLES, EmotionTracker
from speechsvc.engine import Engine
from speechsvc.escalation import EscalationPolicy, UtteranceAnalysis
from speechsvc.scheduler import Priority
from speechsvc.transcribe import FileSegment, FileTranscript, legs_for, segment_audio
from speechsvc.types import Float32Array, Leg, SpeechSegment
from speechsvc.writers import WRITERS

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac", ".wma", ".amr", ".mp4", ".webm", ".gsm"}


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

    def transcript(self) -> FileTranscript:
        return FileTranscript(self.path, self.duration_s, self.legs, tuple(
            FileSegment(s.leg, s.index, s.start_ms, s.end_ms, s.text, s.language, s.confidence) for s in self.segments
        ))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=2)


async def analyze_recording(engine: Engine, audio: Float32Array, path: str, language: str | None) -> CallReport:
    """One recording (16 kHz float32, shape (channels, n)); stereo = customer (left), agent (right)."""
    legs = legs_for(audio.shape[0])
    vad_options = engine.vad_options
    segments: list[SpeechSegment] = []
    for channel, leg in enumerate(legs):
        segments.extend(await asyncio.to_thread(segment_audio, audio[channel], leg, engine.vad_model, vad_options))
    asr = await asyncio.gather(*(engine.asr.submit(AsrRequest(s.audio, language), Priority.BATCH) for s in segments))
    kept = [(s, r) for s, r in zip(segments, asr, strict=True) if r.text]
    kept.sort(key=lambda sr: (sr[0].start_ms, sr[0].leg))
    texts = (await asyncio.gather(*(engine.text.submit(r.text, Priority.BATCH) for _, r in kept))
             if engine.text is not None else [None] * len(kept))
    features = await asyncio.gather(*(_emotion_features(engine, s, r.encoder_stats) for s, r in kept))
    trackers = {leg: EmotionTracker(engine.emotion_head) for leg in legs} if engine.emotion_head else {}
    policy = EscalationPolicy(engine.rules)
    reports: list[SegmentReport] = []
    escalations: list[dict[str, Any]] = []
    for (seg, res), text, feats in zip(kept, texts, features, strict=True):
        emotion = trackers[seg.leg].update(feats) if feats is not None and seg.leg in trackers else None
        reports.append(SegmentReport(
            seg.leg, seg.index, seg.start_ms, seg.end_ms, res.text, res.language, round(res.confidence, 4),
            text.intent if text else None, text.probability if text else None, text.negativity if text else None,
            emotion.label if emotion else None, emotion.p_angry if emotion else None,
            emotion.arousal if emotion else None,
        ))
        analysis = UtteranceAnalysis(
            seg.leg, seg.index, seg.start_ms, seg.end_ms, res.text,
            intent=text.intent if text else "other", intent_probability=text.probability if text else 0.0,
            negativity=text.negativity if text else 0.0, p_angry=emotion.p_angry_smoothed if emotion else None,
            cues=engine.rules.detect(res.text),
        )
        escalations.extend(asdict(e) for e in policy.update(analysis))
    duration = audio.shape[1] / SAMPLE_RATE
    summary = summarize(duration, legs, segments, reports, escalations)
    return CallReport(path, round(duration, 3), legs, tuple(reports), summary)


async def _emotion_features(engine: Engine, seg: SpeechSegment, stats: Float32Array | None) -> Float32Array | None:
    if engine.emotion is None or stats is None or seg.audio.size < MIN_SAMPLES:
        return None
    return await engine.emotion.submit((seg.audio, stats), Priority.BATCH)


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


# ---- inputs, outputs, resumable jobs -----------------------------------------------------------------

def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Files, directories (recursive, audio suffixes) and manifests (.csv with a path/file column, .jsonl with
    a "path" key; relative paths are relative to the manifest), in a stable order without duplicates."""
    out: list[str] = []
    for item in inputs:
        path = Path(item)
        if "://" in item:
            out.append(item)
        elif path.is_dir():
            out.extend(str(p) for p in sorted(path.rglob("*")) if p.suffix.lower() in AUDIO_SUFFIXES)
        elif path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    value = row.get("path") or row.get("file") or row.get("audio")
                    if value:
                        out.append(value if "://" in value else str(path.parent / value))
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    value = json.loads(line).get("path")
                    if value:
                        out.append(value if "://" in value else str(path.parent / value))
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def output_name(item: str) -> str:
    """A file-system-safe, collision-free name for an input's outputs."""
    stem = re.sub(r"[^\w.\-]+", "_", item.split("://")[-1].strip("/"))
    return stem[-150:]


class OutputDir:
    """Where a job's outputs go: a local folder or any fsspec URL (``s3://``, ``gs://``, ``file://``, ...).
    Writes are atomic (temporary name, then move), so a finished file is always complete."""

    def __init__(self, location: str | Path) -> None:
        import fsspec

        self.location = str(location)
        self.fs, self.root = fsspec.core.url_to_fs(self.location)
        self.fs.makedirs(self.root, exist_ok=True)

    def path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def write_text(self, name: str, text: str) -> None:
        target = self.path(name)
        self.fs.pipe_file(target + ".tmp", text.encode("utf-8"))
        self.fs.mv(target + ".tmp", target)

    def read_text(self, name: str) -> str | None:
        try:
            return bytes(self.fs.cat_file(self.path(name))).decode("utf-8")
        except FileNotFoundError:
            return None

    def append_line(self, name: str, line: str) -> None:
        self.write_text(name, (self.read_text(name) or "") + line + "\n")

    def leftovers(self) -> list[str]:
        """Temporary files of interrupted writes."""
        return [p for p in self.fs.ls(self.root, detail=False) if str(p).endswith(".tmp")]


def write_outputs(out: OutputDir, item: str, report: CallReport, formats: Iterable[str]) -> str:
    """Write the report (JSON, always) and the requested transcript formats; JSON last, so a finished JSON
    means a finished call (what resume looks for)."""
    name = output_name(item)
    for fmt in formats:
        if fmt != "json":
            out.write_text(f"{name}.{fmt}", WRITERS[fmt](report.transcript()))
    out.write_text(f"{name}.json", report.to_json())
    return out.path(f"{name}.json")


def read_report(out: OutputDir, item: str) -> dict[str, Any] | None:
    text = out.read_text(f"{output_name(item)}.json")
    if text is None:
        return None
    try:
        report = json.loads(text)
    except json.JSONDecodeError:
        return None
    return report if isinstance(report, dict) and "summary" in report else None


def is_done(out: OutputDir, item: str) -> bool:
    return read_report(out, item) is not None


def write_job_summary(out: OutputDir, items: list[str], errors: dict[str, str]) -> dict[str, int]:
    """summary.jsonl and summary.csv: one row per input (done or failed), from the per-call outputs."""
    rows = []
    for item in items:
        row: dict[str, Any] = {"input": item, "output": f"{output_name(item)}.json"}
        report = None if item in errors else read_report(out, item)
        if item in errors:
            row.update(status="failed", error=errors[item])
        elif report is not None:
            s = report["summary"]
            row.update(
                status="done", duration_s=s["duration_s"], segments=len(report["segments"]),
                silence_s=s["silence_s"], overtalk_s=s["overtalk_s"],
                escalations=";".join(sorted({e["kind"] for e in s["escalations"]})),
                top_intent=next(iter(s["intents"]), ""),
                **{f"talk_s_{leg['leg']}": leg["talk_s"] for leg in s["legs"]},
            )
        else:
            row.update(status="pending")
        rows.append(row)
    out.write_text("summary.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    out.write_text("summary.csv", buffer.getvalue())
    return dict(Counter(r["status"] for r in rows))


def load_audio(item: str) -> tuple[Float32Array, int]:
    """Decode a local path or any fsspec URL."""
    if "://" in item and not item.startswith("file://"):
        import fsspec

        with fsspec.open(item, "rb") as f:
            return decode_file(f)
    return decode_file(item.removeprefix("file://"))



