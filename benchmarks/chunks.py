"""Recorded audio decoded per utterance or in merged chunks (speechsvc.batch.chunks): error rate and wall time.

    python benchmarks/chunks.py [--chunks 0 10 20 28] [--out benchmarks/results/chunks.json]

``eval/long`` with a usable reference (the 290 s Mandarin AISHELL concatenation, gold, at 16 kHz and on its
8 kHz telephone copy; the 126 s Gettysburg Address, approximate reference) through the same path as
``speechsvc transcribe``: VAD → chunks of adjacent utterances up to N seconds (0 = each utterance alone, as a
live call's finals) → Whisper → split back into utterances by word timings.
CER for Mandarin, WER for English, as benchmarks/accuracy.py scores them.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import time
from pathlib import Path
from typing import Any

from speechsvc.batch.transcribe import transcribe_file
from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.speech.asr import WhisperRecognizer
from speechsvc.speech.vad import SileroModel

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--chunks", type=float, nargs="+", default=[0, 10, 20, 28])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "chunks.json")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    settings = Settings(cpu_threads=args.threads)
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    vad = SileroModel(silero_vad_path())
    folder = args.eval / "long"
    sets = [("zh", "16k", "manifest.csv", "file"), ("zh", "8k", "manifest_telephone_sim_8k.csv", "file"),
            ("en", "16k", "manifest.csv", "file")]
    results: dict[str, Any] = {}
    for language, rate, manifest, column in sets:
        # Gold and approximate references only, as benchmarks/accuracy.py (no bronze, no rows without one).
        rows = [r for r in csv.DictReader((folder / manifest).open())
                if r.get("language") == language and r.get("reference_text")
                and r.get("transcript_quality") not in ("bronze", "none")]
        for chunk_s in args.chunks:
            edits = total = 0
            audio_s = 0.0
            started = time.perf_counter()
            for row in rows:
                result = transcribe_file(folder / row[column], recognizer.transcribe, vad, settings.vad(), language,
                                         chunk_s=chunk_s)
                hyp = ("" if language == "zh" else " ").join(s.text for s in result.segments)
                e, n = error_counts(row["reference_text"], hyp, language)
                edits, total, audio_s = edits + e, total + n, audio_s + result.duration_s
            wall = time.perf_counter() - started
            key = f"{language}-{rate}/chunk_{chunk_s:g}s"
            metric = "CER" if language == "zh" else "WER"
            results[key] = {"error_rate": round(edits / max(1, total), 4), "metric": metric,
                            "files": len(rows), "audio_s": round(audio_s, 1), "wall_s": round(wall, 1)}
            print(f"{key:24s} {results[key]['metric']} {results[key]['error_rate']:.3f}  files={len(rows)} "
                  f"audio={audio_s:.0f}s wall={wall:.1f}s", flush=True)

    import ctranslate2
    import faster_whisper

    report = {"environment": {"machine": describe(), "python": platform.python_version(),
                              "faster_whisper": faster_whisper.__version__, "ctranslate2": ctranslate2.__version__,
                              "model": str(whisper_dir(settings)), "threads": args.threads},
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
