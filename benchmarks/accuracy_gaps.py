"""Which per-family gaps between speechsvc and plain faster-whisper are real: a paired bootstrap over the items of
each family (speechsvc/evaluation/paired.py) on a results file of benchmarks/accuracy.py. No model is loaded:
the per-item error rates in the file and the references of the shared eval set are enough.

    python benchmarks/accuracy_gaps.py [--results benchmarks/results/accuracy_heldout.json]
        [--eval ../shared/eval] [--out benchmarks/results/accuracy_gaps.json]

Prints, per condition and family: speechsvc minus faster-whisper (pooled CER), its 95 % interval, and the items
each side wins; a gap whose interval holds 0 is marked as not settled by these items.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from speechsvc.evaluation.asr_sets import Item, en_items, zh_items
from speechsvc.evaluation.heldout import pooled_in
from speechsvc.evaluation.paired import PairedGap, paired_gap
from speechsvc.evaluation.scoring import error_counts

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("read", "prompt", "spontaneous", "all", "read_turn", "bronze")


def gaps(results: dict[str, Any], items: dict[str, Item], rounds: int) -> dict[str, dict[str, dict[str, Any]]]:
    """{condition/split: {family: PairedGap as a dict}} for every row with both speechsvc and faster-whisper."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for key, row in results["asr"].items():
        if "ours" not in row or "faster_whisper" not in row:
            continue
        ours, peer = row["ours"]["per_item"], row["faster_whisper"]["per_item"]
        pooled: dict[str, tuple[list[int], list[int], list[int]]] = {}
        for name in sorted(set(ours) & set(peer)):
            item = items[name]
            length = error_counts(item.reference, "", item.language)[1]
            for family in pooled_in(item):
                a, b, n = pooled.setdefault(family, ([], [], []))
                a.append(round(float(ours[name]) * length))
                b.append(round(float(peer[name]) * length))
                n.append(length)
        found: dict[str, PairedGap] = {f: paired_gap(*pooled[f], rounds=rounds) for f in FAMILIES if f in pooled}
        out[key] = {f: asdict(g) | {"settled": g.settled} for f, g in found.items()}
    return out


def markdown(found: dict[str, dict[str, dict[str, Any]]]) -> str:
    lines = ["| condition | " + " | ".join(FAMILIES) + " |", "|---" * (len(FAMILIES) + 1) + "|"]
    for key, row in found.items():
        cells = []
        for family in FAMILIES:
            g = row.get(family)
            if g is None:
                cells.append("–")
                continue
            text = (f"{g['difference']:+.3f} [{g['low']:+.3f}, {g['high']:+.3f}] "
                    f"{g['a_better']}:{g['b_better']}")
            cells.append(f"**{text}**" if g["settled"] else text)
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy_heldout.json")
    parser.add_argument("--eval", type=Path, default=ROOT.parent / "shared" / "eval")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "accuracy_gaps.json")
    parser.add_argument("--rounds", type=int, default=10000)
    args = parser.parse_args()
    items = {i.key: i for i in zh_items(args.eval) + en_items(args.eval)}
    results = json.loads(args.results.read_text())
    found = gaps(results, items, args.rounds)
    report = {
        "command": "python benchmarks/accuracy_gaps.py --results " + str(args.results.relative_to(ROOT)
                                                                          if args.results.is_relative_to(ROOT)
                                                                          else args.results),
        "method": "paired bootstrap over the items of each family (both sides resampled together), "
                  f"{args.rounds} rounds, seed 0; difference = speechsvc minus plain faster-whisper, pooled CER; "
                  "a_better / b_better: items where speechsvc / faster-whisper makes fewer edits",
        "results_environment": results.get("environment"),
        "gaps": found,
    }
    print(markdown(found))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
