"""The default QA rule pack and agent assist on the labelled calls of data/qa_calls.jsonl: precision and recall
per rule, live-versus-after-the-call agreement, and the per-utterance cost of rules and of assist.

    python benchmarks/qa_rules.py [--calls data/qa_calls.jsonl] [--rules FILE.toml] [--out FILE.json]

How it is taken:
- Each call's utterances get intent, intent probability and negativity from the committed text model
  (``models/text``, the same one the service runs), so the complaint matchers see real model output; voice
  P(angry) is the author's annotation in the data (there is no audio). Text is as written (ASR-like errors
  and missing punctuation included), not re-transcribed.
- Precision / recall per rule treat "fail" as the positive class: precision = flagged calls that really
  fail / flagged calls; recall = failing calls flagged / failing calls. ``agreement`` is the share of calls
  whose status (pass / fail / not_applicable) matches the label; every disagreement is listed.
- Live: each leg's finals are delivered in that leg's order at end_ms + a per-leg latency (0.3–1.5 s,
  deterministic), so legs arrive out of global order as on a live call; outcomes must equal score_call's.
- Cost: wall time of QaCall.update per utterance with the embedding passed in (rules only), the sentence
  embedding of one utterance separately, and AssistCall.update per customer final including its embedding;
  repeated ``--repeat`` times over all calls, on this machine with one thread.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from speechsvc.analysis.assist import AssistEngine, AssistOptions
from speechsvc.analysis.embedding import encode
from speechsvc.analysis.intent import TextModel, embedder
from speechsvc.analysis.qa import QaEngine, QaReport
from speechsvc.analysis.qa.rules import QaRules
from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.config import Settings
from speechsvc.evaluation.machine import describe

ROOT = Path(__file__).resolve().parent.parent


def load_calls(path: Path, model: TextModel) -> list[dict[str, Any]]:
    calls = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [u["text"] for c in calls for u in c["utterances"]]
    analyses = iter(model.predict(texts))
    for call in calls:
        utterances = []
        for u in call["utterances"]:
            a = next(analyses)
            utterances.append(Utterance(
                leg=u["leg"], index=u["index"], start_ms=u["start_ms"], end_ms=u["end_ms"], text=u["text"],
                intent=a.intent, intent_probability=a.probability, negativity=a.negativity,
                # The calls give one P(angry) per utterance (no audio to smooth over): rules read it as the
                # leg's smoothed value, as they do live.
                emotion=u.get("emotion"), p_angry=u.get("p_angry"), p_angry_smoothed=u.get("p_angry"),
            ))
        call["parsed"] = utterances
        end = call["end"]
        legs = sorted({u.leg for u in utterances}) or ["mixed"]
        cut = (end.get("mid_utterance_leg") or legs[-1],) if end.get("mid_utterance") else ()
        call["call_end"] = CallEnd("recording", dict.fromkeys(legs, end["duration_ms"]), cut, end.get("ended_by"))
    return calls


def live_order(call: dict[str, Any]) -> list[Utterance]:
    """Finals as a live call delivers them: per leg in order, at end + that leg's ASR latency."""
    def latency(u: Utterance) -> int:
        digest = hashlib.sha256(f"{call['id']}|{u.leg}|{u.index}".encode()).digest()
        return 300 + int.from_bytes(digest[:2], "big") % 1200

    arrivals = []
    last: dict[str, int] = {}
    for u in sorted(call["parsed"], key=lambda u: (u.leg, u.index)):
        at = max(u.end_ms + latency(u), last.get(u.leg, 0) + 1)
        last[u.leg] = at
        arrivals.append((at, u))
    return [u for _, u in sorted(arrivals, key=lambda a: a[0])]


def rule_figures(rules: QaRules, calls: list[dict[str, Any]], reports: dict[str, QaReport]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for rule in rules.rules:
        counts: Counter[str] = Counter()
        disagreements = []
        for call in calls:
            expected = call["labels"].get(rule.id)
            if expected is None:
                continue
            outcome = reports[call["id"]].outcome(rule.id)
            got = {"pass": "pass", "fail": "fail", "not_applicable": "na"}[outcome.status]
            counts["agree" if got == expected else "disagree"] += 1
            if expected == "fail" and got == "fail":
                counts["tp"] += 1
            elif got == "fail":
                counts["fp"] += 1
            elif expected == "fail":
                counts["fn"] += 1
            if got != expected:
                disagreements.append({"call": call["id"], "expected": expected, "got": got, "note": outcome.note,
                                      "evidence": [e.cue for e in outcome.evidence][:3]})
        tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
        n = counts["agree"] + counts["disagree"]
        out[rule.id] = {
            "labelled_fail": tp + fn, "flagged_fail": tp + fp, "tp": tp, "fp": fp, "fn": fn,
            "precision": round(tp / (tp + fp), 3) if tp + fp else None,
            "recall": round(tp / (tp + fn), 3) if tp + fn else None,
            "agreement": round(counts["agree"] / n, 3) if n else None,
            "disagreements": disagreements,
        }
    return out


def live_agreement(engine: QaEngine, calls: list[dict[str, Any]], reports: dict[str, QaReport]) -> dict[str, Any]:
    same = differ = live = end = 0
    details = []
    for call in calls:
        qa = engine.call(("customer", "agent"))
        outcomes = []
        for u in live_order(call):
            outcomes.extend(qa.update(u))
        outcomes.extend(qa.end(call["call_end"]))
        post = reports[call["id"]]
        for o in outcomes:
            p = post.outcome(o.rule)
            if (o.passed, o.score, o.evidence) == (p.passed, p.score, p.evidence):
                same += 1
            else:
                differ += 1
                details.append({"call": call["id"], "rule": o.rule, "live": o.status, "post": p.status})
            if o.decided_at == "live":
                live += 1
            else:
                end += 1
    return {"outcomes": same + differ, "identical_to_post_call": same, "different": differ, "details": details,
            "decided_live": live, "decided_at_end": end}


def percentiles(values_ms: list[float]) -> dict[str, float]:
    values = sorted(values_ms)
    return {"mean": round(statistics.fmean(values), 4), "p50": round(values[len(values) // 2], 4),
            "p95": round(values[int(len(values) * 0.95)], 4), "max": round(values[-1], 4), "n": len(values)}


def cost(engine: QaEngine, assist: AssistEngine, calls: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    rules_ms, embed_ms, assist_ms = [], [], []
    for _ in range(repeat):
        for call in calls:
            qa = engine.call(("customer", "agent"))
            helper = assist.call()
            for u in call["parsed"]:
                t0 = time.perf_counter()
                vector = encode(engine.embed, [u.text])[0] if engine.embed else None
                t1 = time.perf_counter()
                qa.update(u, vector)
                t2 = time.perf_counter()
                embed_ms.append((t1 - t0) * 1000)
                rules_ms.append((t2 - t1) * 1000)
                if u.leg == "customer":
                    t3 = time.perf_counter()
                    helper.update(u)  # computes its own embedding: the full cost of a customer final
                    assist_ms.append((time.perf_counter() - t3) * 1000)
            t4 = time.perf_counter()
            qa.end(call["call_end"])
            rules_ms[-1] += (time.perf_counter() - t4) * 1000  # the end's work, charged to the last utterance
    return {"rules_per_utterance_ms": percentiles(rules_ms), "embedding_per_utterance_ms": percentiles(embed_ms),
            "assist_per_customer_final_ms": percentiles(assist_ms)}


def assist_figures(assist: AssistEngine, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Per call: the entries suggested vs the entries labelled on its customer utterances."""
    tp = fp = fn = 0
    on_time = 0
    small_talk = small_talk_flagged = 0
    wrong: list[dict[str, Any]] = []
    for call in calls:
        expected = {u["assist"] for u in call["utterances"] if u.get("assist")}
        first_label = {}
        for position, u in enumerate(call["utterances"]):
            if u.get("assist") and u["assist"] not in first_label:
                first_label[u["assist"]] = position
        helper = assist.call()
        suggested: dict[str, int] = {}
        for position, (raw, u) in enumerate(zip(call["utterances"], call["parsed"], strict=True)):
            got = helper.update(u)
            for s in got:
                suggested.setdefault(s.entry, position)
            if u.leg == "customer" and "assist" not in raw:
                small_talk += 1
                small_talk_flagged += bool(got) and not any(s.entry in expected for s in got)
        for entry, position in suggested.items():
            if entry in expected:
                tp += 1
                on_time += position <= first_label[entry] + 2
            else:
                fp += 1
                wrong.append({"call": call["id"], "suggested": entry, "expected": sorted(expected)})
        for entry in expected - set(suggested):
            fn += 1
            wrong.append({"call": call["id"], "missed": entry})
    return {
        "labelled": tp + fn, "suggested": tp + fp, "correct": tp,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "within_two_utterances_of_the_question": on_time,
        "unlabelled_customer_utterances": small_talk,
        "unlabelled_with_an_unrelated_suggestion": small_talk_flagged,
        "errors": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=Path, default=ROOT / "data" / "qa_calls.jsonl")
    parser.add_argument("--rules", type=Path, help="rules TOML (default: the packaged pack)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the calls for the cost figures")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "qa_rules.json")
    args = parser.parse_args()

    encoder = embedder()
    rules = QaRules.load(args.rules)
    t0 = time.perf_counter()
    engine = QaEngine(rules, encoder.encode)
    engine_load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    assist = AssistEngine.load(encoder.encode)
    assist_load_s = time.perf_counter() - t0
    calls = load_calls(args.calls, TextModel(Settings().heads_dir / "text"))
    reports = {c["id"]: engine.score_call(c["parsed"], c["call_end"], ("customer", "agent")) for c in calls}

    per_rule = rule_figures(rules, calls, reports)
    totals: Counter[str] = Counter()
    for figures in per_rule.values():
        totals.update({k: figures[k] for k in ("tp", "fp", "fn")})
    sweep = {}
    for threshold in (0.5, 0.55, 0.6, 0.65, 0.7):
        swept = AssistEngine(assist.knowledge, encoder.encode, replace(AssistOptions(), min_score=threshold))
        figures = assist_figures(swept, calls)
        sweep[str(threshold)] = {k: figures[k] for k in ("precision", "recall",
                                                         "unlabelled_with_an_unrelated_suggestion")}
    statuses: dict[str, Counter[str]] = defaultdict(Counter)
    for report in reports.values():
        for o in report.outcomes:
            statuses[o.rule][o.status] += 1
    result: dict[str, Any] = {
        "benchmark": "qa_rules",
        "command": "python benchmarks/qa_rules.py",
        "machine": describe(),
        "rules": rules.identity,
        "calls": len(calls),
        "utterances": sum(len(c["parsed"]) for c in calls),
        "per_rule": per_rule,
        "micro": {"tp": totals["tp"], "fp": totals["fp"], "fn": totals["fn"],
                  "precision": round(totals["tp"] / max(1, totals["tp"] + totals["fp"]), 3),
                  "recall": round(totals["tp"] / max(1, totals["tp"] + totals["fn"]), 3)},
        "statuses": {rule: dict(c) for rule, c in statuses.items()},
        "scores": {"mean": round(statistics.fmean(r.score for r in reports.values()), 2),
                   "min": min(r.score for r in reports.values()), "max": max(r.score for r in reports.values())},
        "live_vs_post_call": live_agreement(engine, calls, reports),
        "assist": {"options": AssistOptions().__dict__, **assist_figures(assist, calls), "min_score_sweep": sweep},
        "cost": cost(engine, assist, calls, args.repeat),
        "load_s": {"qa_engine_with_example_embeddings": round(engine_load_s, 3),
                   "assist_knowledge": round(assist_load_s, 3)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print(f"{result['calls']} calls, {result['utterances']} utterances; {result['rules']}; {result['machine']}")
    print(f"{'rule':28s} {'fail':>4s} {'flag':>4s} {'P':>6s} {'R':>6s} {'agree':>6s}")
    for rule_id, f in per_rule.items():
        print(f"{rule_id:28s} {f['labelled_fail']:4d} {f['flagged_fail']:4d} {f['precision']!s:>6s} "
              f"{f['recall']!s:>6s} {f['agreement']!s:>6s}")
    print("micro", result["micro"])
    print("live vs post-call", {k: v for k, v in result["live_vs_post_call"].items() if k != "details"})
    a = result["assist"]
    print("assist", {k: a[k] for k in ("labelled", "suggested", "correct", "precision", "recall",
                                       "unlabelled_with_an_unrelated_suggestion")})
    print("cost", json.dumps(result["cost"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
