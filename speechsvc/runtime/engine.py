"""The engine: every model loaded once, its inference worker, call admission and readiness.

One engine serves all transports (WebSocket, gRPC, platform adapters) and batch jobs. It is built at
start-up (:meth:`Engine.load`, blocking, in a thread), started on the event loop (:meth:`start`: workers,
warm-up, then ``ready``), and stopped once (:meth:`stop`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from speechsvc.asr import SAMPLE_RATE, AsrRequest, AsrResult, WhisperRecognizer
from speechsvc.config import Settings, StreamOptions
from speechsvc.emotion import EmotionHead, segment_features
from speechsvc.errors import Overloaded, ShuttingDown
from speechsvc.escalation import EscalationRules
from speechsvc.events import EventBus
from speechsvc.metrics import Metrics
from speechsvc.models import heads_dir, resolve_whisper_dir, silero_vad_path
from speechsvc.nlp.classifier import TextAnalysis, TextModel
from speechsvc.scheduler import InferenceWorker
from speechsvc.types import Float32Array
from speechsvc.vad import SileroModel, VadOptions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    device: str
    compute_type: str


class OpenCall(Protocol):
    async def close(self, reason: str = "stop") -> None: ...


class Engine:
    def __init__(
        self,
        settings: Settings,
        recognizer: WhisperRecognizer,
        vad_model: SileroModel,
        text_model: TextModel | None = None,
        emotion_head: EmotionHead | None = None,
    ) -> None:
        self.settings = settings
        self.recognizer = recognizer
        self.vad_model = vad_model
        self.text_model = text_model
        self.emotion_head = emotion_head
        self.rules = EscalationRules.load(settings.escalation_rules)
        self.vad_options: VadOptions = settings.vad()
        self.stream_options: StreamOptions = settings.stream()
        self.metrics = Metrics()
        self.metrics.max_calls.set(settings.max_calls)
        self.asr: InferenceWorker[AsrRequest, AsrResult] = InferenceWorker(
            "asr", self._run_asr, settings.asr_worker(), on_batch=self.metrics.on_batch
        )
        self.metrics.track_depth("asr", lambda: self.asr.depth)
        self.text: InferenceWorker[str, TextAnalysis] | None = None
        if text_model is not None:
            self.text = InferenceWorker("text", text_model.predict, settings.text_worker(), self.metrics.on_batch)
            self.metrics.track_depth("text", lambda: self.text.depth if self.text else 0)
        self.emotion: InferenceWorker[tuple[Float32Array, Float32Array], Float32Array] | None = None
        if emotion_head is not None:
            self.emotion = InferenceWorker("emotion", self._run_emotion, settings.text_worker(), self.metrics.on_batch)
            self.metrics.track_depth("emotion", lambda: self.emotion.depth if self.emotion else 0)
        self.ready = False
        self.closing = False
        # Every call's events, for the subscription endpoints and the webhook.
        self.bus = EventBus()
        self._calls: set[str] = set()
        # Live calls by id, so shutdown can finish their open utterances.
        self.sessions: dict[str, OpenCall] = {}

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        """Load every model from local paths (blocking; run it in a thread from async code).

        Raises:
            ModelUnavailable: a model directory is missing or corrupt, with what to install.
        """
        started = time.perf_counter()
        model_dir = resolve_whisper_dir(settings.asr_model_dir)
        recognizer = WhisperRecognizer(settings.asr(), model_dir)
        vad_model = SileroModel(silero_vad_path())
        text_model = TextModel(heads_dir() / "text") if settings.text_analysis else None
        emotion_head = EmotionHead(heads_dir() / "emotion") if settings.emotion else None
        log.info("models loaded in %.1f s", time.perf_counter() - started)
        return cls(settings, recognizer, vad_model, text_model, emotion_head)

    @property
    def models(self) -> list[ModelInfo]:
        r = self.recognizer
        return [
            ModelInfo("asr", str(r.model_dir), r.device, r.compute_type),
            ModelInfo("vad", str(silero_vad_path()), "cpu", "float32"),
        ] + ([ModelInfo("text", str(self.text_model.directory), "cpu", "float32")] if self.text_model else []) + (
            [ModelInfo("emotion", str(self.emotion_head.directory), "cpu", "float32")] if self.emotion_head else []
        )

    async def start(self) -> None:
        """Start the workers and warm every model up; ``ready`` turns true after that."""
        self.asr.start()
        await asyncio.get_running_loop().run_in_executor(None, self.recognizer.warm_up)
        if self.text is not None and self.text_model is not None:
            self.text.start()
            await self.text.submit("你好")  # loads the sentence encoder
        if self.emotion is not None:
            self.emotion.start()
        self.ready = True
        log.info("engine ready")

    async def drain(self, grace_s: float) -> None:
        """Graceful shutdown, stage 1: refuse new calls, finish open utterances of live calls."""
        self.ready = False
        self.closing = True
        calls = list(self.sessions.values())
        if calls:
            log.info("draining %d calls (grace %.1f s)", len(calls), grace_s)
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(c.close("shutdown")) for c in calls], timeout=grace_s or None
            )
            if pending:
                log.warning("%d calls did not finish within the grace period", len(pending))
                for task in pending:
                    task.cancel()

    async def stop(self) -> None:
        """Stage 2: stop the inference workers (after the transports have closed)."""
        self.ready = False
        self.closing = True
        await self.asr.stop()
        if self.text is not None:
            await self.text.stop()
        if self.emotion is not None:
            await self.emotion.stop()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def admit(self, call_id: str, transport: str) -> None:
        """Reserve a call slot.

        Raises:
            Overloaded: at capacity, or the call id is already streaming.
            ShuttingDown: the service is draining.
        """
        if self.closing:
            raise ShuttingDown("server is shutting down")
        if len(self._calls) >= self.settings.max_calls:
            self.metrics.rejections.labels("capacity").inc()
            raise Overloaded(f"at capacity ({self.settings.max_calls} calls); retry later or use another instance")
        if call_id in self._calls:
            self.metrics.rejections.labels("duplicate_call_id").inc()
            raise Overloaded(f"call {call_id!r} is already streaming")
        self._calls.add(call_id)
        self.metrics.active_calls.labels(transport).inc()
        self.metrics.calls_total.labels(transport).inc()

    def release(self, call_id: str, transport: str) -> None:
        if call_id in self._calls:
            self._calls.discard(call_id)
            self.metrics.active_calls.labels(transport).dec()

    def _run_emotion(self, batch: list[tuple[Float32Array, Float32Array]]) -> list[Float32Array]:
        assert self.emotion_head is not None
        return [segment_features(audio, stats, self.emotion_head.use_egemaps) for audio, stats in batch]

    def _run_asr(self, batch: list[AsrRequest]) -> Sequence[AsrResult]:
        started = time.perf_counter()
        results = self.recognizer.transcribe(batch)
        audio_s = sum(r.audio.size for r in batch) / SAMPLE_RATE
        if audio_s > 0:
            self.metrics.real_time_factor.observe((time.perf_counter() - started) / audio_s)
        return results
