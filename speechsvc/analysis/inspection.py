"""The quality-inspection stage: the operator's QA rules (:mod:`speechsvc.analysis.qa`) over every call, live.

Each final (redacted text, intent, negativity, emotion: it runs after those stages) goes to the call's
:class:`~speechsvc.analysis.qa.QaCall`; a ``qa`` event goes out as soon as a rule is decided (a forbidden phrase
at once, a greeting deadline when it passes), the rest when the call ends, followed by one ``qa.summary`` with
the call's score. A recorded call gets the same outcomes, which the batch report keeps in its ``qa`` section.

Rules that compare sentences (``similar``, embedding ``repeat``) use the sentence embedding the intent stage
already computed for the utterance, so they need the text analysis on; this is checked at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from speechsvc.analysis.base import CallEnd, CallInfo, Stage, StageCall, UtteranceAnalysis
from speechsvc.analysis.call import CallEnd as QaCallEnd
from speechsvc.analysis.call import Utterance
from speechsvc.analysis.qa import QaCall, QaEngine, QaOutcome
from speechsvc.analysis.qa_ops import QaEvidence
from speechsvc.analysis.qa_rules import QaRules
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


def utterance(u: UtteranceAnalysis) -> Utterance:
    """What the rules see of an analysed utterance."""
    return Utterance(u.leg, u.utterance, u.start_ms, u.end_ms, u.text, u.intent,
                     u.intent_probability if u.intent is not None else None, u.negativity, u.emotion,
                     u.p_angry_smoothed, u.arousal)


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


class _InspectionCall(StageCall[None]):
    def __init__(self, call: QaCall) -> None:
        self.call = call

    def apply(self, u: UtteranceAnalysis, found: None) -> list[Event]:
        return [event(o) for o in self.call.update(utterance(u), u.embedding)]

    def advance(self, watermarks: Mapping[Leg, int]) -> list[Event]:
        return [event(o) for leg, ms in watermarks.items() for o in self.call.advance(leg, ms)]

    def end(self, ended: CallEnd) -> list[Event]:
        cut = ended.cut_off[-1] if ended.cut_off else None
        outcomes = self.call.end(QaCallEnd(ended.duration_ms, ended.ended_by,  # type: ignore[arg-type]
                                           bool(ended.cut_off), cut))
        report = self.call.report()
        return [*(event(o) for o in outcomes),
                QaSummary(report.rules, report.score, report.base_score, report.failed)]
