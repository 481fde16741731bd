"""Labelled intent data an operator writes or exports: reading and checking a TSV before training, and the
labelling sheet of utterances the model was least sure of (from batch reports).

The TSV is what a spreadsheet saves as "tab-separated" or "Unicode text": a header row, one utterance per
row. Columns: ``text`` and ``intent`` (required), ``negative`` (optional, 0/1: the caller is negative or
complains; trains the negativity head), and the informational columns the labelling sheet adds
(``suggested``, ``probability``, ``reason``, ``source``) or a spreadsheet user may keep (``id``, ``domain``,
``note``), which training ignores. Anything else is an error, so a misspelt ``intent`` column is caught
rather than silently dropped. Pure Python: no model is loaded here.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechsvc.analysis.text import normalize

REQUIRED = ("text", "intent")
OPTIONAL = ("negative",)
INFORMATIONAL = ("suggested", "probability", "reason", "source", "id", "domain", "note")
# Fewest examples an intent may have: 5-fold cross-validation needs one per fold.
MIN_PER_INTENT = 5
MAX_INTENT_CHARS = 64
SHEET_COLUMNS = ("text", "intent", "negative", "suggested", "probability", "reason", "source")


class IntentDataError(ValueError):
    """A labelled file that cannot be trained on; the message names the file, the row and the fix."""


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    # 1 / 0 when the row says whether the caller is negative, None when it does not.
    negative: int | None
    # Where it came from: "FILE:LINE".
    where: str


def decode(path: Path) -> str:
    """The file's text: UTF-8 (with or without a byte-order mark) or UTF-16 with a byte-order mark (Excel's
    "Unicode text").

    Raises:
        IntentDataError: any other encoding, with how to convert it.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise IntentDataError(f"{path}: cannot read: {e.strerror}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        hint = ""
        try:
            data.decode("gb18030")
            hint = (" It decodes as GBK/GB18030 (a Chinese spreadsheet's default): save it as UTF-8 or "
                    f"'Unicode text', or convert it: iconv -f GB18030 -t UTF-8 {path} > {path.stem}.utf8.tsv")
        except UnicodeDecodeError:
            pass
        raise IntentDataError(f"{path}: line {line} is not UTF-8 (byte {e.start}).{hint}") from None


def read_examples(path: Path) -> list[Example]:
    """Every labelled row of an operator's TSV, checked.

    Raises:
        IntentDataError: wrong encoding, not tab-separated, missing or unknown columns, a row with the wrong
            number of fields, an empty text or intent, a ``negative`` other than 0/1, an over-long intent name.
    """
    lines = decode(path).splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise IntentDataError(f"{path}: the file is empty; expected a header row `text<TAB>intent`")
    header = [h.strip() for h in lines[0].split("\t")]
    if len(header) == 1 and ("," in header[0] or ";" in header[0]):
        raise IntentDataError(f"{path}: the header {lines[0]!r} is not tab-separated; save the sheet as "
                              "tab-separated text (TSV), not CSV")
    if missing := [c for c in REQUIRED if c not in header]:
        raise IntentDataError(f"{path}: missing column(s) {missing}; the header has {header}")
    known = {*REQUIRED, *OPTIONAL, *INFORMATIONAL}
    if unknown := [c for c in header if c not in known]:
        raise IntentDataError(f"{path}: unknown column(s) {unknown}; allowed: {list(REQUIRED + OPTIONAL)} and "
                              f"(ignored) {list(INFORMATIONAL)}")
    if duplicated := [c for c, n in Counter(header).items() if n > 1]:
        raise IntentDataError(f"{path}: column(s) {duplicated} appear twice")
    examples: list[Example] = []
    empty_intent: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise IntentDataError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)} "
                                  "(a tab inside a text, or a missing column?)")
        row = dict(zip(header, (f.strip() for f in fields), strict=True))
        if not row["text"]:
            raise IntentDataError(f"{path}:{number}: empty text")
        if not row["intent"]:
            empty_intent.append(number)
            continue
        if len(row["intent"]) > MAX_INTENT_CHARS or any(c.isspace() for c in row["intent"]):
            raise IntentDataError(f"{path}:{number}: intent {row['intent']!r}: use a name without spaces of at "
                                  f"most {MAX_INTENT_CHARS} characters")
        negative = row.get("negative", "")
        if negative not in ("", "0", "1"):
            raise IntentDataError(f"{path}:{number}: negative is {negative!r}; use 1, 0 or leave it empty")
        examples.append(Example(row["text"], row["intent"], int(negative) if negative else None,
                                f"{path.name}:{number}"))
    if empty_intent:
        shown = ", ".join(map(str, empty_intent[:10])) + (" …" if len(empty_intent) > 10 else "")
        raise IntentDataError(f"{path}: {len(empty_intent)} row(s) have an empty intent (lines {shown}); label "
                              "them or delete the rows")
    if not examples:
        raise IntentDataError(f"{path}: no labelled rows")
    return examples


def check_counts(examples: Sequence[Example], where: str) -> dict[str, int]:
    """Examples per intent, when every intent has enough to train and cross-validate.

    Raises:
        IntentDataError: fewer than two intents, or an intent with fewer than :data:`MIN_PER_INTENT` examples.
    """
    counts = Counter(e.intent for e in examples)
    if len(counts) < 2:
        raise IntentDataError(f"{where}: only {len(counts)} intent ({list(counts)}); a classifier needs two or more")
    if few := {intent: n for intent, n in sorted(counts.items()) if n < MIN_PER_INTENT}:
        raise IntentDataError(f"{where}: too few examples for {few}; each intent needs at least {MIN_PER_INTENT} "
                              "(label more, merge the intent into another, or drop it)")
    return dict(sorted(counts.items()))


def conflicts(examples: Iterable[Example]) -> list[tuple[str, list[str]]]:
    """Texts (after normalisation) labelled with more than one intent: worth a second look before training."""
    seen: dict[str, set[str]] = defaultdict(set)
    for e in examples:
        seen[normalize(e.text)].add(e.intent)
    return [(text, sorted(labels)) for text, labels in seen.items() if len(labels) > 1]


# ---- the labelling sheet ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """An utterance from a batch report, with what the model said of it."""

    text: str
    suggested: str | None
    probability: float | None
    source: str


def candidates(reports: Sequence[Path], legs: Sequence[str] = ("customer", "mixed")) -> list[Candidate]:
    """Distinct utterances of the watched legs in batch reports (the JSON ``speechsvc batch`` writes; texts are
    already PII-redacted there), first occurrence kept.

    Raises:
        IntentDataError: a report that is not a batch report.
    """
    seen: set[str] = set()
    out: list[Candidate] = []
    for path in reports:
        try:
            report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            segments = report["segments"]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise IntentDataError(f"{path}: not a batch report (JSON with segments): {e}") from None
        for s in segments:
            text = " ".join(str(s.get("text") or "").split())
            key = normalize(text)
            if s.get("leg") not in legs or len(key.replace(" ", "")) < 2 or key in seen:
                continue
            seen.add(key)
            probability = s.get("intent_probability")
            out.append(Candidate(text, s.get("intent"), float(probability) if probability is not None else None,
                                 f"{path.name}#{s.get('leg')}:{s.get('index', '')}"))
    return out


def select(found: Sequence[Candidate], uncertain: int, sample: int, seed: int = 0) -> list[tuple[Candidate, str]]:
    """The ``uncertain`` utterances the model was least sure of (lowest top probability), then a diverse
    sample of ``sample`` more: round-robin over the intents the model predicted (so rare intents appear, not
    only the common ones), random within each. Each with why it was chosen."""
    scored = sorted((c for c in found if c.probability is not None), key=lambda c: (c.probability, c.text))
    chosen = [(c, "uncertain") for c in scored[:uncertain]]
    taken = {id(c) for c, _ in chosen}
    by_intent: dict[str, list[Candidate]] = defaultdict(list)
    for c in found:
        if id(c) not in taken:
            by_intent[c.suggested or "-"].append(c)
    rng = random.Random(seed)
    queues = []
    for intent in sorted(by_intent):
        group = by_intent[intent]
        rng.shuffle(group)
        queues.append(group)
    picked = 0
    while picked < sample and any(queues):
        for group in queues:
            if group and picked < sample:
                chosen.append((group.pop(), "sample"))
                picked += 1
    return chosen


def write_sheet(rows: Sequence[tuple[Candidate, str]], out: Path) -> None:
    """The labelling sheet: UTF-8 with a byte-order mark (so spreadsheets show Chinese), tab-separated, the
    ``intent`` (and ``negative``) column left empty to fill in; ``suggested`` is the model's guess."""
    lines = ["\t".join(SHEET_COLUMNS)]
    for c, reason in rows:
        probability = "" if c.probability is None else f"{c.probability:.3f}"
        lines.append("\t".join([_cell(c.text), "", "", c.suggested or "", probability, reason, _cell(c.source)]))
    out.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")


def _cell(text: str) -> str:
    return " ".join(text.replace("\t", " ").split())
