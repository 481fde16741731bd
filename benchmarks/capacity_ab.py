"""Before/after summary of alternating `bench stream --partials both` runs (issue 30: partials that never cost a
final): medians over the runs of each side, per number of calls, and a plot of latency against calls.

    python benchmarks/capacity_ab.py --before RUN.json ... --after RUN.json ... --out benchmarks/results/capacity.json

Each RUN.json is one `speechsvc bench stream --partials both` result (one server, partials on then off at each
level); `--server-cwd` ran the "before" server from a checkout of the code before the change.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def side(paths: list[Path]) -> dict[int, dict[str, Any]]:
    """Per number of calls: medians over the runs of final p95 (on, off), their pairwise ratio, partials/s,
    first-partial p95, CER of finals, last-partial CER, missed and refused, server CPU and thread shares."""
    levels = [lv for p in paths for lv in json.loads(p.read_text())["levels"]]
    out: dict[int, dict[str, Any]] = {}
    for n in sorted({lv["calls"] for lv in levels}):
        on = [lv for lv in levels if lv["calls"] == n and lv["partials"]]
        off = [lv for lv in levels if lv["calls"] == n and not lv["partials"]]

        def med(values: list[Any]) -> float | None:
            vals = [v for v in values if v is not None]
            return round(statistics.median(vals), 3) if vals else None

        out[n] = {
            "runs": len(on),
            "final_p95_on_s": med([lv["final_latency_s"]["p95"] for lv in on]),
            "final_p95_off_s": med([lv["final_latency_s"]["p95"] for lv in off]),
            "final_p50_on_s": med([lv["final_latency_s"]["p50"] for lv in on]),
            "on_off_ratio": med([a["final_latency_s"]["p95"] / b["final_latency_s"]["p95"]
                                 for a, b in zip(on, off, strict=False)
                                 if a["final_latency_s"]["p95"] and b["final_latency_s"]["p95"]]),
            "partials_per_speech_s": med([lv["partials_per_speech_s"] for lv in on]),
            "first_partial_p95_s": med([lv["first_partial_s"]["p95"] for lv in on]),
            "cer_on": med([lv["cer"] for lv in on]),
            "cer_off": med([lv["cer"] for lv in off]),
            "last_partial_cer": med([lv.get("last_partial_cer") for lv in on]),
            "stable_text_changed": sum(lv.get("stable_text_changed", 0) for lv in on),
            "missed_utterances": sum(lv["missed_utterances"] for lv in on + off),
            "refused": sum(lv["refused"] for lv in on + off),
            "server_cpu_on_percent": med([lv.get("server_cpu_percent") for lv in on]),
            "client_cpu_on_percent": med([sum(lv.get("client_cpu_percent", {}).values()) for lv in on]),
            "server_threads_on_percent": on[-1].get("server_thread_cpu_percent") if on else None,
            "server_batches_on": on[-1].get("server_batches") if on else None,
            "per_run_final_p95_on_s": [lv["final_latency_s"]["p95"] for lv in on],
            "per_run_final_p95_off_s": [lv["final_latency_s"]["p95"] for lv in off],
            # How much CPU the server got, and what an ASR item cost: the machine was shared, so runs differ.
            "per_run_server_cpu_on_percent": [lv.get("server_cpu_percent") for lv in on],
            "per_run_asr_s_per_item_on": [round(b["asr.model_s"] / b["asr.items"], 3) for b in
                                          (lv.get("server_batches", {}) for lv in on) if b.get("asr.items")],
        }
    return out


def plot(before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for data, label, color in ((before, "before", "tab:red"), (after, "after", "tab:blue")):
        xs = sorted(data)
        ax.plot(xs, [data[n]["final_p95_on_s"] for n in xs], "s-", color=color,
                label=f"{label}: final p95, partials on")
        ax.plot(xs, [data[n]["final_p95_off_s"] for n in xs], "o--", color=color, alpha=0.6,
                label=f"{label}: final p95, partials off")
        ax.plot(xs, [data[n]["first_partial_p95_s"] for n in xs], "x:", color=color, alpha=0.6,
                label=f"{label}: first partial p95")
    ax.axhline(0.8, color="grey", lw=0.8)
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("seconds (medians over alternating runs)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, nargs="+", required=True)
    p.add_argument("--after", type=Path, nargs="+", required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    env = json.loads(args.after[0].read_text())["environment"]
    report = {"environment": env, "before_runs": [str(x) for x in args.before],
              "after_runs": [str(x) for x in args.after],
              "before": side(args.before), "after": side(args.after),
              "runs": {str(x): json.loads(x.read_text()) for x in (*args.before, *args.after)}}
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    plot(report["before"], report["after"], args.out.with_suffix(".png"),
         f"speechsvc, partials on/off, before/after, {env['machine']} (shared; see JSON)")
    for name in ("before", "after"):
        for n, row in report[name].items():
            print(name, n, json.dumps({k: v for k, v in row.items() if k not in ("server_batches_on",)}))


if __name__ == "__main__":
    main()
