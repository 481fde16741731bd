"""Evaluation of the text stage on labelled utterances (``../shared/eval/intent_dev.tsv``, evaluation-only):
intent accuracy / macro-F1 / per-intent F1 (overall, ``confidence=high`` rows, per source), escalation cue
precision/recall as the deployed policy fires on each utterance alone, and the analysis cost per utterance."""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechsvc.analysis.analyzer import CallAnalyzer
from speechsvc.analysis.base import CallInfo, Mode, Stage
from speechsvc.analysis.escalation import Escalation
from speechsvc.analysis.intent import Intent, Sentiment
from speechsvc.analysis.record import Utterance
from speechsvc.types import Transcript

# Labelled cue (INTENTS.md) -> the escalation kind that stands for it.
CUE_KINDS = {
    "asks_human": "human_requested",
    "complaint_threat": "complaint",
    "regulator_threat": "regulator_threat",
    "cancellation_risk": "cancellation_risk",
    "anger": "angry_caller",
}


def f1_scores(gold: list[str], pred: list[str]) -> dict[str, float]:
    out = {}
    for label in sorted(set(gold)):
        tp = sum(g == p == label for g, p in zip(gold, pred, strict=True))
        fp = sum(p == label != g for g, p in zip(gold, pred, strict=True))
        fn = sum(g == label != p for g, p in zip(gold, pred, strict=True))
        out[label] = round(2 * tp / (2 * tp + fp + fn), 4) if tp else 0.0
    return out


def auc(scores: list[float], positive: list[bool]) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties count half)."""
    pos = [s for s, p in zip(scores, positive, strict=True) if p]
    neg = [s for s, p in zip(scores, positive, strict=True) if not p]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def summary(gold: list[str], pred: list[str]) -> dict[str, Any]:
    f1 = f1_scores(gold, pred)
    return {
        "n": len(gold),
        "accuracy": round(sum(g == p for g, p in zip(gold, pred, strict=True)) / max(1, len(gold)), 4),
        "macro_f1": round(sum(f1.values()) / max(1, len(f1)), 4),
    }


async def evaluate_text(dev: Path, stages: Sequence[Stage]) -> dict[str, Any]:
    """Score the started ``intent`` and ``escalation`` stages on ``dev``: each row is one customer utterance of
    its own call, analysed as the service analyses a final (so the escalation cues are the deployed policy's)."""
    rows = list(csv.DictReader(dev.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
    intents: list[Intent] = []
    negativity: list[float] = []
    fired: list[set[str]] = []
    started = time.perf_counter()
    for i, row in enumerate(rows):
        analyzer = CallAnalyzer(stages, CallInfo(f"dev-{i}", ("customer",), Mode.BATCH))
        final = Transcript("customer", 0, 0, 0, row["text"], "zh", True, 1.0, row["text"])
        events = await analyzer.analyze([Utterance.of(final)])
        intents.extend(e for e in events if isinstance(e, Intent))
        negativity.extend(e.negativity for e in events if isinstance(e, Sentiment))
        fired.append({e.kind for e in events if isinstance(e, Escalation)})
    per_utterance_ms = (time.perf_counter() - started) * 1000 / max(1, len(rows))
    if len(intents) != len(rows):
        raise ValueError("evaluate_text needs the intent stage (SPEECHSVC_TEXT_ANALYSIS=true)")
    gold = [r["intent"] for r in rows]
    pred = [e.label for e in intents]
    report: dict[str, Any] = {"overall": summary(gold, pred), "per_intent_f1": f1_scores(gold, pred)}
    high = [i for i, r in enumerate(rows) if r["confidence"] == "high"]
    report["confidence_high"] = summary([gold[i] for i in high], [pred[i] for i in high])
    by_source: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_source[r["source"]].append(i)
    report["per_source"] = {
        s: summary([gold[i] for i in ix], [pred[i] for i in ix]) for s, ix in sorted(by_source.items())
    }

    cues = {}
    for cue, kind in CUE_KINDS.items():
        truth = [r[cue] == "1" for r in rows]
        hit = [kind in f for f in fired]
        tp = sum(t and h for t, h in zip(truth, hit, strict=True))
        cues[cue] = {
            "kind": kind,
            "support": sum(truth),
            "fired": sum(hit),
            "precision": round(tp / sum(hit), 3) if sum(hit) else None,
            "recall": round(tp / sum(truth), 3) if sum(truth) else None,
        }
    report["escalation_cues"] = cues
    # Negativity has no label of its own in the dev set; its proxy is "the caller is angry, threatens, or
    # complains" (anger, complaint_threat, regulator_threat or intent complaint).
    negative = [r["anger"] == "1" or r["complaint_threat"] == "1" or r["regulator_threat"] == "1"
                or r["intent"] == "complaint" for r in rows]
    report["negativity_auc"] = round(auc(negativity, negative), 4)
    report["negativity_support"] = sum(negative)
    report["analysis_ms_per_utterance"] = round(per_utterance_ms, 2)
    return report


# ---- ASR-style text --------------------------------------------------------------------------------------
# Whisper base on Mandarin telephone speech mostly errs by writing a homophone (same syllable, often another
# tone: 在/再, 帐/账, 以/已, 截/结) and by dropping short function characters; punctuation and script are
# normalised away before classification anyway. The rates are those of a poor call, not a clean read:
# about one character in ten substituted and one in twenty-five dropped (CER ≈ 14%).
ASR_SUBSTITUTE = 0.10
ASR_DROP = 0.04


class AsrNoise:
    """Deterministic ASR-style corruption of Chinese text: homophone substitution (the same toneless pinyin,
    drawn from a pool of common characters) and dropped characters. Non-Han characters are left alone.

    ``pool``: the characters a substitute may be drawn from (e.g. those of the project's training text), so the
    output uses everyday characters as a recogniser would, not rare homophones."""

    def __init__(self, pool: str, substitute: float = ASR_SUBSTITUTE, drop: float = ASR_DROP) -> None:
        from pypinyin import Style, lazy_pinyin  # evaluation / training extra

        def pinyin(char: str) -> str:
            return str(lazy_pinyin(char, style=Style.NORMAL)[0])

        self._pinyin = pinyin
        groups: dict[str, list[str]] = defaultdict(list)
        for char in sorted(set(pool)):
            if _is_han(char):
                groups[self._pinyin(char)].append(char)
        self.groups = {k: v for k, v in groups.items() if len(v) > 1}
        self.substitute, self.drop = substitute, drop

    def __call__(self, text: str, seed: int) -> str:
        import random

        rng = random.Random(seed)
        out = []
        for char in text:
            if not _is_han(char):
                out.append(char)
                continue
            r = rng.random()
            if r < self.drop and len(text) > 3:
                continue
            if r < self.drop + self.substitute:
                options = [c for c in self.groups.get(self._pinyin(char), []) if c != char]
                if options:
                    out.append(rng.choice(options))
                    continue
            out.append(char)
        return "".join(out)


def _is_han(char: str) -> bool:
    return "\u4e00" <= char <= "\u9fff"
