"""The quality-inspection stage: the operator's QA rules (:mod:`speechsvc.analysis.qa`) over every call, live.

Each final's record (redacted text, intent, negativity, emotion: it runs after those stages) goes to the call's
:class:`~speechsvc.analysis.qa.QaCall`; a ``qa`` event goes out as soon as a rule is decided (a forbidden phrase
at once, a greeting deadline when it passes), the rest when the call ends, followed by one ``qa.summary`` with
the call's score. A recorded call gets the same outcomes, which the batch report keeps in its ``qa`` section.

Rules that compare sentences (``similar``, embedding ``repeat``) use the sentence embedding the intent stage
already computed for the utterance, so they need the text analysis on; this is checked at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from speechsvc.analysis.base import CallInfo, Stage, StageCall
from speechsvc.analysis.qa.engine import QaCall, QaEngine, QaOutcome, qa_aggregates
from speechsvc.analysis.qa.ops import QaEvidence
from speechsvc.analysis.qa.rules import QaRules
from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.config import Settings
from speechsvc.types import Event, Leg


@dataclass(frozen=True)
class Qa(Event):
    """One QA rule decided for the call: passed (True), failed (False) or not applicable (None)."""

    TYPE: ClassVar[str] = "qa"
    rule: str
    category: str
    severity: str
    passed: bool | None
    # What this outcome adds to the call's score (a deduction when a rule fails, a bonus when one passes).
    score: float
    evidence: tuple[QaEvidence, ...]
    # "live" (decided while the call went on) or "end".
    decided_at: str
    note: str = ""


@dataclass(frozen=True)
class QaSummary(Event):
    """The call's QA score when it ends: base score plus the scores of every outcome."""

    TYPE: ClassVar[str] = "qa.summary"
    rules: str
    score: float
    base_score: float
    failed: tuple[str, ...]


def event(o: QaOutcome) -> Qa:
    return Qa(o.rule, o.category, o.severity, o.passed, o.score, o.evidence, o.decided_at, o.note)


class InspectionStage(Stage):
    name = "qa"
    phase = 3

    def __init__(self, engine: QaEngine) -> None:
        self.engine = engine

    @classmethod
    def load(cls, settings: Settings) -> InspectionStage | None:
        if not settings.qa:
            return None
        rules = QaRules.load(str(settings.qa_rules) if settings.qa_rules else None)
        embed = None
        if rules.embedding_roles():
            if not settings.text_analysis:
                raise ValueError(f"{rules.source}: these QA rules compare sentence embeddings, which the text "
                                 "analysis computes; set SPEECHSVC_TEXT_ANALYSIS=true or drop those rules")
            from speechsvc.analysis.intent import embedder

            embed = embedder().encode  # the examples are embedded once, here, before any worker runs
        return cls(QaEngine(rules, embed))

    def open(self, call: CallInfo) -> StageCall[None]:
        return _InspectionCall(self.engine.call(call.legs))

    def card(self, card: dict[str, Any], event: Event) -> float | None:
        """The call's failed rules and its score; risk: the failed rules weighted by severity (the pack's
        ``[risk]``)."""
        if isinstance(event, QaSummary):
            card["qa_score"] = event.score
            return None
        if not isinstance(event, Qa) or event.passed is not False:
            return None
        failed = card.setdefault("qa_failed", [])
        failed.append({"rule": event.rule, "severity": event.severity, "category": event.category,
                       "at": event.emitted_at, "note": event.note,
                       "text": event.evidence[0].text if event.evidence else ""})
        risk = self.engine.rules.risk
        return sum(risk.get(q["severity"], 0.5) for q in failed)

    def report(self, utterances: Sequence[Utterance], events: Sequence[Event]) -> dict[str, Any] | None:
        """The score and every rule's outcome with its evidence."""
        summary = next((e for e in events if isinstance(e, QaSummary)), None)
        if summary is None:
            return None
        outcomes = [{k: v for k, v in asdict(e).items() if k != "emitted_at"} for e in events if isinstance(e, Qa)]
        for o in outcomes:
            o["status"] = "not_applicable" if o["passed"] is None else "pass" if o["passed"] else "fail"
        return {"rules": summary.rules, "score": summary.score, "base_score": summary.base_score,
                "failed": list(summary.failed), "outcomes": outcomes}

    @classmethod
    def columns(cls, section: Any) -> dict[str, Any]:
        return {"qa_score": section["score"], "qa_failed": ";".join(section["failed"])} if section else {}

    @classmethod
    def aggregate(cls, reports: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        """The score distribution, the rules failing most and per-agent means over the job's calls."""
        scored = [r for r in reports if r.get(cls.name)]
        return qa_aggregates(scored) if scored else None


class _InspectionCall(StageCall[None]):
    def __init__(self, call: QaCall) -> None:
        self.call = call

    def apply(self, u: Utterance, found: None) -> list[Event]:
        return [event(o) for o in self.call.update(u, u.embedding)]

    def advance(self, watermarks: Mapping[Leg, int]) -> list[Event]:
        return [event(o) for leg, ms in watermarks.items() for o in self.call.advance(leg, ms)]

    def end(self, ended: CallEnd) -> list[Event]:
        outcomes = self.call.end(ended)
        report = self.call.report()
        return [*(event(o) for o in outcomes),
                QaSummary(report.rules, report.score, report.base_score, report.failed)]
