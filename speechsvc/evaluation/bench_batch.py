"""ASR throughput against batch size, encoder window floor and CTranslate2 threads, on real utterances.

    speechsvc bench batch [--threads 2] [--batch 1 2 4 8] [--floors 10 5] [--utterances 40]
    python benchmarks/asr_batch_size.py ...    # the same

Utterances: eval/long's read Mandarin recording cut at its reference segments (segments/*.json), decoded the way
a live call decodes them: finals (``partial=False``, the finals' window floor) and partials (the first 1.5 s of
each utterance, ``partial=True``). For each batch size the utterances are decoded in batches of that many, in
order; reported: items per second, seconds per batch (what a final arriving behind one waits) and, for finals, CER
against the references. A larger batch only pays where items per second grow faster than the batch's time: on a
CPU every item is encoded in its window anyway; on a GPU batching fills the device.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts
from speechsvc.models import whisper_dir
from speechsvc.speech.asr import AsrRequest, WhisperRecognizer
from speechsvc.speech.audio import decode_file
from speechsvc.types import PIPELINE_RATE

ROOT = Path(__file__).resolve().parents[2]  # the repository (../shared/eval beside it)
FILE = "aishellsample_S0150_S0252_concat_read"


def utterances(eval_dir: Path, n: int) -> list[tuple[np.ndarray, str]]:
    audio, rate = decode_file(eval_dir / "long" / "audio" / f"{FILE}.wav")
    assert rate == PIPELINE_RATE
    mono = audio[0].astype(np.float32)
    segments = json.loads((eval_dir / "long" / "segments" / f"{FILE}.json").read_text())[:n]
    pad = int(0.2 * PIPELINE_RATE)  # the VAD keeps 200 ms around speech
    return [(mono[max(0, int(s["start"] * PIPELINE_RATE) - pad): int(s["end"] * PIPELINE_RATE) + pad], s["text"])
            for s in segments]


def short_clips(eval_dir: Path, n: int) -> list[tuple[np.ndarray, str]]:
    """eval/asr_zh's gold and silver clips, whole (short commands and spontaneous speech, 16 kHz)."""
    folder = eval_dir / "asr_zh"
    rows = [r for r in csv.DictReader((folder / "manifest.csv").open())
            if r["transcript_quality"] in ("gold", "silver")][:n]
    out = []
    for r in rows:
        audio, rate = decode_file(folder / r["file"])
        assert rate == PIPELINE_RATE
        out.append((audio[0].astype(np.float32)[: 30 * PIPELINE_RATE], r["reference_text"]))
    return out


def run(recognizer: WhisperRecognizer, items: list[tuple[np.ndarray, str]], batch: int, partial: bool,
        language: str = "zh") -> dict[str, Any]:
    cut = int(1.5 * PIPELINE_RATE)  # a partial: the first 1.5 s
    requests = [AsrRequest(a[:cut] if partial else a, language, partial=partial) for a, _ in items]
    texts: list[str] = []
    batch_s: list[float] = []
    t0 = time.perf_counter()
    for i in range(0, len(requests), batch):
        t = time.perf_counter()
        texts += [r.text for r in recognizer.transcribe(requests[i:i + batch])]
        batch_s.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"kind": "partial" if partial else "final", "batch": batch, "items": len(requests),
                           "items_per_s": round(len(requests) / wall, 2),
                           "batch_s_p50": round(float(np.median(batch_s)), 3),
                           "batch_s_max": round(max(batch_s), 3)}
    if not partial:
        edits = sum(error_counts(ref, hyp, language)[0] for (_, ref), hyp in zip(items, texts, strict=True))
        chars = sum(error_counts(ref, hyp, language)[1] for (_, ref), hyp in zip(items, texts, strict=True))
        out["cer"] = round(edits / chars, 4)
    return out


def say(text: str) -> None:
    """The benchmark's report goes to stdout (this is a program, not library code)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--floors", type=float, nargs="+", default=[10.0], help="finals' encoder window floors (s)")
    p.add_argument("--utterances", type=int, default=40)
    p.add_argument("--dataset", choices=["long", "asr_zh"], default="long",
                   help="long: eval/long's recording cut at its reference segments; asr_zh: eval/asr_zh's clips")
    p.add_argument("--finals-only", action="store_true", help="no partial rows (window floor and CER only)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "asr_batch_size.json")
    return p.parse_args(argv)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every (floor, finals/partials, batch size) row; written to ``args.out`` as JSON."""
    fields: dict[str, Any] = {"cpu_threads": args.threads, "device": args.device}
    settings = Settings(**fields)
    items = (short_clips if args.dataset == "asr_zh" else utterances)(args.eval, args.utterances)
    rows: list[dict[str, Any]] = []
    for floor in args.floors:
        options = replace(settings.asr(), min_window_s=floor, partial_min_window_s=floor)
        recognizer = WhisperRecognizer(options, whisper_dir(settings))
        recognizer.warm_up()
        for partial in (False,) if args.finals_only else (False, True):
            for b in args.batch:
                row = {"window_floor_s": floor, **run(recognizer, items, b, partial)}
                rows.append(row)
                say(json.dumps(row))
    report = {"machine": describe(), "threads": args.threads, "device": recognizer.device,
              "compute_type": recognizer.compute_type,
              "audio": (f"eval/asr_zh: {len(items)} gold/silver clips" if args.dataset == "asr_zh"
                        else f"{FILE}: first {len(items)} reference segments (+-200 ms)"), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    say(f"wrote {args.out}")
    return report


def main(argv: list[str] | None = None) -> None:
    measure(parse_args(argv))


if __name__ == "__main__":
    main()
