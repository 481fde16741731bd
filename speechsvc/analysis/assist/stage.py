"""The agent-assist stage: on each customer final, the knowledge entries that answer it, for the agent.

Live calls only (a recording has no agent to help). Uses the intent and the sentence embedding the intent stage
computed for the utterance (no second encoder run), so it needs the text analysis on (checked at start-up).
An ``assist`` event goes to the agent leg with the entry, its answer, its score and the customer utterance it
answers; an entry is not suggested again in a call until the topic has changed and come back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from speechsvc.analysis.assist.engine import AssistCall, AssistEngine, Knowledge
from speechsvc.analysis.base import CallInfo, Mode, Stage, StageCall
from speechsvc.analysis.record import Utterance
from speechsvc.config import Settings
from speechsvc.types import Event, Leg


@dataclass(frozen=True)
class Assist(Event):
    """A knowledge-base entry suggested to the agent for a customer utterance."""

    TYPE: ClassVar[str] = "assist"
    # Who the suggestion is for: the agent leg.
    leg: Leg
    entry: str
    title: str
    answer: str
    score: float
    # The customer utterance it answers.
    utterance: int
    utterance_leg: Leg
    start_ms: int
    end_ms: int
    text: str
    reason: str


class AssistStage(Stage):
    name = "assist"
    phase = 3

    def __init__(self, engine: AssistEngine) -> None:
        self.engine = engine

    @classmethod
    def load(cls, settings: Settings) -> AssistStage | None:
        if not settings.assist:
            return None
        if not settings.text_analysis:
            raise ValueError("agent assist compares sentence embeddings, which the text analysis computes; "
                             "set SPEECHSVC_TEXT_ANALYSIS=true or SPEECHSVC_ASSIST=false")
        from speechsvc.analysis.intent import embedder

        knowledge = Knowledge.load(settings.assist_knowledge)
        return cls(AssistEngine(knowledge, embedder().encode))  # entries embedded once, at start-up

    def open(self, call: CallInfo) -> StageCall[None]:
        if call.mode is Mode.BATCH:
            return StageCall()  # nobody to help in a recording
        return _AssistCall(self.engine.call())


class _AssistCall(StageCall[None]):
    def __init__(self, call: AssistCall) -> None:
        self.call = call

    def apply(self, u: Utterance, found: None) -> list[Event]:
        if u.embedding is None:
            return []  # the text stage skipped this utterance (overload): nothing to compare
        return [Assist("agent", s.entry, s.title, s.answer, s.score, s.utterance, u.leg, s.start_ms, s.end_ms,
                       s.text, s.reason)
                for s in self.call.update(u, u.embedding)]
