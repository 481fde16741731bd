"""The analysis seam: what every analysis stage is, and the record of one analysed utterance.

A **stage** (intent, emotion, escalation, ...) is loaded once per process (:meth:`Stage.load`, blocking: its
models and rules), started on the event loop (:meth:`Stage.start`: its inference workers, warm-up), and opens
one :class:`StageCall` per call (its per-call state). For every final utterance of a call, in order, the
:class:`~speechsvc.analysis.analyzer.CallAnalyzer` asks each stage's call for

* :meth:`StageCall.infer` — model work that needs no per-call state (it may run concurrently for many
  utterances of a recording, and for the stages of one phase), then
* :meth:`StageCall.apply` — in utterance order: update the per-call state, write what the stage found into the
  :class:`UtteranceAnalysis` for later stages, and return the stage's events;

and at the end of the call :meth:`StageCall.end`. A stage that must change what anyone sees of a transcript
(PII redaction) implements :meth:`StageCall.rewrite`, which every partial and final passes through before it is
sent anywhere. Stages run in ``phase`` order (a stage sees what stages of
earlier phases wrote), so the live session and the recorded-call path get the same results.

Adding a stage = one module in this package that defines a :class:`Stage` subclass with a ``name`` (it is
found by :func:`speechsvc.analysis.stage_classes`) and the event class it emits (an
:class:`~speechsvc.types.Event` subclass with a ``TYPE``); nothing else changes.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from speechsvc.config import Settings, WorkerOptions
from speechsvc.metrics import Metrics
from speechsvc.types import Event, Float32Array, Leg, ModelInfo, RedactionRequest, Transcript
from speechsvc.workers import InferenceWorker, Priority

R = TypeVar("R")
In = TypeVar("In")
Out = TypeVar("Out")


class Mode(enum.Enum):
    # A call in progress: work runs at live priority, and best-effort stages skip work under load.
    LIVE = "live"
    # A recording: work runs at batch priority, waits for room in the queues, and nothing is skipped.
    BATCH = "batch"


@dataclass(frozen=True)
class CallInfo:
    """What a stage knows of the call it opens."""

    call_id: str
    legs: tuple[Leg, ...]
    mode: Mode
    metadata: Mapping[str, str] = field(default_factory=dict)
    redaction: RedactionRequest = field(default_factory=RedactionRequest)


@dataclass(frozen=True)
class CallEnd:
    """How a call ended, for stages that decide at the end."""

    # "stop", "error", "shutdown" for live calls; "recording" for the end of a recorded call.
    reason: str
    # Audio received per leg, in ms.
    audio_ms: Mapping[str, int] = field(default_factory=dict)
    # Legs that were still speaking when the call ended (cut off mid-utterance).
    cut_off: tuple[Leg, ...] = ()
    # Who hung up, when the platform said: "customer", "agent" or "platform".
    ended_by: str | None = None

    @property
    def duration_ms(self) -> int:
        return max(self.audio_ms.values(), default=0)


@dataclass
class UtteranceAnalysis:
    """One final utterance and what the stages found, filled in phase by phase. Built only by
    :class:`~speechsvc.analysis.analyzer.CallAnalyzer`."""

    leg: Leg
    utterance: int
    start_ms: int
    end_ms: int
    # The transcript as later stages see it.
    text: str
    language: str
    confidence: float
    # 16 kHz audio of the utterance and the Whisper encoder statistics, for the voice stages (None in
    # text-only analysis).
    audio: Float32Array | None = field(default=None, repr=False)
    encoder_stats: Float32Array | None = field(default=None, repr=False)
    # Text stage (None when it did not run).
    intent: str | None = None
    intent_probability: float = 0.0
    negativity: float | None = None
    # L2-normalised sentence embedding of the text (from the text stage), for stages that compare sentences.
    embedding: Float32Array | None = field(default=None, repr=False)
    # Voice emotion stage (None when it did not run).
    emotion: str | None = None
    p_angry: float | None = None
    arousal: float | None = None
    # P(angry) smoothed over the leg so far.
    p_angry_smoothed: float | None = None
    # Escalation cues found in the text: cue name -> the matched words.
    cues: dict[str, str] = field(default_factory=dict)
    # What stages added later found, by stage name.
    found: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> tuple[Leg, int, int, int]:
        """(leg, utterance, start_ms, end_ms): the leading fields of every per-utterance event."""
        return self.leg, self.utterance, self.start_ms, self.end_ms


class StageCall(Generic[R]):
    """A stage's state for one call. The default does nothing; override what the stage needs."""

    def rewrite(self, transcript: Transcript) -> Transcript:
        """Change a transcript before anyone sees it (the client, subscribers, later stages, outputs): every
        partial, and every final in order per leg. Synchronous and cheap: it runs on the event loop."""
        return transcript

    async def infer(self, u: UtteranceAnalysis) -> R | None:
        """Model work for one utterance, independent of the call's history (may run concurrently).

        Raises:
            SpeechsvcError: the work could not be done (overload, shutdown); the analyzer reports it and the
                stage's ``apply`` gets None.
        """
        return None

    def apply(self, u: UtteranceAnalysis, found: R | None) -> list[Event]:
        """Called in utterance order with what ``infer`` returned: update state, annotate ``u``, emit events."""
        return []

    def advance(self, watermarks: Mapping[Leg, int]) -> list[Event]:
        """Time has moved on (live calls): no final still to come of leg L starts before ``watermarks[L]`` ms,
        so decisions waiting for a deadline or for the other leg can be made now."""
        return []

    def end(self, ended: CallEnd) -> list[Event]:
        """The call has ended; events of decisions that could only be made now."""
        return []


class Stage(abc.ABC):
    """One kind of analysis, loaded once per process, with per-call state in its :class:`StageCall`."""

    # Unique name; a subclass without one is not registered (a base for other stages).
    name: ClassVar[str] = ""
    # Stages of one phase run side by side; phases run in ascending order.
    phase: ClassVar[int] = 0
    registry: ClassVar[list[type[Stage]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Stage.registry.append(cls)

    @classmethod
    @abc.abstractmethod
    def load(cls, settings: Settings) -> Stage | None:
        """Load models and rules (blocking); None when the settings turn the stage off.

        Raises:
            ModelUnavailable: a model the stage needs is missing.
            ValueError: a rules file is invalid (naming the key).
        """

    async def start(self, metrics: Metrics) -> None:  # noqa: B027 - optional hook; stages without workers skip it
        """Start inference workers and warm up, on the event loop that will use the stage."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop inference workers (queued work finishes first)."""

    def models(self) -> list[ModelInfo]:
        return []

    @abc.abstractmethod
    def open(self, call: CallInfo) -> StageCall[Any]:
        """Per-call state for a new call."""


class ModelStage(Stage, Generic[In, Out]):
    """A stage with a model of its own, run by one inference worker (named ``worker_name``) shared by every
    call: the worker is created and warmed up in :meth:`start`, and calls submit work with :meth:`infer_on`."""

    worker_name: ClassVar[str] = ""

    def __init__(self, options: WorkerOptions) -> None:
        self.options = options
        self.worker: InferenceWorker[In, Out] | None = None
        self.metrics: Metrics | None = None

    @abc.abstractmethod
    def run(self, batch: list[In]) -> list[Out]:
        """The model on a batch (on the worker's thread)."""

    async def warm_up(self) -> None:
        """First work after the worker started, so the first call does not pay for lazy loading."""

    async def start(self, metrics: Metrics) -> None:
        worker: InferenceWorker[In, Out] = InferenceWorker(self.worker_name, self.run, self.options, metrics.on_batch)
        metrics.track_depth(self.worker_name, lambda: worker.depth)
        worker.start()
        self.worker, self.metrics = worker, metrics
        await self.warm_up()

    async def stop(self) -> None:
        if self.worker is not None:
            await self.worker.stop()

    async def infer_on(self, item: In, mode: Mode) -> Out:
        """Submit work as the mode requires: live work at final priority (refused when the queue is full),
        recorded-call work at batch priority, waiting for room."""
        if self.worker is None:
            raise RuntimeError(f"{type(self).__name__}.start() was not awaited")
        if mode is Mode.LIVE:
            return await self.worker.submit(item, Priority.FINAL)
        return await self.worker.submit_wait(item, Priority.BATCH)
