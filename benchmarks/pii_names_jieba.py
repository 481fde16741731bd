"""NAME with jieba's part-of-speech tags (``nr``, dictionary in the wheel) beside the rules and LAC, tune and
holdout: measured to decide whether a second Chinese tagger from PyPI earns its place (issue 27).

jieba is not a dependency of speechsvc; install it aside to measure:

    pip install --target /tmp/jieba_pkg jieba==0.42.1
    PYTHONPATH=.:/tmp/jieba_pkg python benchmarks/pii_names_jieba.py [--dev ../shared/eval/pii/dev.tsv]

Prints, per part, jieba alone (every ``nr`` word a name) and the shipped detector's names with its tokens from
LAC, from jieba, and from both; writes benchmarks/results/pii_names_jieba.json.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import speechsvc.analysis.pii.detector as detector
from speechsvc.analysis.pii import PiiPolicy
from speechsvc.analysis.pii.model import Tagger, Token
from speechsvc.analysis.pii.model import tokens as lac_tokens
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.pii_eval import Row, evaluate_pii, read_rows

ROOT = Path(__file__).resolve().parent.parent


def jieba_tokens(t: str) -> list[Token]:
    import jieba.posseg as pseg

    out, pos = [], 0
    for w in pseg.cut(t):
        s = t.index(w.word, pos)
        pos = s + len(w.word)
        out.append(Token(w.word, "PER" if w.flag == "nr" else w.flag, s, pos))
    return out


def jieba_alone(rows: list[Row]) -> dict[str, float]:
    tp = fp = fn = 0
    for r in rows:
        gold = [(s, e) for t, s, e in r.gold if t == "NAME"]
        unmatched = [(k.start, k.end) for k in jieba_tokens(r.text) if k.tag == "PER"]
        hit = 0
        for gs, ge in gold:
            k = next((k for k, (ps, pe) in enumerate(unmatched) if ps < ge and gs < pe), None)
            if k is not None:
                hit += 1
                del unmatched[k]
        tp, fp, fn = tp + hit, fp + len(unmatched), fn + len(gold) - hit
    return {"recall": round(tp / max(1, tp + fn), 4), "precision": round(tp / max(1, tp + fp), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "pii" / "dev.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pii_names_jieba.json")
    args = parser.parse_args()
    import jieba

    jieba.setLogLevel(logging.WARNING)
    candidates = (args.dev, *(ROOT / "data" / f for f in ("pii_examples.tsv", "pii_dev_own.tsv", "pii_dev_asr.tsv")))
    files = [p for p in candidates if p.is_file()]
    modes: dict[str, Callable[[Tagger, str], list[Token]]] = {
        "rules+LAC (shipped)": lac_tokens,
        "rules+jieba nr": lambda _tagger, t: [k for k in jieba_tokens(t) if k.tag == "PER"],
        "rules+LAC+jieba nr": lambda tagger, t: lac_tokens(tagger, t) + [k for k in jieba_tokens(t) if k.tag == "PER"],
    }
    report: dict[str, Any] = {"machine": describe(), "jieba": jieba.__version__, "files": [p.name for p in files]}
    for part in ("tune", "holdout"):
        rows = [r for p in files for r in read_rows(p, part)]
        report[part] = {"jieba alone (every nr word)": jieba_alone(rows)}
        for name, tokens in modes.items():
            detector.tokens = tokens  # type: ignore[attr-defined,assignment]  # the detector's module global, swapped
            v = evaluate_pii(files, PiiPolicy(), part=part)["span_relaxed"]["NAME"]
            report[part][name] = {"recall": v["recall"], "precision": v["precision"]}
        print(part, json.dumps(report[part], ensure_ascii=False))
    detector.tokens = lac_tokens  # type: ignore[attr-defined]
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
