"""One :class:`CallAnalyzer` per call: every analysis stage, in phase order, over the call's final utterances.

The live session and the recorded-call path both use it (and only it builds
:class:`~speechsvc.analysis.base.UtteranceAnalysis`). :meth:`CallAnalyzer.analyze` takes one utterance (live:
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

from speechsvc.analysis.base import CallEnd, CallInfo, Stage, StageCall, UtteranceAnalysis
from speechsvc.errors import SpeechsvcError
from speechsvc.metrics import Metrics
from speechsvc.types import ErrorEvent, Event, Float32Array, Leg, Transcript

log = logging.getLogger(__name__)


class CallAnalyzer:
    def __init__(self, stages: Sequence[Stage], call: CallInfo, metrics: Metrics | None = None) -> None:
        self.call = call
        self._metrics = metrics
        ordered = sorted(stages, key=lambda s: (s.phase, s.name))
        self._phases: list[list[tuple[str, StageCall[Any]]]] = [
            [(s.name, s.open(call)) for s in group] for _, group in groupby(ordered, key=lambda s: s.phase)
        ]

    @staticmethod
    def utterance(
        final: Transcript, audio: Float32Array | None = None, encoder_stats: Float32Array | None = None
    ) -> UtteranceAnalysis:
        """The record the stages fill in for one final transcript."""
        return UtteranceAnalysis(
            leg=final.leg, utterance=final.utterance, start_ms=final.start_ms, end_ms=final.end_ms,
            text=final.text, language=final.language, confidence=final.confidence, audio=audio,
            encoder_stats=encoder_stats,
        )

    def rewrite(self, transcript: Transcript) -> Transcript:
        """A partial or final as every stage's ``rewrite`` leaves it (in phase order), before it is sent."""
        for phase in self._phases:
            for _, call in phase:
                transcript = call.rewrite(transcript)
        return transcript

    async def analyze(self, utterances: Sequence[UtteranceAnalysis]) -> list[Event]:
        """Run every stage over ``utterances`` (in the call's order); the events, utterance by utterance."""
        per_utterance: list[list[Event]] = [[] for _ in utterances]
        for phase in self._phases:
            found = await asyncio.gather(*(self._infer(name, call, u) for u in utterances for name, call in phase))
            for i, u in enumerate(utterances):
                for j, (_, call) in enumerate(phase):
                    value, error = found[i * len(phase) + j]
                    if error is not None:
                        per_utterance[i].append(error)
                    per_utterance[i].extend(call.apply(u, value))
        return [event for events in per_utterance for event in events]

    def advance(self, watermarks: Mapping[Leg, int]) -> list[Event]:
        """Every stage's events for the passing of time (see :meth:`StageCall.advance`), in phase order."""
        return [event for phase in self._phases for _, call in phase for event in call.advance(watermarks)]

    def end(self, ended: CallEnd) -> list[Event]:
        """Every stage's end-of-call events, in phase order."""
        return [event for phase in self._phases for _, call in phase for event in call.end(ended)]

    async def _infer(self, name: str, call: StageCall[Any], u: UtteranceAnalysis) -> tuple[Any, Event | None]:
        try:
            return await call.infer(u), None
        except SpeechsvcError as e:
            if self._metrics is not None:
                self._metrics.errors.labels(e.code).inc()
            log.warning("%s stage skipped utterance %d of %s: %s", name, u.utterance, u.leg, e.code)
            return None, ErrorEvent(e.code, f"{name}: {e}", False)
