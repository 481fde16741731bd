"""The engine: every model loaded once, the ASR inference worker, the analysis stages, call admission,
readiness and drain.

One engine serves all transports (WebSocket, gRPC, platform adapters) and batch jobs. It is built at start-up
(:meth:`Engine.load`, blocking, in a thread), started on the event loop (:meth:`start`: workers, warm-up, then
``ready``), and stopped once (:meth:`stop`). :meth:`admit` is the one place a call's config is checked,
whichever transport built it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Sequence
from typing import Protocol

from speechsvc.analysis import load_stages, stage_classes
from speechsvc.analysis.base import Stage
from speechsvc.config import Settings, StreamOptions, VadOptions
from speechsvc.errors import Overloaded, ProtocolError, RateLimited, ShuttingDown, UnsupportedFormat
from speechsvc.metrics import Metrics
from speechsvc.models import silero_vad_path, whisper_dir
from speechsvc.models.speaker import speaker_encoder_path
from speechsvc.runtime.broker import RedisBroker
from speechsvc.runtime.bus import EventBus
from speechsvc.runtime.call_index import CallIndex
from speechsvc.runtime.vad_worker import VadWorker
from speechsvc.security import Guard, principal_var
from speechsvc.security.metadata import MetadataPolicy
from speechsvc.speech.asr import AsrRequest, AsrResult, WhisperRecognizer
from speechsvc.speech.audio import check_format
from speechsvc.speech.speaker import SpeakerEncoder
from speechsvc.speech.vad import SileroModel
from speechsvc.types import PIPELINE_RATE, CallConfig, ModelInfo
from speechsvc.workers import InferenceWorker

log = logging.getLogger(__name__)

LEG_NAMES = ("customer", "agent", "mixed")
# Every transport's call ids (the WebSocket start message's pattern): no newlines or other characters that could
# forge log lines, bounded length.
CALL_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
CallKey = tuple[str, str]  # (tenant, call id): call ids are unique per tenant
# The share of the shutdown grace period a call's close may take (the rest: sending its last events).
CLOSE_SHARE = 0.7


class Recognizer(Protocol):
    """What the engine needs of an ASR model (WhisperRecognizer; a fake in unit tests)."""

    def transcribe(self, requests: list[AsrRequest]) -> list[AsrResult]: ...

    def warm_up(self) -> None: ...

    def info(self) -> ModelInfo: ...


class OpenCall(Protocol):
    async def close(self, reason: str = "stop", timeout_s: float | None = None) -> None: ...


class Engine:
    def __init__(
        self,
        settings: Settings,
        recognizer: Recognizer,
        vad_model: SileroModel,
        stages: Sequence[Stage] = (),
        speaker_encoder: SpeakerEncoder | None = None,
    ) -> None:
        self.settings = settings
        # Speaker embeddings for mono recordings (None: diarization off); read-only, used from threads.
        self.speaker_encoder = speaker_encoder
        self.recognizer = recognizer
        self.vad_model = vad_model
        self.stages = list(stages)
        # Every stage the package defines, on or off: each checks what a call asks of it at admission.
        self._checks = stage_classes()
        self.vad_options: VadOptions = settings.vad()
        self.stream_options: StreamOptions = settings.stream()
        self.metrics = Metrics()
        self.metrics.max_calls.set(settings.max_calls)
        self.asr: InferenceWorker[AsrRequest, AsrResult] = InferenceWorker(
            "asr", self._run_asr, settings.asr_worker(), on_batch=self.metrics.on_batch
        )
        self.metrics.track_depth("asr", lambda: self.asr.depth)
        # Every live leg's VAD on one thread (started at the first audio), off the event loop.
        self.vad = VadWorker()
        self.metrics.track_depth("vad", lambda: self.vad.depth)
        self.ready = False
        self.closing = False
        # Every call's events, for the subscription endpoints and the webhook; the index keeps recent calls'
        # state and events for views that open mid-call.
        self.bus = EventBus(settings.subscriber_queue)
        self.calls = CallIndex(self.stages)
        self.bus.listeners.append(self.calls)
        # Several replicas: events shared through Redis (SPEECHSVC_EVENT_BROKER); None = this process only.
        broker_options = settings.broker()
        self.broker = RedisBroker(broker_options, self.bus, self.metrics) if broker_options is not None else None
        if self.broker is not None:  # the index shows every replica's calls, each with the replica that holds it
            self.calls.replica = self.broker.options.replica
            self.broker.listeners.append(self.calls.remote)
        # Authentication, per-tenant limits, audit log: shared by every transport and the job API.
        self.guard = Guard(settings, self.metrics)
        # What of a call's metadata may travel (allowed keys, personal values masked): applied at admission.
        self.metadata_policy = MetadataPolicy.of(settings.metadata_keys, settings.mask_metadata)
        self._calls: dict[CallKey, str] = {}  # (tenant, call id) -> transport, for every admitted call
        # Live calls by (tenant, call id), so shutdown can finish their open utterances.
        self.sessions: dict[CallKey, OpenCall] = {}

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        """Load every model from local paths (blocking; run it in a thread from async code).

        Raises:
            ModelUnavailable: a model directory is missing or corrupt, with what to install.
            ValueError: an analysis rules file is invalid.
        """
        started = time.perf_counter()
        recognizer = WhisperRecognizer(settings.asr(), whisper_dir(settings))
        vad_model = SileroModel(silero_vad_path())
        stages = load_stages(settings)
        speaker = SpeakerEncoder.load(speaker_encoder_path(settings.speaker_dir)) if settings.diarize else None
        log.info("models loaded in %.1f s", time.perf_counter() - started)
        return cls(settings, recognizer, vad_model, stages, speaker)

    @property
    def models(self) -> list[ModelInfo]:
        infos = [self.recognizer.info(), ModelInfo("vad", str(silero_vad_path()), "cpu", "float32")]
        if self.speaker_encoder is not None:
            infos.append(ModelInfo("speaker", str(self.settings.speaker_dir), "cpu", "float32"))
        return infos + [info for stage in self.stages for info in stage.models()]

    async def start(self) -> None:
        """Start the workers and warm every model up; ``ready`` turns true after that."""
        self.asr.start()
        if self.broker is not None:
            await self.broker.start()
        await asyncio.get_running_loop().run_in_executor(None, self.recognizer.warm_up)
        for stage in self.stages:
            await stage.start(self.metrics)
        self.ready = True
        log.info("engine ready")

    async def drain(self, grace_s: float) -> None:
        """Graceful shutdown, stage 1: refuse new calls, finish open utterances of live calls."""
        self.ready = False
        self.closing = True
        calls = list(self.sessions.values())
        if calls:
            log.info("draining %d calls (grace %.1f s)", len(calls), grace_s)
            deadline = time.monotonic() + grace_s if grace_s else None
            # Each call's close has its own deadline inside the grace period (what it cannot finish by then is
            # cancelled and logged, and its ``ended`` still goes out); the rest of the period is for the transports
            # to hand the last events to their peers.
            close_s = CLOSE_SHARE * grace_s if grace_s else None
            _, pending = await asyncio.wait(
                [asyncio.ensure_future(c.close("shutdown", close_s)) for c in calls], timeout=grace_s or None
            )
            if pending:
                log.warning("%d calls did not finish within the grace period", len(pending))
                for task in pending:
                    task.cancel()
            # The sessions have queued their finals and ``ended``; the transports release a call once they have
            # handed those to the peer. Closing the connections before that would cut the last events off.
            while self._calls and (deadline is None or time.monotonic() < deadline):
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Stage 2: stop the inference workers (after the transports have closed)."""
        self.ready = False
        self.closing = True
        await self.asr.stop()
        await asyncio.get_running_loop().run_in_executor(None, self.vad.stop)
        for stage in self.stages:
            await stage.stop()
        if self.broker is not None:
            await self.broker.stop()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def check(self, config: CallConfig) -> CallConfig:
        """The one validation of a call's config (language, legs, audio format), whichever transport built it.

        Raises:
            UnsupportedFormat: an audio format, leg layout or language the service does not take.
            ProtocolError: an empty call id.
        """
        if not config.call_id:
            raise ProtocolError("call id is empty")
        if not CALL_ID.match(config.call_id):
            raise ProtocolError(f"call id {config.call_id[:40]!r} must be 1-128 characters of A-Z a-z 0-9 . _ : @ -")
        check_format(config.audio)
        legs = config.legs
        if config.per_leg_audio and config.audio.channels != 1:
            raise UnsupportedFormat("audio that arrives per leg must be mono")
        if not config.per_leg_audio and len(legs) != config.audio.channels:
            raise UnsupportedFormat(f"{len(legs)} legs given for {config.audio.channels} channel(s); "
                                    "give one leg per channel")
        if len(set(legs)) != len(legs) or not set(legs) <= set(LEG_NAMES):
            raise UnsupportedFormat(f"legs must be distinct names from {LEG_NAMES}, got {list(legs)}")
        languages = self.settings.languages
        if config.language != "auto" and config.language not in languages:
            raise UnsupportedFormat(f"language {config.language!r} is not supported; use one of "
                                    f"{[*languages, 'auto']}")
        for stage in self._checks:
            try:
                stage.check(config, self.settings)
            except ValueError as e:
                raise ProtocolError(str(e)) from None
        return config

    def admit(self, config: CallConfig, transport: str) -> CallConfig:
        """Check the config and reserve a call slot for the caller's tenant; returns the config as admitted (its
        ``tenant`` is the authenticated principal's, whatever the transport put there).

        Raises:
            UnsupportedFormat, ProtocolError: the config is not acceptable (see :meth:`check`).
            Overloaded: at capacity, or the call id is already streaming in this tenant.
            RateLimited: the tenant is at its own call limit.
            ShuttingDown: the service is draining.
        """
        self.check(config)
        principal = principal_var.get()
        config = dataclasses.replace(config, tenant=principal.tenant,
                                     metadata=self.metadata_policy.apply(config.metadata))
        if self.closing:
            raise ShuttingDown("server is shutting down")
        key = self.call_key(config)
        if key in self._calls:
            self.metrics.rejections.labels("duplicate_call_id").inc()
            raise Overloaded(f"call {config.call_id!r} is already streaming")
        if len(self._calls) >= self.settings.max_calls:
            self.metrics.rejections.labels("capacity").inc()
            raise Overloaded(f"at capacity ({self.settings.max_calls} calls); retry later or use another instance")
        limit = self.guard.policy.bounds(config.tenant).max_calls
        if limit and sum(1 for tenant, _ in self._calls if tenant == config.tenant) >= limit:
            self.metrics.rejections.labels("tenant_calls").inc()
            self.metrics.tenant_rejections.labels(config.tenant, "calls").inc()
            raise RateLimited(f"tenant {config.tenant} is at its limit of {limit} concurrent calls")
        self._calls[key] = transport
        self.metrics.active_calls.labels(transport).inc()
        self.metrics.calls_total.labels(transport).inc()
        self.guard.audit.record("call.start", principal=principal, surface=transport, target=config.call_id)
        return config

    @staticmethod
    def call_key(config: CallConfig) -> CallKey:
        return (config.tenant, config.call_id)

    def release(self, key: CallKey) -> None:
        transport = self._calls.pop(key, None)
        if transport is not None:
            self.metrics.active_calls.labels(transport).dec()

    def _run_asr(self, batch: list[AsrRequest]) -> list[AsrResult]:
        started = time.perf_counter()
        results = self.recognizer.transcribe(batch)
        for request, result in zip(batch, results, strict=True):
            if result.fallback:
                kind = "partial" if request.partial else "recorded" if request.complete else "final"
                self.metrics.asr_fallbacks.labels(kind).inc()
        audio_s = sum(r.audio.size for r in batch) / PIPELINE_RATE
        if audio_s > 0:
            self.metrics.real_time_factor.observe((time.perf_counter() - started) / audio_s)
        return results
