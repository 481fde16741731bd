"""The analysis seam: what every analysis stage is. The record it fills in is :mod:`speechsvc.analysis.record`.

A **stage** (intent, emotion, escalation, ...) is loaded once per process (:meth:`Stage.load`, blocking: its
models and rules), started on the event loop (:meth:`Stage.start`: its inference workers, warm-up), and opens
one :class:`StageCall` per call (its per-call state). For every final utterance of a call, in order, the
:class:`~speechsvc.analysis.analyzer.CallAnalyzer` asks each stage's call for

* :meth:`StageCall.infer` — model work that needs no per-call state (it may run concurrently for many
  utterances of a recording, and for the stages of one phase), then
* :meth:`StageCall.apply` — in utterance order: update the per-call state, write what the stage found into the
  :class:`~speechsvc.analysis.record.Utterance` for later stages, and return the stage's events;

and at the end of the call :meth:`StageCall.end`. A stage that must change what anyone sees of what a caller said
(PII redaction) implements :meth:`StageCall.rewrite`, which every partial, final and keypad digit passes through
before it is sent anywhere. Stages run in ``phase`` order (a stage sees what stages of earlier phases wrote), so
the live session and the recorded-call path get the same results.

The rest of the service knows no stage by name; what it needs of one it asks through these optional hooks:

* :meth:`Stage.check` — admission: may this call's config ask what it asks (every call, every transport);
* :meth:`Stage.reload` — reload models or rules from their files (the service calls it on SIGHUP);
* :attr:`Stage.needs_encoder_stats` — the recorded-call path computes the Whisper encoder statistics of each
  utterance only when a loaded stage reads them;
* :meth:`Stage.report`, :meth:`Stage.columns`, :meth:`Stage.aggregate` — the stage's section of a recording's
  report (under its name), its columns of a job's summary row, its job-level summary (``<name>_summary.json``);
  by default every event the stage emitted lands in its section;
* :meth:`Stage.card` — what the live call list shows of the stage's events, and the call's risk score by it
  (the weights come from the stage's own rules files).

Adding a stage = one module in this package that defines a :class:`Stage` subclass with a ``name`` (it is
found by :func:`speechsvc.analysis.stage_classes`) and the event class it emits (an
:class:`~speechsvc.types.Event` subclass with a ``TYPE``); nothing else changes.
"""

from __future__ import annotations

import abc
import enum
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from speechsvc.analysis.record import CallEnd, Utterance
from speechsvc.config import Settings, WorkerOptions
from speechsvc.metrics import Metrics
from speechsvc.types import CallConfig, Dtmf, Event, Leg, ModelInfo, RedactionRequest, Transcript
from speechsvc.workers import InferenceWorker, Priority

R = TypeVar("R")
In = TypeVar("In")
Out = TypeVar("Out")
# What a caller said, as the stages' rewrite sees it: a transcript (partial or final) or a keypad digit.
Said = TypeVar("Said", Transcript, Dtmf)

# Report keys that are not stage sections; no stage may take one of these names.
REPORT_KEYS = frozenset({"path", "duration_s", "legs", "segments", "summary", "agent_id", "ended_by"})


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


class StageCall(Generic[R]):
    """A stage's state for one call. The default does nothing; override what the stage needs."""

    def rewrite(self, said: Said) -> Said:
        """Change what a caller said before anyone sees it (the client, subscribers, later stages, outputs):
        every partial, every final in order per leg, and every keypad digit (:class:`~speechsvc.types.Dtmf`).
        Synchronous and cheap: it runs on the event loop."""
        return said

    async def infer(self, u: Utterance) -> R | None:
        """Model work for one utterance, independent of the call's history (may run concurrently).

        Raises:
            SpeechsvcError: the work could not be done (overload, shutdown); the analyzer reports it and the
                stage's ``apply`` gets None.
        """
        return None

    def apply(self, u: Utterance, found: R | None) -> list[Event]:
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
    # True when the stage's ``infer`` reads ``Utterance.encoder_stats`` (voice stages): the recorded-call path
    # computes the encoder statistics of each utterance only when a loaded stage needs them.
    needs_encoder_stats: ClassVar[bool] = False
    registry: ClassVar[list[type[Stage]]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name in REPORT_KEYS:
                raise TypeError(f"stage name {cls.name!r} is a report key; pick another")
            Stage.registry.append(cls)

    @classmethod
    def check(cls, config: CallConfig, settings: Settings) -> None:
        """Admission, for every call whatever transport built it, whether or not the settings turn the stage on
        (a call may ask a stage that is off for something): nothing by default.

        Raises:
            ValueError: what the call asks of this stage that it may not have, in words for the caller.
        """
        return None

    async def reload(self, running: Sequence[Stage]) -> bool | None:
        """Reload models or rules from their files without dropping calls (the service does this on SIGHUP);
        ``running``: every running stage, for cross-checks. None when there is nothing to reload; True when the
        new ones are in use, False when refused (the old ones stay; the stage logs why)."""
        return None

    def card(self, card: dict[str, Any], event: Event) -> float | None:
        """Fold one event of a live call (any stage's) into the call's card: what the console's list of calls
        shows of it, under keys of the stage's own choosing. Returns this stage's risk score for the call when the
        event changed it (calls are sorted by the sum over their stages), None otherwise. Default: nothing (the
        event is still in the call's history, which the console shows)."""
        return None

    def report(self, utterances: Sequence[Utterance], events: Sequence[Event]) -> Any:
        """This stage's section of a recording's report, saved under its name (JSON-able; None: no section).
        ``utterances`` as the stages left them, ``events``: what this stage emitted for the recording.
        Default: those events (their fields and ``type``), or None when there were none."""
        return [event_fields(e) for e in events] or None

    @classmethod
    def columns(cls, section: Any) -> dict[str, Any]:
        """This stage's columns in a job's summary row (``summary.csv``/``.jsonl``), from its report section.
        Default: the number of events in it."""
        return {f"{cls.name}_events": len(section)} if isinstance(section, list) else {}

    @classmethod
    def aggregate(cls, reports: Sequence[Mapping[str, Any]]) -> Any:
        """This stage's summary of a job (``<name>_summary.json``; None: none) over the reports that have its
        section. Default: how many recordings had events of the stage, and the events by type."""
        sections = [r[cls.name] for r in reports if isinstance(r.get(cls.name), list)]
        if not sections:
            return None
        types = Counter(str(e.get("type", "")) for section in sections for e in section)
        return {"recordings": len(sections), "events": dict(types.most_common())}

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


def event_fields(event: Event) -> dict[str, Any]:
    """An event as a report saves it: ``type`` and its fields (not the wall-clock ``emitted_at``)."""
    return {"type": event.type, **{k: v for k, v in asdict(event).items() if k != "emitted_at"}}


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
