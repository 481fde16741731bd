"""One :class:`CallAnalyzer` per call: every analysis stage, in phase order, over the call's final utterances.

The live session and the recorded-call path both use it; the stages fill in one
:class:`~speechsvc.analysis.record.Utterance` per final. :meth:`CallAnalyzer.analyze` takes one utterance (live:
one at a time, as finals arrive) or all of a recording at once; the results are the same, because within a
phase model work runs first (concurrently) and the per-call state is updated in utterance order.

Thread-safety: one analyzer per call, used from the event loop only, one ``analyze`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from itertools import groupby
from typing import Any

from speechsvc.analysis.base import CallInfo, Mode, Said, Stage, StageCall
from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.errors import SpeechsvcError
from speechsvc.metrics import Metrics
from speechsvc.types import ErrorEvent, Event, Leg

log = logging.getLogger(__name__)


class CallAnalyzer:
    """Every stage over one call. A recorded call (``Mode.BATCH``) also keeps the utterances and each stage's
    events, for :meth:`sections` (the report)."""

    def __init__(self, stages: Sequence[Stage], call: CallInfo, metrics: Metrics | None = None) -> None:
        self.call = call
        self._metrics = metrics
        ordered = sorted(stages, key=lambda s: (s.phase, s.name))
        self._phases: list[list[tuple[Stage, StageCall[Any]]]] = [
            [(s, s.open(call)) for s in group] for _, group in groupby(ordered, key=lambda s: s.phase)
        ]
        self._keep = call.mode is Mode.BATCH
        self.utterances: list[Utterance] = []
        self._emitted: dict[str, list[Event]] = {s.name: [] for s in ordered}

    def rewrite(self, said: Said) -> Said:
        """A partial, final or keypad digit as every stage's ``rewrite`` leaves it (in phase order), before it is
        sent."""
        for phase in self._phases:
            for _, call in phase:
                said = call.rewrite(said)
        return said

    async def analyze(self, utterances: Sequence[Utterance]) -> list[Event]:
        """Run every stage over ``utterances`` (in the call's order); the events, utterance by utterance."""
        per_utterance: list[list[Event]] = [[] for _ in utterances]
        for phase in self._phases:
            found = await asyncio.gather(*(self._infer(s.name, call, u) for u in utterances for s, call in phase))
            for i, u in enumerate(utterances):
                for j, (stage, call) in enumerate(phase):
                    value, error = found[i * len(phase) + j]
                    if error is not None:
                        per_utterance[i].append(error)
                    per_utterance[i].extend(self._keep_events(stage, call.apply(u, value)))
        if self._keep:
            self.utterances.extend(utterances)
        return [event for events in per_utterance for event in events]

    def advance(self, watermarks: Mapping[Leg, int]) -> list[Event]:
        """Every stage's events for the passing of time (see :meth:`StageCall.advance`), in phase order."""
        return [event for phase in self._phases for stage, call in phase
                for event in self._keep_events(stage, call.advance(watermarks))]

    def end(self, ended: CallEnd) -> list[Event]:
        """Every stage's end-of-call events, in phase order."""
        return [event for phase in self._phases for stage, call in phase
                for event in self._keep_events(stage, call.end(ended))]

    def sections(self) -> dict[str, Any]:
        """A recorded call's report sections (after :meth:`end`): each stage's :meth:`Stage.report` of the
        utterances and the events it emitted, under its name; stages with nothing to say are left out."""
        sections = {stage.name: stage.report(self.utterances, self._emitted[stage.name])
                    for phase in self._phases for stage, _ in phase}
        return {name: section for name, section in sections.items() if section is not None}

    def _keep_events(self, stage: Stage, events: list[Event]) -> list[Event]:
        if self._keep:
            self._emitted[stage.name].extend(events)
        return events

    async def _infer(self, name: str, call: StageCall[Any], u: Utterance) -> tuple[Any, Event | None]:
        try:
            return await call.infer(u), None
        except SpeechsvcError as e:
            if self._metrics is not None:
                self._metrics.errors.labels(e.code).inc()
            log.warning("%s stage skipped utterance %d of %s: %s", name, u.index, u.leg, e.code)
            return None, ErrorEvent(e.code, f"{name}: {e}", False)
