"""Settings: one validation point. Environment variables ``SPEECHSVC_*`` (or CLI flags, which the CLI maps
onto the same fields) become one frozen options dataclass per stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from speechsvc.asr import AsrOptions
from speechsvc.scheduler import WorkerOptions
from speechsvc.vad import VadOptions


@dataclass(frozen=True)
class StreamOptions:
    """Per-call streaming behaviour and limits."""

    # Decode a partial hypothesis every this many ms of new speech (0 disables partials) ...
    partial_interval_ms: int = 1000
    # ... and the first one as soon as the utterance has this much audio (pre-roll included).
    first_partial_ms: int = 600
    # Skip a partial when the ASR queue already holds this many items (finals keep their latency).
    partial_skip_depth: int = 2
    # Largest binary frame accepted, in ms of audio at the declared format.
    max_frame_ms: int = 1000
    # Bound on queued outgoing events per call; a client that does not read is disconnected.
    max_pending_events: int = 1000
    # Bound on utterances waiting for their final transcript per leg.
    max_pending_utterances: int = 32
    # Default language when a call does not say: "zh", "en" or "auto".
    default_language: str = "zh"


class Settings(BaseSettings):
    """Service configuration. Every limit here is also exported as a metric or shown in /readyz."""

    model_config = SettingsConfigDict(env_prefix="SPEECHSVC_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # gRPC port; 0 = pick a free one, -1 = disable gRPC.
    grpc_port: int = Field(50051, ge=-1, le=65535)
    grpc_tls_cert: Path | None = None
    grpc_tls_key: Path | None = None
    # Asterisk AudioSocket TCP listeners (-1 disables): customer leg, and optionally a second one for the agent.
    audiosocket_port: int = Field(9092, ge=-1, le=65535)
    audiosocket_agent_port: int = Field(-1, ge=-1, le=65535)
    # POST every event of every call here (JSON), with retries.
    webhook_url: str | None = None
    # Batch jobs of the REST API: store, server-side paths they may read, bounds, and audio retention.
    jobs_dir: Path | None = None
    batch_roots: tuple[str, ...] = ()
    max_jobs: int = Field(1, ge=1)
    batch_concurrency: int = Field(2, ge=1)
    max_upload_bytes: int = Field(512 << 20, ge=1024)
    keep_audio: bool = False

    asr_model_dir: Path | None = None
    device: Literal["cpu", "cuda", "auto"] = "auto"
    compute_type: str = "default"
    cpu_threads: int = Field(2, ge=0, le=256)
    asr_min_window_s: float = Field(10.0, ge=1.0, le=30.0)
    asr_beam_size: int = Field(1, ge=1, le=10)
    languages: tuple[str, ...] = ("zh", "en")
    default_language: Literal["zh", "en", "auto"] = "zh"

    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    vad_min_silence_ms: int = Field(500, ge=100, le=5000)
    vad_min_speech_ms: int = Field(250, ge=32, le=5000)
    vad_max_segment_s: float = Field(15.0, ge=2.0, le=28.0)
    vad_cut_search_ms: int = Field(3000, ge=0, le=10000)

    max_calls: int = Field(64, ge=1)
    max_message_bytes: int = Field(1 << 20, ge=1024)
    max_frame_ms: int = Field(1000, ge=20, le=10000)
    partial_interval_ms: int = Field(1000, ge=0)
    first_partial_ms: int = Field(600, ge=100)
    partial_skip_depth: int = Field(2, ge=0)
    asr_max_batch: int = Field(8, ge=1, le=64)
    asr_max_queue: int = Field(256, ge=1)
    shutdown_grace_s: float = Field(10.0, ge=0)
    # Text analysis (intent, negativity, escalation) on every final transcript.
    text_analysis: bool = True
    # Voice emotion on every final segment (needs the committed head under models/emotion).
    emotion: bool = True
    # Skip emotion for a segment when this many are already waiting (it never delays transcripts).
    emotion_skip_depth: int = Field(16, ge=1)
    escalation_rules: Path | None = None

    def asr(self) -> AsrOptions:
        return AsrOptions(
            model_dir=self.asr_model_dir,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            min_window_s=self.asr_min_window_s,
            beam_size=self.asr_beam_size,
            languages=self.languages,
        )

    def vad(self) -> VadOptions:
        return VadOptions(
            threshold=self.vad_threshold,
            neg_threshold=max(0.01, self.vad_threshold - 0.15),
            min_silence_ms=self.vad_min_silence_ms,
            min_speech_ms=self.vad_min_speech_ms,
            max_segment_s=self.vad_max_segment_s,
            cut_search_ms=self.vad_cut_search_ms,
        )

    def stream(self) -> StreamOptions:
        return StreamOptions(
            partial_interval_ms=self.partial_interval_ms,
            first_partial_ms=self.first_partial_ms,
            partial_skip_depth=self.partial_skip_depth,
            max_frame_ms=self.max_frame_ms,
            default_language=self.default_language,
        )

    def asr_worker(self) -> WorkerOptions:
        return WorkerOptions(max_batch=self.asr_max_batch, max_queue=self.asr_max_queue)

    def text_worker(self) -> WorkerOptions:
        return WorkerOptions(max_batch=32, max_queue=self.asr_max_queue * 2)
