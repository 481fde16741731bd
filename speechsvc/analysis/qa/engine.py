"""Quality inspection of calls: the rules of a :class:`~speechsvc.analysis.qa.rules.QaRules` file applied to
every call, live (``QaCall.update`` as finals arrive, ``QaCall.end`` at hang-up) or after the call
(``QaEngine.score_call``), with the same outcome either way.

A live call learns each leg's finals in that leg's order, but the legs run independently: the agent's
final for 0:12 can arrive before the customer's for 0:10. :class:`QaCall` therefore holds utterances
back until no earlier one can still arrive (every other leg has spoken past its start, or ``advance``
said so), feeds them to the rules in time order, and decides a rule as soon as nothing still to come can
change it (a forbidden phrase at once; a greeting required in the first 15 s at 15 s; a complaint not
followed by an apology when its window closes); the rest at the end. Each rule is decided once per call.

Thread-safety: a :class:`QaEngine` is immutable after construction and may be shared by every call and
thread; a :class:`QaCall` belongs to one call and must be fed from one thread (or one task) at a time.
"""

from __future__ import annotations

import bisect
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from speechsvc.analysis.embedding import Embed, encode
from speechsvc.analysis.qa.ops import CallState, Matching, Node, QaEvidence, Utt, Verdict, build, speech_units
from speechsvc.analysis.qa.rules import QaRules, Rule, Severity, match_form
from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.types import Leg

log = logging.getLogger(__name__)

Status = Literal["pass", "fail", "not_applicable"]

__all__ = ["Embed", "QaCall", "QaEngine", "QaEvidence", "QaOutcome", "QaReport", "qa_aggregates"]


@dataclass(frozen=True)
class QaOutcome:
    """One rule's decision for one call."""

    rule: str
    category: str
    severity: Severity
    # True: passed; False: failed; None: not applicable to this call.
    passed: bool | None
    # What this outcome adds to the call's score: the rule's score when a deduction fails or a bonus passes.
    score: float
    evidence: tuple[QaEvidence, ...]
    # "live": decided while the call was going on (from the utterances so far); "end": at the call's end.
    decided_at: Literal["live", "end"]
    # Why, when the evidence alone does not say (e.g. "no agent utterance matching greeting in the first 15 s").
    note: str = ""

    @property
    def status(self) -> Status:
        return "not_applicable" if self.passed is None else "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


@dataclass(frozen=True)
class QaReport:
    """Every rule's outcome for one call and the call's score."""

    # Which rules scored it: file name, schema version, digest of the text.
    rules: str
    # base_score + the scores of the outcomes.
    score: float
    base_score: float
    outcomes: tuple[QaOutcome, ...]

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(o.rule for o in self.outcomes if o.passed is False)

    def outcome(self, rule: str) -> QaOutcome:
        return next(o for o in self.outcomes if o.rule == rule)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules, "score": self.score, "base_score": self.base_score, "failed": list(self.failed),
                "outcomes": [o.to_dict() for o in self.outcomes]}


class QaEngine:
    """The rules of one file, ready for every call of the process: validated, with the example sentences of
    the ``similar`` operators embedded once."""

    def __init__(self, rules: QaRules, embed: Embed | None = None) -> None:
        """Args:
            rules: parsed rules (:meth:`QaRules.load`).
            embed: sentence encoder for ``similar`` operators; required when the rules use one.

        Raises:
            ValueError: the rules use ``similar`` and no ``embed`` was given.
        """
        self.rules = rules
        self.embed = embed
        similar = rules.similar_matchers()
        # Legs whose utterances need an embedding (a similar matcher or an embedding repeat looks at them).
        self._embedded_roles = rules.embedding_roles()
        if self._embedded_roles and embed is None:
            raise ValueError(f"{rules.source}: the rules compare sentence embeddings (op = 'similar' or repeat with "
                             f"similarity = 'embedding'); QaEngine needs embed (the sentence encoder)")
        examples: dict[int, np.ndarray] = {}
        if similar and embed is not None:
            vectors = encode(embed, [e for m in similar for e in m.examples])
            offset = 0
            for m in similar:
                examples[id(m)] = vectors[offset : offset + len(m.examples)]
                offset += len(m.examples)
        self.matching = Matching(examples)

    @classmethod
    def load(cls, path: str | None = None, embed: Embed | None = None) -> QaEngine:
        """The engine of a rules file (default: the packaged pack). Raises QaRulesError on a bad file."""
        return cls(QaRules.load(path), embed)

    def needs_embedding(self, leg: Leg) -> bool:
        return "any" in self._embedded_roles or leg in self._embedded_roles

    def embedding(self, utterance: Utterance) -> np.ndarray | None:
        """The utterance's sentence embedding (L2-normalised), or None when no ``similar`` operator looks at its
        leg. Compute it once per utterance and pass it to :meth:`QaCall.update` (and to agent assist)."""
        if self.embed is None or not self.needs_embedding(utterance.leg):
            return None
        vector: np.ndarray = encode(self.embed, [utterance.text])[0]
        return vector

    def call(self, legs: Sequence[Leg] = ("customer", "agent")) -> QaCall:
        """Per-call state for a call with these legs (stereo: customer and agent; mono: mixed)."""
        return QaCall(self, tuple(legs))

    def score_call(self, utterances: Iterable[Utterance], call_end: CallEnd,
                   legs: Sequence[Leg] | None = None) -> QaReport:
        """Score a finished call (its utterances in any order). ``legs`` defaults to mixed when any utterance is
        mixed, else customer and agent."""
        items = sorted(utterances, key=_order)
        chosen: tuple[Leg, ...] = tuple(legs) if legs is not None else (
            ("mixed",) if any(u.leg == "mixed" for u in items) else ("customer", "agent"))
        call = QaCall(self, chosen)
        for u in items:
            call.update(u)
        call.end(call_end)
        return call.report()


def _order(u: Utterance) -> tuple[int, int, str, int]:
    return (u.start_ms, u.end_ms, u.leg, u.index)


class _RuleState:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.when: Node = build(rule.when)
        self.applies: Node | None = build(rule.applies_if) if rule.applies_if is not None else None
        self.when_verdict: Verdict | None = None
        self.applies_verdict: Verdict | None = None

    def step(self, call: CallState) -> Verdict | None:
        """The rule's condition verdict once decided; NOT_APPLICABLE-valued when it does not apply. An
        applies_if that cannot be decided for lack of data (who hung up) does not exclude the rule: only one
        known to be false does."""
        if self.applies is not None and self.applies_verdict is None:
            self.applies_verdict = self.applies.step(call)
        if self.applies_verdict is not None and self.applies_verdict.value is False:
            return Verdict(None, (), self.applies_verdict.note or "applies_if is false")
        if self.when_verdict is None:
            self.when_verdict = self.when.step(call)
        if self.applies is not None and self.applies_verdict is None:
            return None
        return self.when_verdict


class QaCall:
    """The quality inspection of one call. Feed each final utterance (any leg, as it arrives) to
    :meth:`update`, and :meth:`end` once at the end; each returns the outcomes decided by it."""

    def __init__(self, engine: QaEngine, legs: tuple[Leg, ...]) -> None:
        if not legs:
            raise ValueError("a call needs at least one leg")
        self.engine = engine
        self.legs = legs
        self._state = CallState(legs, engine.matching)
        # Per leg: no utterance of that leg still to come starts before this.
        self._watermark: dict[Leg, int] = dict.fromkeys(legs, 0)
        self._pending: list[tuple[tuple[int, int, str, int], Utterance, np.ndarray | None]] = []
        self._rules: list[_RuleState] = []
        self._outcomes: dict[str, QaOutcome] = {}
        self._new: list[QaOutcome] = []
        roles = {leg for leg in legs if leg != "mixed"}
        for rule in engine.rules.rules:
            if rule.roles - roles:
                missing = ", ".join(sorted(rule.roles - roles))
                self._decide(rule, Verdict(None, note=f"the call has no {missing} leg"), "live")
            else:
                self._rules.append(_RuleState(rule))

    @property
    def ended(self) -> bool:
        return self._state.end is not None

    def update(self, utterance: Utterance, embedding: np.ndarray | None = None) -> list[QaOutcome]:
        """Add a final utterance; returns the outcomes this decides (often none).

        Args:
            utterance: a final of one of the call's legs; each leg's finals in that leg's order.
            embedding: its sentence embedding when already computed (:meth:`QaEngine.embedding`); computed
                here when a ``similar`` rule needs it and it is not given.

        Raises:
            ValueError: a leg the call does not have, or an update after :meth:`end`.
        """
        if self.ended:
            raise ValueError("update after end")
        if utterance.leg not in self._watermark:
            raise ValueError(f"leg {utterance.leg!r} is not one of this call's legs {self.legs}")
        if embedding is None:
            embedding = self.engine.embedding(utterance)
        bisect.insort(self._pending, (_order(utterance), utterance, embedding), key=lambda p: p[0])
        self._watermark[utterance.leg] = max(self._watermark[utterance.leg], utterance.end_ms)
        return self._advance()

    def advance(self, leg: Leg, time_ms: int) -> list[QaOutcome]:
        """Say that ``leg`` will have no utterance starting before ``time_ms`` (its VAD is quiet up to there),
        so rules waiting on that leg can decide sooner (a hold in progress, a greeting deadline)."""
        if leg in self._watermark and not self.ended:
            self._watermark[leg] = max(self._watermark[leg], time_ms)
            return self._advance()
        return []

    def end(self, call_end: CallEnd) -> list[QaOutcome]:
        """The call is over: decide every rule still open. Returns those outcomes (decided_at "end")."""
        if self.ended:
            return []
        self._release(everything=True)
        self._state.end = call_end
        self._state.horizon_ms = max(call_end.duration_ms, self._state.horizon_ms)
        self._step("end")
        if self._rules:  # every node decides at the end; anything left is a bug in an operator
            raise RuntimeError(f"rules undecided at the end: {[r.rule.id for r in self._rules]}")
        return self._take()

    def report(self) -> QaReport:
        """The call's report; every rule not decided yet counts as not applicable (call :meth:`end` first)."""
        rules = self.engine.rules
        outcomes = []
        for rule in rules.rules:
            outcome = self._outcomes.get(rule.id)
            if outcome is None:
                outcome = QaOutcome(rule.id, rule.category, rule.severity, None, 0.0, (), "end", "call not ended")
            outcomes.append(outcome)
        score = rules.base_score + sum(o.score for o in outcomes)
        return QaReport(rules.identity, round(score, 3), rules.base_score, tuple(outcomes))

    # -- internals --

    def _advance(self) -> list[QaOutcome]:
        if self._release(everything=False):
            self._step("live")
        return self._take()

    def _release(self, everything: bool) -> bool:
        """Move pending utterances that no later arrival can precede into the call, in time order."""
        state = self._state
        old_horizon = state.horizon_ms
        state.horizon_ms = max(old_horizon, min(self._watermark.values()))
        released = False
        while self._pending:
            _, u, embedding = self._pending[0]
            if not everything and any(u.start_ms >= wm for leg, wm in self._watermark.items() if leg != u.leg):
                break
            self._pending.pop(0)
            if state.utts and _order(u) < _order(state.utts[-1].u):
                log.warning("utterance %s/%d arrived after later ones were inspected; rules see it late",
                            u.leg, u.index)
            form = match_form(u.text)
            state.utts.append(Utt(u, len(state.utts), form, speech_units(form), embedding))
            released = True
        return released or state.horizon_ms > old_horizon

    def _step(self, when: Literal["live", "end"]) -> None:
        still = []
        for rs in self._rules:
            verdict = rs.step(self._state)
            if verdict is None:
                still.append(rs)
            else:
                self._decide(rs.rule, verdict, when)
        self._rules = still

    def _decide(self, rule: Rule, verdict: Verdict, when: Literal["live", "end"]) -> None:
        matched = verdict.value
        passed = None if matched is None else (not matched if rule.kind == "violation" else matched)
        score = rule.score if (passed is False and rule.score < 0) or (passed is True and rule.score > 0) else 0.0
        outcome = QaOutcome(rule.id, rule.category, rule.severity, passed, score, verdict.evidence, when, verdict.note)
        self._outcomes[rule.id] = outcome
        self._new.append(outcome)

    def _take(self) -> list[QaOutcome]:
        new, self._new = self._new, []
        return new


# ---- aggregates over many calls ----------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def qa_aggregates(reports: Iterable[Mapping[str, Any] | QaReport], top: int = 10) -> dict[str, Any]:
    """Figures over many calls for a job summary: the score distribution, the rules failing most often, and
    the mean score per agent where a report carries ``agent_id``.

    Args:
        reports: batch reports carrying a ``qa`` section (``QaReport.to_dict``) and optionally ``agent_id``,
            or QA reports themselves (dicts or :class:`QaReport`).
        top: how many failing rules to list.
    """
    scores: list[float] = []
    fails: Counter[str] = Counter()
    applicable: Counter[str] = Counter()
    per_agent: dict[str, list[float]] = defaultdict(list)
    for item in reports:
        if isinstance(item, QaReport):
            qa, agent = item.to_dict(), None
        else:
            qa = item.get("qa", item)
            agent = item.get("agent_id", qa.get("agent_id"))
        scores.append(float(qa["score"]))
        for o in qa["outcomes"]:
            if o["passed"] is not None:
                applicable[o["rule"]] += 1
            if o["passed"] is False:
                fails[o["rule"]] += 1
        if agent is not None:
            per_agent[str(agent)].append(float(qa["score"]))
    return {
        "calls": len(scores),
        "score": {"mean": round(float(np.mean(scores)), 2) if scores else 0.0, "p10": _percentile(scores, 10),
                  "p50": _percentile(scores, 50), "p90": _percentile(scores, 90)},
        "top_failing": [{"rule": rule, "failed": n, "applicable": applicable[rule],
                         "fail_rate": round(n / applicable[rule], 3)} for rule, n in fails.most_common(top)],
        "per_agent": {agent: {"calls": len(v), "mean_score": round(float(np.mean(v)), 2)}
                      for agent, v in sorted(per_agent.items())},
    }
