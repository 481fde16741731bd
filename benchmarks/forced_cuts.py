"""Where a long utterance is cut: exactly at the length limit, or at the least speech-like window of its
last seconds (``VadOptions.cut_search_ms``). Error rate of the whole file either way.

    python benchmarks/forced_cuts.py [--max-segment-s 6 15] [--search-ms 0 3000] [--out FILE.json]

A caller who talks without a 500 ms pause is simulated by ending utterances only on pauses of 2 s, so every
utterance longer than each ``--max-segment-s`` is cut by force. Files: eval/long's gold Mandarin recording (read
speech) and its English oration (approximate reference), mono 16 kHz.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
from dataclasses import replace
from pathlib import Path

from speechsvc.batch.transcribe import transcribe_file
from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.speech.asr import WhisperRecognizer
from speechsvc.speech.vad import SileroModel

ROOT = Path(__file__).resolve().parent.parent
FILES = ("aishellsample", "ibm_05")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--max-segment-s", type=float, nargs="+", default=[6.0, 15.0])
    parser.add_argument("--search-ms", type=int, nargs="+", default=[0, 3000])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "forced_cuts.json")
    args = parser.parse_args()

    settings = Settings()
    recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
    vad = SileroModel(silero_vad_path())
    long_dir = args.eval_dir / "long"
    rows = [r for r in csv.DictReader((long_dir / "manifest.csv").open()) if r["id"].startswith(FILES)]
    results = []
    for max_segment_s, search_ms in ((m, s) for m in args.max_segment_s for s in args.search_ms):
        options = replace(settings.vad(), min_silence_ms=2000, max_segment_s=max_segment_s,
                          cut_search_ms=search_ms)
        for row in rows:
            language = row["language"]
            # Each utterance on its own, as a live call decodes it (chunk_s=0): the cuts are what is measured.
            result = transcribe_file(long_dir / row["file"], recognizer.transcribe, vad, options, language,
                                     chunk_s=0)
            hyp = ("" if language == "zh" else " ").join(s.text for s in result.segments)
            edits, n = error_counts(row["reference_text"], hyp, language)
            results.append({
                "file": row["id"], "language": language, "quality": row["transcript_quality"],
                "max_segment_s": max_segment_s, "cut_search_ms": search_ms, "segments": len(result.segments),
                "metric": "CER" if language == "zh" else "WER", "error_rate": round(edits / max(1, n), 4),
            })
            print(json.dumps(results[-1]))
    report = {
        "machine": describe(), "python": platform.python_version(), "model": str(recognizer.model_dir),
        "min_silence_ms": 2000, "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
