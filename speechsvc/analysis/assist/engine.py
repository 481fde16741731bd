"""Agent assist: on each customer final, the knowledge entries that answer what the customer just asked,
for the agent's screen (like Google CCAI Agent Assist or Amazon Q in Connect, from a local knowledge file).

Ranking: the cosine similarity (sentence encoder) of the utterance to an entry's question variants and
title, plus a bonus when the text model's intent is one of the entry's intents and a smaller one when one
of its keywords is said. Nothing below ``min_score`` is suggested, so small talk (喂, 好的, 谢谢) gets nothing.

No repeats: an entry suggested in a call is suggested again only when its topic *returns*: after at least
``repeat_after`` customer utterances in a row in which it did not reach ``min_score``. While the customer
keeps talking about the same thing the agent already has the answer on screen.

Knowledge file (TOML, ``version = 1``; the default is ``assist_default.toml``)::

    version = 1
    [[entry]]
    id = "card_loss"                        # unique, lower_snake_case
    title = "银行卡挂失"                     # what the agent sees first
    questions = ["我的银行卡丢了", "卡丢了怎么挂失"]   # how customers ask (the more variants, the better)
    answer = "核实身份后办理临时挂失……"        # what the agent should say / do
    intents = ["card_account_security"]     # text-model intents that point to it (optional)
    keywords = ["挂失", "卡丢"]              # words that point to it (optional)
    tags = ["bank"]                         # free labels for filtering (optional)

Thread-safety: :class:`AssistEngine` is immutable after construction and shared; an :class:`AssistCall`
belongs to one call and one thread (or task) at a time.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechsvc.analysis.embedding import Embed, encode
from speechsvc.analysis.qa.rules import match_form
from speechsvc.analysis.record import Utterance

DEFAULT_KNOWLEDGE = Path(__file__).with_name("assist_default.toml")
_ENTRY_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")


class KnowledgeError(ValueError):
    """A knowledge file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class KnowledgeEntry:
    id: str
    title: str
    # Ways customers ask for it.
    questions: tuple[str, ...]
    answer: str
    intents: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Knowledge:
    entries: tuple[KnowledgeEntry, ...]
    source: str = "<string>"

    @classmethod
    def load(cls, path: Path | str | None = None) -> Knowledge:
        """Parse and validate a knowledge file (default: the packaged one).

        Raises:
            KnowledgeError: bad TOML, missing or mistyped fields, duplicate ids.
        """
        path = Path(path) if path is not None else DEFAULT_KNOWLEDGE
        return cls.parse(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> Knowledge:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise KnowledgeError(f"{source}: not valid TOML: {e}") from None
        if data.get("version") != 1:
            raise KnowledgeError(f"{source}: version: need version = 1, found {data.get('version')!r}")
        unknown = set(data) - {"version", "entry"}
        if unknown:
            raise KnowledgeError(f"{source}: unknown top-level keys {sorted(unknown)}")
        raw = data.get("entry", [])
        if not isinstance(raw, list) or not raw:
            raise KnowledgeError(f"{source}: entry: need at least one [[entry]]")
        entries = [_entry(item, f"{source}: entry[{i}]") for i, item in enumerate(raw)]
        ids = [e.id for e in entries]
        duplicate = next((i for i in ids if ids.count(i) > 1), None)
        if duplicate:
            raise KnowledgeError(f"{source}: duplicate entry id {duplicate!r}")
        return cls(tuple(entries), source)


def _strings(item: dict[str, Any], key: str, where: str, required: bool = False) -> tuple[str, ...]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise KnowledgeError(f"{where}.{key}: must be a list of non-empty strings")
    if required and not value:
        raise KnowledgeError(f"{where}.{key}: must not be empty")
    return tuple(value)


def _entry(item: Any, where: str) -> KnowledgeEntry:
    if not isinstance(item, dict):
        raise KnowledgeError(f"{where}: must be a table")
    unknown = set(item) - {"id", "title", "questions", "answer", "intents", "keywords", "tags"}
    if unknown:
        raise KnowledgeError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "title", "answer"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise KnowledgeError(f"{where}.{key}: required, a non-empty string")
    if not _ENTRY_ID.fullmatch(item["id"]):
        raise KnowledgeError(f"{where}.id: {item['id']!r} must be lower_snake_case")
    return KnowledgeEntry(
        id=item["id"], title=item["title"], questions=_strings(item, "questions", where, required=True),
        answer=item["answer"], intents=_strings(item, "intents", where),
        keywords=tuple(match_form(k) for k in _strings(item, "keywords", where)), tags=_strings(item, "tags", where),
    )


@dataclass(frozen=True)
class AssistOptions:
    # Least score for a suggestion (cosine similarity plus bonuses).
    min_score: float = 0.6
    # At most this many suggestions per utterance, each within `margin` of the best one.
    top_k: int = 2
    margin: float = 0.1
    # Added, times the intent probability, when the utterance's intent is one of the entry's intents with at
    # least min_intent_probability.
    intent_bonus: float = 0.15
    min_intent_probability: float = 0.5
    # Added once when one of the entry's keywords is in the utterance.
    keyword_bonus: float = 0.1
    # Customer utterances in a row without an entry reaching min_score before it may be suggested again.
    repeat_after: int = 4
    # Utterances with fewer characters (after normalisation) get nothing: 喂, 嗯, 好的.
    min_chars: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.min_score or self.top_k < 1 or self.margin < 0 or self.repeat_after < 1:
            raise ValueError("AssistOptions: need min_score > 0, top_k >= 1, margin >= 0, repeat_after >= 1")


@dataclass(frozen=True)
class Suggestion:
    """A knowledge entry for the agent, and the customer utterance it answers."""

    entry: str
    title: str
    answer: str
    score: float
    utterance: int
    start_ms: int
    end_ms: int
    text: str
    # Why: the closest question variant and its similarity, and any intent / keyword bonus.
    reason: str = ""


@dataclass(frozen=True)
class Ranked:
    entry: KnowledgeEntry
    score: float
    reason: str


class AssistEngine:
    """The knowledge of one file with every question variant embedded once, shared by all calls."""

    def __init__(self, knowledge: Knowledge, embed: Embed, options: AssistOptions | None = None) -> None:
        self.knowledge = knowledge
        self.embed = embed
        self.options = options or AssistOptions()
        texts: list[str] = []
        owners: list[int] = []
        for i, entry in enumerate(knowledge.entries):
            for text in (entry.title, *entry.questions):
                texts.append(text)
                owners.append(i)
        self._texts = texts
        self._vectors = encode(embed, texts)
        self._owners = np.asarray(owners)

    @classmethod
    def load(cls, embed: Embed, path: Path | str | None = None, options: AssistOptions | None = None) -> AssistEngine:
        return cls(Knowledge.load(path), embed, options)

    def call(self) -> AssistCall:
        return AssistCall(self)

    def rank(self, text: str, intent: str | None = None, intent_probability: float | None = None,
             embedding: np.ndarray | None = None) -> list[Ranked]:
        """Every entry scored for ``text``, best first (no threshold)."""
        vector = embedding if embedding is not None else encode(self.embed, [text])[0]
        sims = self._vectors @ vector
        n = len(self.knowledge.entries)
        best = np.full(n, -1.0, dtype=np.float32)
        best_text = [-1] * n
        for j in np.argsort(-sims):
            owner = int(self._owners[j])
            if best_text[owner] < 0:
                best[owner], best_text[owner] = sims[j], int(j)
        form = match_form(text)
        p = intent_probability if intent_probability is not None else 0.0
        o = self.options
        out = []
        for i, entry in enumerate(self.knowledge.entries):
            score = float(best[i])
            reason = f"similar {score:.2f} to {self._texts[best_text[i]]!r}"
            if intent and intent in entry.intents and p >= o.min_intent_probability:
                score += o.intent_bonus * p
                reason += f"; intent {intent} {p:.2f}"
            keyword = next((k for k in entry.keywords if k and k in form), None)
            if keyword:
                score += o.keyword_bonus
                reason += f"; keyword {keyword}"
            out.append(Ranked(entry, round(score, 4), reason))
        return sorted(out, key=lambda r: -r.score)


class AssistCall:
    """Suggestions for one call. Feed every final (customer finals get suggestions; others are ignored)."""

    def __init__(self, engine: AssistEngine) -> None:
        self.engine = engine
        # Customer utterances so far, and for each entry suggested in this call the number of the last one in
        # which it reached min_score.
        self._n = 0
        self._last: dict[str, int] = {}

    def update(self, utterance: Utterance, embedding: np.ndarray | None = None) -> list[Suggestion]:
        """Suggestions for a customer final (possibly none).

        Args:
            utterance: any final of the call; only the customer's (or a mono call's mixed leg) are used.
            embedding: its L2-normalised sentence embedding, when already computed for the call's QA rules.
        """
        if utterance.leg == "agent":
            return []
        o = self.engine.options
        self._n += 1
        if len(match_form(utterance.text).replace(" ", "")) < o.min_chars:
            return []
        ranked = [r for r in self.engine.rank(utterance.text, utterance.intent, utterance.intent_probability,
                                              embedding) if r.score >= o.min_score]
        if not ranked:
            return []
        top = ranked[0].score
        out: list[Suggestion] = []
        for r in ranked:
            last = self._last.get(r.entry.id)
            fresh = last is None or self._n - last > o.repeat_after
            if fresh and len(out) < o.top_k and r.score >= top - o.margin:
                out.append(Suggestion(r.entry.id, r.entry.title, r.entry.answer, r.score, utterance.index,
                                      utterance.start_ms, utterance.end_ms, utterance.text, r.reason))
                self._last[r.entry.id] = self._n
            elif last is not None:
                self._last[r.entry.id] = self._n  # the topic goes on: the answer is already on screen
        return out
