"""Live finals' encoder window floor and temperature fallback: CER and cost per final, tune and holdout.

    flock /tmp/heavy.lock python benchmarks/capacity_floor.py --floors 10 7 5 3 [--no-fallback]

Every Mandarin item of the split ASR sets (:mod:`speechsvc.evaluation.asr_sets`: read commands, prompts,
spontaneous turns; not the long/read turns) is decoded the way a live call decodes a final: one
``AsrRequest`` at a time on one CTranslate2 thread (one ASR lane of the default 2 x 1 layout), with the finals'
window floor under test. Conditions: the 16 kHz original and the shared 8 kHz telephone simulation. Reported per
floor, split and condition: CER (edits over reference characters, all families but APART), seconds per final
(model time), and how many finals took the fallback (re-decoding: greedy with more room, or temperature
sampling) — each is another decoder pass. The choice is made on tune; holdout is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.config import Settings
from speechsvc.evaluation.asr_sets import APART, HOLDOUT, TUNE, Item, materialize, with_splits, zh_items
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.scoring import error_counts
from speechsvc.models import whisper_dir
from speechsvc.speech.asr import AsrRequest, WhisperRecognizer, compression_ratio
from speechsvc.speech.audio import decode_file
from speechsvc.types import PIPELINE_RATE, Float32Array

ROOT = Path(__file__).resolve().parents[1]


class CountingRecognizer(WhisperRecognizer):
    """The shipped recognizer, counting the finals that take a fallback (a real decode each, nothing faked)."""

    fallbacks = 0
    sampled = 0  # of which went straight to temperature sampling (a repetitive hypothesis)

    def _fallback(self, mel: Float32Array, prompt: list[int], limit: int, text: str,
                  avg_logprob: float, bound_hit: bool, wide: bool = False) -> tuple[str, float]:
        self.fallbacks += 1
        if not bound_hit or compression_ratio(text) > self.options.compression_ratio_threshold:
            self.sampled += 1
        return super()._fallback(mel, prompt, limit, text, avg_logprob, bound_hit, wide)


def load(path: Path) -> Float32Array:
    audio, rate = decode_file(path)  # always 16 kHz
    assert rate == PIPELINE_RATE
    mono: Float32Array = audio[0].astype(np.float32)
    return mono


def run(recognizer: CountingRecognizer, items: list[tuple[Item, Float32Array]]) -> dict[str, Any]:
    recognizer.fallbacks = recognizer.sampled = 0
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    seconds: list[float] = []
    for item, audio in items:
        started = time.perf_counter()
        text = recognizer.transcribe([AsrRequest(audio[: 30 * PIPELINE_RATE], item.language)])[0].text
        seconds.append(time.perf_counter() - started)
        edits, n = error_counts(item.reference, text, item.language)
        for key in (item.family, "all"):
            per[key][0] += edits
            per[key][1] += n
    return {"items": len(items), "cer": round(per["all"][0] / max(1, per["all"][1]), 4),
            "per_family": {k: round(e / max(1, n), 4) for k, (e, n) in sorted(per.items()) if k != "all"},
            "s_per_final_mean": round(float(np.mean(seconds)), 4),
            "s_per_final_p50": round(float(np.median(seconds)), 4),
            "model_s": round(float(np.sum(seconds)), 2),
            "fallbacks": recognizer.fallbacks, "fallbacks_sampled": recognizer.sampled}


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    p.add_argument("--floors", type=float, nargs="+", default=[10.0, 7.0, 5.0, 3.0])
    p.add_argument("--splits", nargs="+", default=[TUNE, HOLDOUT])
    p.add_argument("--conditions", nargs="+", default=["16k", "sim8k"])
    p.add_argument("--threads", type=int, default=1, help="CTranslate2 threads (one live ASR lane: 1)")
    p.add_argument("--no-fallback", action="store_true", help="also run each floor without temperature sampling")
    p.add_argument("--cache", type=Path, default=ROOT / "var" / "accuracy-cache")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "capacity_floor.json")
    args = p.parse_args(argv)

    splits = with_splits([i for i in zh_items(args.eval) if i.family not in APART])
    data: dict[tuple[str, str], list[tuple[Item, Float32Array]]] = {}
    for split in args.splits:
        for condition in args.conditions:
            paths = [(i, materialize(i, condition, args.cache)) for i in splits[split]]
            data[(split, condition)] = [(i, load(path)) for i, path in paths if path is not None]
    settings = Settings(cpu_threads=args.threads, asr_inter_threads=1)
    rows: list[dict[str, Any]] = []
    variants = [True, False] if args.no_fallback else [True]
    for floor in args.floors:
        for fallback in variants:
            options = replace(settings.asr(), min_window_s=floor)
            if not fallback:
                options = replace(options, fallback_temperatures=())
            recognizer = CountingRecognizer(options, whisper_dir(settings))
            recognizer.warm_up()
            for (split, condition), items in data.items():
                row = {"floor_s": floor, "fallback_temperatures": list(options.fallback_temperatures),
                       "split": split, "condition": condition, **run(recognizer, items)}
                rows.append(row)
                say(json.dumps(row))
    report = {"what": "live finals' encoder window floor and temperature fallback (issue 30)",
              "machine": describe(), "threads": args.threads, "command": " ".join(sys.argv), "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    say(f"wrote {args.out}")


if __name__ == "__main__":
    main()
