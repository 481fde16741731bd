"""ASR evaluation over an eval folder's manifest, shared by the test suite and benchmarks/accuracy.py."""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from speechsvc.batch.transcribe import transcribe_file
from speechsvc.config import VadOptions
from speechsvc.evaluation.scoring import error_counts
from speechsvc.speech.asr import AsrRequest, AsrResult
from speechsvc.speech.text import word_separator
from speechsvc.speech.vad import SileroModel


@dataclass
class AsrScore:
    folder: str
    audio: str
    metric: str
    error_rate: float
    files: int
    audio_s: float
    wall_s: float
    rtf: float
    per_source: dict[str, dict[str, float]] = field(default_factory=dict)


def source_of(row: dict[str, str]) -> str:
    return row["id"].split("_")[0]


def evaluate_asr(
    folder: Path,
    column: str,
    language: str,
    recognize: Callable[[list[AsrRequest]], Sequence[AsrResult]],
    vad: SileroModel,
    vad_options: VadOptions,
    manifest: str = "manifest.csv",
    transcribe: Callable[[Path, str], str] | None = None,
) -> AsrScore:
    """CER (zh) or WER (en) over the gold, silver and approximate rows of ``folder/manifest`` in ``language``,
    audio from ``column``. ``transcribe`` (path, language → text) replaces speechsvc's own file path, to score
    a peer on the same rows."""
    rows = [r for r in csv.DictReader((folder / manifest).open()) if r.get(column) and r.get("reference_text")]
    rows = [r for r in rows if r.get("transcript_quality", "gold") not in ("bronze", "none")
            and r.get("language", language) == language]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    audio_s = 0.0
    started = time.perf_counter()
    for row in rows:
        if transcribe is None:
            result = transcribe_file(folder / row[column], recognize, vad, vad_options, language)
            audio_s += result.duration_s
            hyp = word_separator(language).join(s.text for s in result.segments)
        else:
            audio_s += float(row.get("duration_s") or 0)
            hyp = transcribe(folder / row[column], language)
        edits, n = error_counts(row["reference_text"], hyp, language)
        counts = per[f"{source_of(row)}/{row.get('transcript_quality', 'gold')}"]
        counts[0] += edits
        counts[1] += n
        counts[2] += 1
    wall = time.perf_counter() - started
    edits = sum(c[0] for c in per.values())
    total = sum(c[1] for c in per.values())
    return AsrScore(
        folder=folder.name,
        audio=column,
        metric="CER" if language == "zh" else "WER",
        error_rate=round(edits / max(1, total), 4),
        files=len(rows),
        audio_s=round(audio_s, 1),
        wall_s=round(wall, 1),
        rtf=round(wall / max(audio_s, 1e-9), 3),
        per_source={k: {"error_rate": round(e / max(1, n), 4), "files": f} for k, (e, n, f) in sorted(per.items())},
    )
