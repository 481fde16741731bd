"""Intent accuracy of a text model on the dev set as written and as a recogniser would write it.

    .venv/bin/python training/eval_asr_style.py [--model models/text] [--out FILE.json]

ASR-style text: each dev row through speechsvc.evaluation.text.AsrNoise (homophone substitutions drawn from the
characters of the shipped training rows, dropped characters; seed = row number), the corruption Whisper base
makes on Mandarin telephone speech. Also the model's cost per utterance (one at a time, one thread).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from speechsvc.analysis.intent import TextModel
from speechsvc.evaluation.text import AsrNoise
from speechsvc.training.intent_train import SHIPPED_DATA

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "intent_dev.tsv")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "text")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    dev = list(csv.DictReader(args.dev.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
    model = TextModel(args.model)
    noise = AsrNoise(SHIPPED_DATA.read_text(encoding="utf-8"))
    gold = np.array([r["intent"] for r in dev])
    high = np.array([r["confidence"] == "high" for r in dev])
    report = {}
    for name, texts in (("clean", [r["text"] for r in dev]), ("asr", [noise(r["text"], i) for i, r in enumerate(dev)])):
        model.predict(texts[:2])
        started = time.perf_counter()
        pred = np.array([model.predict([t])[0].intent for t in texts])
        ms = (time.perf_counter() - started) * 1000 / len(texts)
        report[name] = {"accuracy": round(float((pred == gold).mean()), 4),
                        "high": round(float((pred == gold)[high].mean()), 4), "ms_per_utterance": round(ms, 2)}
        print(name, report[name], flush=True)
    if args.out:
        args.out.write_text(json.dumps({"model": str(args.model), "dev": str(args.dev), **report}, indent=1))


if __name__ == "__main__":
    main()
