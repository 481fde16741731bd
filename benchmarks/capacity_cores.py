"""Where the cores go per final, from `bench stream` runs: what N live calls ask of a CPU, in core-seconds.

    python benchmarks/capacity_cores.py --runs RUN.json ... --out benchmarks/results/capacity_cores.json

Each RUN.json is one `speechsvc bench stream --partials both` result. Per run and level (calls, partials on/off),
from the server's per-thread CPU over the level's wall time and its worker counters: core-seconds per ASR item
(CTranslate2's ``asr-ct*`` threads), per emotion item (``infer-emotion``), the rest per call (VAD thread, event
loop, other workers), the rate of ASR items per call and second, and from these the cores that N calls need —
the demand, whatever the latency. A level can only hold its latency target with the cores well below full (the
finals' queue grows without bound as the demand reaches the cores), so ``cores_needed`` against 2 is the
question the machine cannot argue with.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def level_cores(level: dict[str, Any], seconds: float) -> dict[str, Any] | None:
    """Core-seconds per item and per call of one level; None without the counters."""
    batches = level.get("server_batches") or {}
    threads = level.get("server_thread_cpu_percent") or {}
    asr_items = batches.get("asr.items")
    if not asr_items or not threads:
        return None
    wall = level["wall_s"]
    n = level["calls"]

    def core_s(prefix: str) -> float:
        return float(sum(v for k, v in threads.items() if k.startswith(prefix))) / 100 * float(wall)

    asr = core_s("asr-ct") + core_s("infer-asr")
    emotion = core_s("infer-emotion")
    rest = sum(threads.values()) / 100 * wall - asr - emotion
    emotion_items = batches.get("emotion.items") or 0
    rate = asr_items / (n * seconds)  # ASR items per call and second of streamed audio
    per_call = rate * (asr / asr_items + (emotion / emotion_items if emotion_items else 0.0)) + rest / (n * seconds)
    return {
        "calls": n, "partials": level["partials"], "final_p95_s": level["final_latency_s"]["p95"],
        "asr_items": asr_items, "asr_core_s_per_item": round(asr / asr_items, 3),
        "asr_model_s_per_item": round(batches.get("asr.model_s", 0.0) / asr_items, 3),
        "emotion_core_s_per_item": round(emotion / emotion_items, 3) if emotion_items else None,
        "rest_core_percent_per_call": round(100 * rest / (n * seconds), 2),
        "asr_items_per_call_s": round(rate, 4),
        "fallbacks_final": batches.get("asr.fallbacks_final"),
        "fallbacks_partial": batches.get("asr.fallbacks_partial"),
        "cores_per_call": round(per_call, 3), "cores_needed": round(n * per_call, 2),
        "server_cpu_percent": level.get("server_cpu_percent"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, nargs="+", required=True)
    p.add_argument("--cores", type=float, default=2.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    rows = []
    runs = {}
    for path in args.runs:
        run = json.loads(path.read_text())
        runs[path.name] = run
        env = run["environment"]
        seconds = float(env["audio"].split("first ")[1].split(" s")[0])
        variant = ",".join(f"{k}={v}" for k, v in sorted(env.get("server_settings", {}).items())) or "default"
        for level in run["levels"]:
            row = level_cores(level, seconds)
            if row is not None:
                rows.append({"run": path.name, "variant": variant, **row})
    summary: dict[str, Any] = {}
    for key in sorted({(r["variant"], r["calls"], r["partials"]) for r in rows}):
        same = [r for r in rows if (r["variant"], r["calls"], r["partials"]) == key]
        med = {k: statistics.median(r[k] for r in same) for k in
               ("final_p95_s", "asr_core_s_per_item", "emotion_core_s_per_item", "cores_per_call", "cores_needed")
               if all(r[k] is not None for r in same)}
        med["calls_at_full_cores"] = round(args.cores / med["cores_per_call"], 1)
        summary[f"{key[0]} | {key[1]} calls | partials {'on' if key[2] else 'off'}"] = {"runs": len(same), **med}
    report = {"what": __doc__.split("\n")[0], "cores": args.cores, "summary": summary, "rows": rows, "runs": runs}
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    for k, v in summary.items():
        print(k, json.dumps(v))


if __name__ == "__main__":
    main()
