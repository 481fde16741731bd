"""Build data/qa_calls.jsonl (the labelled QA evaluation calls) from the hand-written data/qa_calls.txt.

The calls are written as dialogue; this script only gives them times, deterministically, as a stereo VAD
would: each utterance lasts its characters / the leg's speaking rate (±10 %) plus 0.3 s, and follows the
previous one after a pause of 0.3–1.1 s unless the line says otherwise. Run it after editing the text:

    /work/main/.venv/bin/python benchmarks/qa_calls_build.py

Source format (data/qa_calls.txt):

    defaults: RULE=LABEL ...            labels every call has unless its own `labels:` line says otherwise
    === CALL_ID | DOMAIN | OPTION ...   a call. Options: ended_by=customer|agent|platform|unknown,
                                        cut (the last utterance is cut off by the hang-up), start=S (first
                                        utterance start, s), agent_cps=N / customer_cps=N (characters per
                                        second; default 4.5 / 4.2), rate=normal|fast|slow (the label of the
                                        agent's speaking rate)
    labels: RULE=pass|fail|na ...       expected outcome of default-pack rules for this call
    note: TEXT                          what the call is about / tests (kept in the output)
    A: TEXT                             agent utterance; C: customer utterance
    A +S: TEXT                          ... starting S seconds after the previous utterance ended (a hold)
    A ~S: TEXT                          ... starting S seconds BEFORE the previous utterance ended (overlap)
    C [p_angry=0.8 assist=card_loss]: TEXT   voice P(angry) of the utterance (there is no audio: set by the
                                        author as the voice model would), expected assist entry (- = none)

agent_speaking_rate is labelled from `rate=` and is "na" when the agent speaks less than 20 s in total
(the rule's stated scope).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "qa_calls.txt"
OUT = REPO / "data" / "qa_calls.jsonl"
LABELS = ("pass", "fail", "na")
LINE = re.compile(r"^(?P<who>[AC])(?:\s+(?P<shift>[+~][0-9.]+))?(?:\s*\[(?P<attrs>[^\]]*)\])?\s*[:：]\s*(?P<text>.+)$")
UNIT = re.compile(r"[\u3400-\u9fff]|[A-Za-z0-9]+")


def _rand(*parts: object) -> float:
    """Deterministic value in [0, 1) from the parts."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in text.split():
        key, _, value = item.partition("=")
        out[key] = value
    return out


def parse(text: str) -> list[dict[str, Any]]:
    defaults: dict[str, str] = {}
    calls: list[dict[str, Any]] = []
    call: dict[str, Any] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("defaults:"):
            defaults = _pairs(line.removeprefix("defaults:"))
        elif line.startswith("==="):
            fields = [f.strip() for f in line.removeprefix("===").split("|")]
            options = _pairs(" ".join(fields[2:])) if len(fields) > 2 else {}
            call = {"id": fields[0], "domain": fields[1], "options": options, "labels": dict(defaults),
                    "note": "", "lines": []}
            calls.append(call)
        elif call is None:
            raise ValueError(f"line {number}: outside a call")
        elif line.startswith("labels:"):
            call["labels"].update(_pairs(line.removeprefix("labels:")))
        elif line.startswith("note:"):
            call["note"] = line.removeprefix("note:").strip()
        else:
            m = LINE.match(line)
            if not m:
                raise ValueError(f"line {number}: cannot read {line!r}")
            call["lines"].append((number, m.group("who"), m.group("shift"), _pairs(m.group("attrs") or ""),
                                  m.group("text").strip()))
    return calls


def build(call: dict[str, Any]) -> dict[str, Any]:
    options = call["options"]
    cps = {"agent": float(options.get("agent_cps", 4.5)), "customer": float(options.get("customer_cps", 4.2))}
    index = {"agent": 0, "customer": 0}
    utterances = []
    previous_end = float(options.get("start", 0.6))
    first = True
    for number, who, shift, attrs, text in call["lines"]:
        leg = "agent" if who == "A" else "customer"
        if shift and shift[0] == "+":
            start = previous_end + float(shift[1:])
        elif shift and shift[0] == "~":
            start = previous_end - float(shift[1:])
        elif first:
            start = previous_end
        else:
            start = previous_end + 0.3 + 0.8 * _rand(call["id"], number, "gap")
        units = len(UNIT.findall(text))
        duration = units / cps[leg] * (0.9 + 0.2 * _rand(call["id"], number, "rate")) + 0.3
        end = start + duration
        u: dict[str, Any] = {"leg": leg, "index": index[leg], "start_ms": round(start * 1000),
                             "end_ms": round(end * 1000), "text": text}
        if "p_angry" in attrs:
            u["p_angry"] = float(attrs["p_angry"])
            u["emotion"] = "angry" if u["p_angry"] >= 0.5 else "neutral"
        if "assist" in attrs:
            u["assist"] = None if attrs["assist"] == "-" else attrs["assist"]
        utterances.append(u)
        index[leg] += 1
        previous_end = max(previous_end, end) if shift and shift[0] == "~" else end
        first = False
    last = max(utterances, key=lambda u: u["end_ms"])
    cut = "cut" in options
    duration_ms = last["end_ms"] if cut else last["end_ms"] + round(1500 * (0.5 + _rand(call["id"], "tail")))
    ended_by = options.get("ended_by", "customer")
    labels = dict(call["labels"])
    agent_talk = sum(u["end_ms"] - u["start_ms"] for u in utterances if u["leg"] == "agent") / 1000
    labels["agent_speaking_rate"] = "na" if agent_talk < 20 else (
        "pass" if options.get("rate", "normal") == "normal" else "fail")
    for rule, label in labels.items():
        if label not in LABELS:
            raise ValueError(f"{call['id']}: {rule}={label!r} is not one of {LABELS}")
    return {
        "id": call["id"], "domain": call["domain"], "note": call["note"], "legs": ["customer", "agent"],
        "utterances": utterances,
        "end": {"duration_ms": duration_ms, "ended_by": None if ended_by == "unknown" else ended_by,
                "mid_utterance": cut, "mid_utterance_leg": last["leg"] if cut else None},
        "labels": dict(sorted(labels.items())),
    }


def main() -> None:
    calls = [build(c) for c in parse(SOURCE.read_text(encoding="utf-8"))]
    ids = [c["id"] for c in calls]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate call ids")
    OUT.write_text("".join(json.dumps(c, ensure_ascii=False) + "\n" for c in calls), encoding="utf-8")
    sys.stderr.write(f"{len(calls)} calls, {sum(len(c['utterances']) for c in calls)} utterances -> {OUT}\n")


if __name__ == "__main__":
    main()
