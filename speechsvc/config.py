"""Settings: the single source of every value and path, and its one validation point.

Environment variables ``SPEECHSVC_*`` (or CLI flags, which the CLI maps onto the same fields) fill
:class:`Settings`; each stage receives a frozen options dataclass derived from it (:meth:`Settings.asr`,
:meth:`Settings.vad`, ...). The option dataclasses have no defaults of their own, so no value is declared
twice: to change a default, change it here.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_heads_dir() -> Path:
    """The folder of the heads we ship (``text/``, ``emotion/``, each with its model card): the one place that
    resolves it. A wheel carries them inside the package (``speechsvc/models/``, copied there by setup.py while it
    builds); a source checkout or an editable install reads ``models/`` at the top of the repository."""
    packaged = PACKAGE_DIR / "models"
    if (packaged / "text" / "model.json").is_file():
        return packaged
    return PACKAGE_DIR.parent / "models"


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "speechsvc"


@dataclass(frozen=True)
class AsrOptions:
    """Options of the Whisper recognizer (:mod:`speechsvc.speech.asr`)."""

    # CTranslate2 Whisper directory; None = the assembled default (Whisper base) under ``home``.
    model_dir: Path | None
    device: Literal["cpu", "cuda", "auto"]
    # CTranslate2 compute type; "default" = int8 on CPU, float16 on CUDA.
    compute_type: str
    # Intra-op threads for CTranslate2 on CPU (0 = its default: all cores), per batch in flight.
    cpu_threads: int
    # Batches decoded side by side (CTranslate2 inter_threads; the ASR worker runs as many at once): on 2 cores,
    # 2 x 1 thread instead of 1 x 2 (one thread gave 85 % of two threads' items/s, so two lanes do more work).
    inter_threads: int
    # Minimum encoder window in seconds; shorter speech is padded to this, longer to speech + 2 s.
    min_window_s: float
    # The same for a batch made only of partials (they only need to be roughly right and stable).
    partial_min_window_s: float
    # Output bound: at most this many tokens per second of audio, plus extra_tokens.
    tokens_per_second: float
    extra_tokens: int
    repetition_penalty: float
    beam_size: int
    # Fall back to sampling when the hypothesis compresses better than this (a repetition loop).
    compression_ratio_threshold: float
    fallback_temperatures: tuple[float, ...]
    fallback_hypotheses: int
    # Recorded audio: also fall back on a chunk whose greedy average log-probability is below this (0: never).
    fallback_logprob: float
    # Recorded audio: a chunk that falls back is also decoded greedily in an encoder window of this many seconds
    # (Whisper's own is 30), and the likeliest hypothesis wins (0: never).
    fallback_window_s: float
    # Drop a hypothesis as non-speech when P(no speech) is above and avg log-prob below these.
    no_speech_threshold: float
    logprob_threshold: float
    # Languages a call may ask for, and the candidates when it asks for auto-detection.
    languages: tuple[str, ...]
    # Keep punctuation (full-width for Mandarin, a sentence end on each final) or strip it.
    punctuation: bool
    # The deployment's hotwords (one per line), added to every decode; None = none.
    hotwords_file: Path | None
    # Recorded audio: when a chunk's decoded text ends more than this many seconds before its audio does, decode
    # the rest and append it (0 = never).
    continue_after_s: float


@dataclass(frozen=True)
class VadOptions:
    """Endpointing parameters (:mod:`speechsvc.speech.vad`). Defaults tuned on eval/long and eval/noise."""

    # Speech starts when P(speech) >= threshold, and a pause starts when it drops below neg_threshold.
    threshold: float
    neg_threshold: float
    # An utterance needs this much speech to count (shorter blips are dropped).
    min_speech_ms: int
    # The pause that ends an utterance (end of speech -> final transcript latency starts here).
    min_silence_ms: int
    # Audio kept before the detected start and after the detected end.
    speech_pad_ms: int
    # Utterances longer than this are cut (Whisper decodes at most 30 s)...
    max_segment_s: float
    # ...at the least speech-like window of their last cut_search_ms (a breath between words), so a forced
    # cut does not split a word; 0 cuts exactly at max_segment_s.
    cut_search_ms: int
    # webrtcvad aggressiveness 0-3 for a cheap gate in front of Silero while a leg is quiet; None: no gate.
    webrtc_mode: int | None
    # The speech threshold for narrowband sources (8 kHz and below: phone legs, phone recordings), where Silero's
    # speech probability is lower (median ~0.6 through G.711 against ~0.96 wide-band); None: ``threshold``. The
    # pause threshold keeps the same hysteresis below it (``vad.band_options``).
    narrowband_threshold: float | None


@dataclass(frozen=True)
class StreamOptions:
    """Per-call streaming behaviour and limits (:mod:`speechsvc.runtime.session`)."""

    # Decode a partial hypothesis every this many ms of new speech (0 disables partials) ...
    partial_interval_ms: int
    # ... and the first one as soon as the utterance has this much audio (pre-roll included).
    first_partial_ms: int
    # A partial that the ASR worker could not start within this many ms is not decoded (it would arrive stale),
    # and the leg's cadence stretches: interval x 2, x 4 ... up to partial_max_stretch, back as partials come
    # promptly again.
    partial_stale_ms: int
    partial_max_stretch: int
    # Largest binary frame accepted, in ms of audio at the declared format.
    max_frame_ms: int
    # Bound on queued outgoing events per call; a client that does not read is disconnected.
    max_pending_events: int
    # Bound on utterances waiting for their final transcript per leg.
    max_pending_utterances: int
    # A final is decoded with this many previous finals of its leg as previous text (0: each on its own).
    final_context: int


@dataclass(frozen=True)
class WorkerOptions:
    """An inference worker's bounds (:mod:`speechsvc.workers`)."""

    # Most items run in one model call (cross-call batching).
    max_batch: int
    # ... and at most this much estimated model work (the items' ``cost_s`` summed; 0 = no bound), so an urgent
    # item waits for at most one short batch.
    max_batch_cost_s: float
    # Queued items beyond this are refused with Overloaded.
    max_queue: int
    # OS niceness added to the worker's thread (0: as the process): analysis after the final yields the cores to
    # the ASR thread, so finals are not slowed by emotion features computed beside them.
    nice: int
    # Batches run at once (each on its own thread; the model must take concurrent calls, e.g. CTranslate2 with
    # inter_threads): 1 = one at a time.
    parallel: int


@dataclass(frozen=True)
class BrokerOptions:
    """The shared event broker (:mod:`speechsvc.runtime.broker`): Redis Streams between replicas."""

    # redis://host:6379/0 (rediss:// for TLS).
    url: str
    # One stream carries every replica's events; its dead-letter stream is ``<stream>:dead``.
    stream: str
    # Approximate bound on the stream (XADD MAXLEN ~): older entries are trimmed.
    maxlen: int
    # Events waiting to be published; past this they are dropped (counted), never blocking a call.
    queue: int
    # This replica's name: its consumer name in webhook groups, and how it knows its own events on the stream.
    replica: str
    # A webhook event left unacknowledged this long by a replica (stopped or killed mid-delivery) is taken over.
    claim_idle_s: float


class TenantLimits(BaseModel):
    """One tenant's overrides of the per-tenant defaults (``Settings.tenant_limits``); None = the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Calls streaming at once.
    max_calls: int | None = Field(None, ge=1)
    # Jobs queued or running at once.
    max_jobs: int | None = Field(None, ge=1)
    # Bytes of one upload request.
    max_upload_bytes: int | None = Field(None, ge=1024)
    # Handshakes and REST requests per second (token bucket refill) and the bucket's size.
    rate_per_s: float | None = Field(None, gt=0)
    rate_burst: int | None = Field(None, ge=1)


class WebhookTarget(BaseModel):
    """One webhook: where a tenant's (or, without a tenant, every tenant's) events are POSTed, signed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    # Only this tenant's calls; None = every call (an operator-wide webhook).
    tenant: str | None = None
    # Only these event types (e.g. ["transcript.final", "escalation", "ended"]); empty = every event.
    events: tuple[str, ...] = ()
    # Standard Webhooks signing secret ("whsec_" + base64); None = unsigned (warned about at start-up).
    secret: str | None = None


class Settings(BaseSettings):
    """Service configuration. Every limit here is also exported as a metric or shown in /readyz."""

    model_config = SettingsConfigDict(env_prefix="SPEECHSVC_", frozen=True)

    # ---- paths -------------------------------------------------------------------------------------------
    # Root for assembled models and job data.
    home: Path = Field(default_factory=_default_home)
    # The shipped heads (text/, emotion/): models/ of the repository, package data in a wheel.
    heads_dir: Path = Field(default_factory=shipped_heads_dir)
    # Batch jobs of the REST API (SQLite store and outputs); None = home/jobs.
    jobs_dir: Path | None = None

    # ---- network -----------------------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # gRPC port; 0 = pick a free one, -1 = disable gRPC.
    grpc_port: int = Field(50051, ge=-1, le=65535)
    grpc_tls_cert: Path | None = None
    grpc_tls_key: Path | None = None
    # Longest recording gRPC Transcribe/TranscribeStream decode (seconds of audio, held in memory: 1 h = 230 MB);
    # longer is RESOURCE_EXHAUSTED, and a decompression bomb stops decoding there.
    transcribe_max_s: float = Field(3600.0, gt=0)
    # Asterisk AudioSocket TCP listeners (-1 disables): customer leg, and optionally a second one for the agent.
    audiosocket_port: int = Field(9092, ge=-1, le=65535)
    audiosocket_agent_port: int = Field(-1, ge=-1, le=65535)
    # Rate of AudioSocket kind 0x10 frames. 8000 is the protocol's; Asterisk before 20.17/21.12/22.7/23.1 also
    # sends 16 kHz (slin16 / externalMedia format=slin16) as 0x10: set 16000 for such a listener.
    audiosocket_slin_rate: int = Field(8000, ge=8000, le=192000)
    # How long a finished AudioSocket leg keeps its call open for a declared leg that has not connected yet.
    audiosocket_pair_grace_s: float = Field(5.0, ge=0)
    # POST every event of every call here (JSON), with retries; signed when webhook_secret is set.
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # More webhooks: per tenant, with event filters and their own secrets.
    webhooks: tuple[WebhookTarget, ...] = ()
    # Webhook URLs may resolve to link-local/cloud-metadata addresses (refused by default).
    webhook_allow_link_local: bool = False
    webhook_retries: int = Field(5, ge=1, le=20)
    webhook_timeout_s: float = Field(5.0, gt=0)
    # Bound on events queued per event subscriber (a slow one loses its oldest events, counted).
    subscriber_queue: int = Field(1000, ge=10)
    # Share events between replicas through Redis Streams (redis://host:6379/0): every replica's subscribers
    # see every replica's calls, and each webhook event is POSTed once. Empty: in-process only.
    event_broker: str = ""
    event_stream: str = "speechsvc:events"
    # Entries kept on the stream (approximately; XADD MAXLEN ~).
    event_stream_maxlen: int = Field(100_000, ge=100)
    # Events waiting to go to the broker; past this they are dropped (speechsvc_broker_dropped_total).
    event_publish_queue: int = Field(10_000, ge=10)
    # This replica's name on the broker; empty = host name, process id and a random suffix.
    replica_id: str = ""
    # An unacknowledged webhook event is taken over by another replica after this long.
    event_claim_idle_s: float = Field(120.0, gt=0)

    # ---- security ----------------------------------------------------------------------------------------
    # auto: credentials required unless bound to loopback; required; off (every client is the admin of the
    # "default" tenant; refused on a non-loopback address unless insecure is set).
    auth: Literal["auto", "required", "off"] = "auto"
    # Serve a non-loopback address without authentication (logged loudly at start-up).
    insecure: bool = False
    # API keys (hashed) and their tenants and scopes; None = home/keys.json. Written 0600 by `speechsvc keys`.
    keys_file: Path | None = None
    # JWT bearer tokens from an identity provider: the verification key (PEM public key for RS*/ES*, the
    # shared secret for HS*), accepted algorithms, required issuer and audience, and the claims that carry
    # the tenant and the scopes (space-separated string or list).
    jwt_key_file: Path | None = None
    jwt_algorithms: tuple[str, ...] = ("RS256",)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_tenant_claim: str = "tenant"
    jwt_scope_claim: str = "scope"
    # TLS for HTTP/WebSocket (PEM files); client certificates: none, optional or required (signed by tls_client_ca).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    tls_client_cert: Literal["none", "optional", "required"] = "none"
    # gRPC mutual TLS: client certificates signed by this CA are required (with grpc_tls_cert/key).
    grpc_tls_client_ca: Path | None = None
    # Audit log (JSON lines, 0600): who started, subscribed, submitted what, when; never transcript text.
    # None = home/audit.log; "-" = the log (logger speechsvc.audit) only.
    audit_log: str | None = None
    # Per-tenant defaults (0 = no per-tenant bound beyond the service-wide one) and per-tenant overrides.
    tenant_max_calls: int = Field(0, ge=0)
    tenant_max_jobs: int = Field(16, ge=0)
    tenant_max_upload_bytes: int = Field(0, ge=0)
    rate_per_s: float = Field(20.0, gt=0)
    rate_burst: int = Field(100, ge=1)
    tenant_limits: dict[str, TenantLimits] = Field(default_factory=dict)
    # Failed authentication per source address: a burst of auth_fail_burst failures, then auth_fail_per_s; past
    # that the source is answered 429 (gRPC RESOURCE_EXHAUSTED) without checking, and its audit lines are counted
    # (speechsvc_auth_audit_suppressed_total) instead of written.
    auth_fail_burst: int = Field(30, ge=1)
    auth_fail_per_s: float = Field(1.0, gt=0)
    # Call metadata that reaches events, webhooks, the console and reports: only these keys ("*" = every key), and
    # personal values masked (phone/ID/card numbers keep their last 4 digits, e-mails their domain, *name* keys
    # their first character; see speechsvc/security/metadata.py). Other keys are dropped at admission.
    metadata_keys: tuple[str, ...] = (
        "callSid", "streamSid", "accountSid", "uuid", "callId", "call_id", "conversationId", "audiohookSessionId",
        "organizationId", "correlationId", "participantId", "sessionId", "agentId", "agent_id", "agentName",
        "queue", "skill", "campaign", "direction", "channel", "language", "customerId", "ticketId", "callerPhone",
        "calledPhone", "ani", "dnis", "callerName", "from", "to", "caller", "called",
    )
    mask_metadata: bool = True
    # An open connection's key or token is checked again this often: a revoked key or an expired token closes it
    # (WebSocket 1008, gRPC UNAUTHENTICATED); 0 = only at the handshake.
    auth_recheck_s: float = Field(2.0, ge=0)
    # Open WebSocket connections (calls, platform streams, subscriptions) at once; 0 = 2 x max_calls + 64.
    max_connections: int = Field(0, ge=0)
    # Event subscriptions open at once (all tenants).
    max_subscribers: int = Field(256, ge=1)
    # A call may send audio at most this many times faster than real time after its first burst_s seconds
    # (a fast sender is slowed down, not allowed to stall other calls); 0 = no bound.
    max_realtime_factor: float = Field(8.0, ge=0)
    realtime_burst_s: float = Field(30.0, ge=0)
    # An AudioSocket call that receives no frame for audiosocket_idle_s has a dead peer (its finals are kept).
    audiosocket_idle_s: float = Field(30.0, gt=0)
    # AudioSocket has no authentication in its protocol: only these source networks may connect (CIDRs),
    # and its calls belong to this tenant.
    audiosocket_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    audiosocket_tenant: str = "default"

    # ---- batch jobs --------------------------------------------------------------------------------------
    # Server-side folders REST jobs may read (symlinks resolved; manifest entries checked too).
    batch_roots: tuple[str, ...] = ()
    # URL schemes REST jobs may read (e.g. ["s3"]); none by default. file:// is a local path (roots apply).
    batch_url_schemes: tuple[str, ...] = ()
    # Inputs one job may expand to (directories, manifests).
    max_job_inputs: int = Field(10000, ge=1)
    # Longest decoded recording of a job input, and of a gRPC Transcribe request (decompression bombs).
    max_recording_s: float = Field(4 * 3600.0, gt=0)
    # A job interrupted this many times (the process died while running it) is failed, not re-run.
    max_job_attempts: int = Field(3, ge=1)
    max_jobs: int = Field(1, ge=1)
    batch_concurrency: int = Field(2, ge=1)
    max_upload_bytes: int = Field(512 << 20, ge=1024)
    # Keep uploaded audio after its job ends.
    keep_audio: bool = False
    # Where jobs are stored: empty = SQLite in the jobs folder (one machine); postgresql://user:pass@host/db = one
    # store shared by every replica (then jobs_dir must be a folder every replica mounts: uploads and outputs).
    jobs_db: str = ""
    # A replica holds a job item this long without a heartbeat before another replica takes it over.
    jobs_lease_s: float = Field(30.0, ge=1.0)
    # How often a replica looks for work another replica queued.
    jobs_poll_s: float = Field(1.0, gt=0)

    # ---- ASR ---------------------------------------------------------------------------------------------
    asr_model_dir: Path | None = None
    device: Literal["cpu", "cuda", "auto"] = "auto"
    compute_type: str = "default"
    cpu_threads: int = Field(1, ge=0, le=256)
    # ASR batches decoded side by side, each with cpu_threads threads. 2 lanes x 1 thread on 2 cores: final p95 at
    # 4 / 8 / 16 calls 0.57 / 1.08 / 13.9 s against 0.74 / 1.33 / 39.1 s for 1 lane x 2 threads (quiet machine,
    # partials on; docs/results.md).
    asr_inter_threads: int = Field(2, ge=1, le=16)
    asr_min_window_s: float = Field(10.0, ge=1.0, le=30.0)
    asr_partial_min_window_s: float = Field(5.0, ge=1.0, le=30.0)
    asr_beam_size: int = Field(1, ge=1, le=10)
    asr_tokens_per_second: float = Field(10.0, gt=0)
    asr_extra_tokens: int = Field(12, ge=0)
    asr_repetition_penalty: float = Field(1.05, ge=1.0)
    asr_compression_ratio_threshold: float = Field(2.0, gt=0)
    asr_fallback_temperatures: tuple[float, ...] = (0.2, 0.4)
    asr_fallback_hypotheses: int = Field(3, ge=1)
    asr_fallback_logprob: float = Field(-0.8, le=0)
    # Recorded audio: a chunk that falls back also has its greedy hypothesis in Whisper's own 30 s window among the
    # candidates (0 turns it off); tune mean CER 0.271 -> 0.264 (docs/results.md, issue 27 fourth pass).
    asr_fallback_window_s: float = Field(30.0, ge=0, le=30.0)
    asr_no_speech_threshold: float = Field(0.6, ge=0, le=1)
    asr_logprob_threshold: float = -1.0
    # Recorded audio: when a chunk's timestamped text ends more than this many seconds before its audio, the rest
    # is decoded and appended (Whisper stops after one sentence of a spontaneous turn); 0 turns it off.
    asr_continue_after_s: float = Field(1.5, ge=0)
    # Punctuated output (full-width for Mandarin, a sentence end on each final); false strips it.
    punctuation: bool = True
    # Names and words of the deployment (products, branches, places, plans), one per line: the decoder is
    # biased toward them on every call (see README, Hotwords).
    asr_hotwords_file: Path | None = None
    languages: tuple[str, ...] = ("zh", "en")
    default_language: Literal["zh", "en", "auto"] = "zh"
    asr_max_batch: int = Field(8, ge=1, le=64)
    # A batch's estimated cost: the seconds of audio its items encode (each item's speech + 2 s), summed; a final
    # that arrives while a batch runs waits for at most this much work (0 = bounded by items only). Unset: 8 s on a
    # CPU, where a bigger batch buys no throughput (measured: items/s fall from batch 1 to 8), unbounded on a GPU.
    asr_max_batch_cost_s: float | None = Field(None, ge=0)
    # Niceness of the analysis workers' threads (intent, sentiment, emotion): they run after a final went out and
    # yield the CPU to ASR (0: same as ASR).
    analysis_nice: int = Field(5, ge=0, le=19)
    asr_max_queue: int = Field(256, ge=1)

    # ---- VAD ---------------------------------------------------------------------------------------------
    vad_threshold: float = Field(0.5, gt=0.0, lt=1.0)
    # The pause threshold sits this far below the speech threshold (hysteresis).
    vad_hysteresis: float = Field(0.15, ge=0.0, lt=1.0)
    vad_min_silence_ms: int = Field(500, ge=100, le=5000)
    vad_min_speech_ms: int = Field(250, ge=32, le=5000)
    vad_speech_pad_ms: int = Field(200, ge=0, le=1000)
    vad_max_segment_s: float = Field(15.0, ge=2.0, le=28.0)
    vad_cut_search_ms: int = Field(3000, ge=0, le=10000)
    # A webrtcvad gate (aggressiveness 0-3) in front of Silero while a live wide-band leg is quiet (None: never).
    # Phone-band legs never use it: on 8 kHz audio it missed utterances Silero finds (vad.live_options).
    vad_webrtc_mode: int | None = Field(1, ge=0, le=3)
    # The speech threshold on narrowband sources (8 kHz and below), where Silero is less sure of speech; None: the
    # same as vad_threshold (vad.band_options). 0.35 chosen on tune (issue 27): fewer 8 kHz calls' speech missed
    # (diarization tune: 3.5 % -> 1.6 % through G.711, 39 % -> 12 % brick-wall), tune CER over the chains 0.248 ->
    # 0.240, no text on noise or hold music (0.25 wrote some).
    vad_narrowband_threshold: float | None = Field(0.35, gt=0.0, lt=1.0)

    # ---- live calls --------------------------------------------------------------------------------------
    max_calls: int = Field(64, ge=1)
    max_message_bytes: int = Field(1 << 20, ge=1024)
    max_frame_ms: int = Field(1000, ge=20, le=10000)
    partial_interval_ms: int = Field(1000, ge=0)
    first_partial_ms: int = Field(600, ge=100)
    partial_stale_ms: int = Field(1000, ge=50)
    partial_max_stretch: int = Field(4, ge=1, le=64)
    max_pending_events: int = Field(1000, ge=10)
    max_pending_utterances: int = Field(32, ge=1)
    # Previous finals of a leg given to the decoder with its next final (eval/long: CER 0.206 -> 0.170 with 2),
    # off by default: conditioned on them, Whisper sometimes ends an utterance after its first sentence.
    final_context: int = Field(0, ge=0, le=8)
    # A WebSocket client whose socket accepts no event for this long is not reading: closed with 1013.
    send_timeout_s: float = Field(5.0, gt=0)
    shutdown_grace_s: float = Field(10.0, ge=0)

    # ---- call platforms (Twilio, AudioSocket, mod_audio_fork, AudioHook) -----------------------------------
    # Tenant of Twilio streams authenticated by their X-Twilio-Signature (Twilio cannot send an API key), and of
    # AudioHook sessions authenticated by AudioHook's own key (audiohook_api_key).
    twilio_tenant: str = "default"
    audiohook_tenant: str = "default"
    # A platform connection must say which call it carries (Twilio start, AudioSocket UUID, mod_audio_fork's
    # first frame, AudioHook open) within this many seconds, or it is closed.
    platform_start_timeout_s: float = Field(10.0, gt=0)
    # A platform connection silent this long is closed and its call ended (what was heard is kept). Platforms
    # stream audio continuously; raise it if a mod_audio_fork `pause` (an unsignalled gap) may last longer.
    platform_idle_timeout_s: float = Field(120.0, gt=0)
    # Wall-clock seconds of a connection's first audio used to check its byte rate against the declared format
    # (16 kHz sent as AudioSocket 0x10, stereo sent to mod_audio_fork without mix=stereo); 0 disables the check.
    # The call starts after this probe, so its first events come this much later.
    platform_rate_probe_s: float = Field(1.0, ge=0, le=10)
    # Twilio auth token: when set, every Media Streams upgrade must carry a valid X-Twilio-Signature (else 403).
    twilio_auth_token: SecretStr | None = None
    # The <Stream url> exactly as in the TwiML (wss://speech.example.com/v1/twilio): Twilio signs this URL, not
    # the one the proxy forwards. None = wss:// + the request's Host header + path.
    twilio_public_url: str | None = None
    # Longest gap in a Twilio track's media.timestamp filled with silence; a longer jump is filled up to this
    # and reported (the leg's clock then runs behind by the rest).
    twilio_max_gap_ms: int = Field(60000, ge=0)
    # Genesys AudioHook: the API key every connection must present (X-API-KEY); None accepts any connection.
    audiohook_api_key: SecretStr | None = None
    # The AudioHook client secret (base64, as configured in Genesys Cloud): when set, connections must carry a
    # valid RFC 9421 signature (Signature-Input/Signature) made with it.
    audiohook_client_secret: SecretStr | None = None
    # Send transcripts (and escalations) back as AudioHook `event` messages (Monitor sessions ignore them).
    audiohook_events: bool = True

    # ---- analysis ----------------------------------------------------------------------------------------
    # Text analysis (intent, negativity) on every final transcript.
    text_analysis: bool = True
    # An operator's text model directory (`speechsvc train intent ... --out DIR`); None = the shipped one
    # (heads_dir/text). Reloaded on SIGHUP without dropping calls.
    intent_model: Path | None = None
    text_max_batch: int = Field(32, ge=1)
    # Voice emotion on every final segment (needs the committed head under heads_dir/emotion).
    emotion: bool = True
    # Skip emotion for a live segment when this many are already waiting (it never delays transcripts).
    emotion_skip_depth: int = Field(16, ge=1)
    # Escalation rules file; None = the packaged rules (speechsvc/analysis/escalation_rules.toml).
    escalation_rules: Path | None = None
    # PII redaction of every transcript before anyone sees it (events, subscribers, webhook, outputs).
    pii_redaction: bool = True
    # PII types to redact (PHONE, ID_CARD, BANK_CARD, EMAIL, NAME, ADDRESS, VERIFICATION_CODE, PASSPORT,
    # LICENSE_PLATE); empty = all.
    pii_types: tuple[str, ...] = ()
    # "tag": [PHONE]; "mask": keep the last 4 digits (and a mobile's first 3), 138****5678.
    pii_style: Literal["tag", "mask"] = "tag"
    # A digit run this long at the end of an utterance or partial is masked until the call shows it is not PII.
    pii_min_digits: int = Field(6, ge=1, le=32)
    # Names and addresses with the LAC model (the other types need no model).
    pii_names_addresses: bool = True
    # Whether a call may ask for no redaction (its start message / config); off by default.
    pii_call_opt_out: bool = False
    # Keypad digits (DTMF events) while redaction is on: "mask" (digit "*") or "clear" (IVR menus only).
    pii_dtmf: Literal["mask", "clear"] = "mask"
    # Redacted audio: a value's time span (from word timings, ±100 ms) is widened by this much on each side ...
    pii_audio_pad_ms: int = Field(80, ge=0, le=2000)
    # ... and its end by this much more when the value ends on a digit (a number's last digit often outlasts
    # its timestamp: one digit of 99 stayed audible without it).
    pii_audio_digit_tail_ms: int = Field(200, ge=0, le=2000)
    # Quality-inspection rules on every call (qa events live, a qa section in batch reports).
    qa: bool = True
    # QA rules file; None = the packaged pack for Chinese service calls (speechsvc/analysis/qa/qa_default.toml).
    qa_rules: Path | None = None
    # Mono recordings (batch jobs, REST jobs, Ray, gRPC Transcribe) are split by speaker and the speakers labelled
    # agent / customer from what they say (speechsvc/speech/diarize.py, speechsvc/analysis/roles.py). Stereo
    # recordings keep their channels and live calls their legs; the OpenAI API diarizes only when asked.
    diarize: bool = True
    # Speakers in a mono recording (2: an agent and a customer).
    diarize_speakers: int = Field(2, ge=1, le=8)
    # Agent assist: knowledge-base suggestions for the agent on each customer final (live calls).
    assist: bool = True
    # Knowledge file; None = the packaged example (speechsvc/analysis/assist/assist_default.toml).
    assist_knowledge: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.default_language != "auto" and self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not one of languages {self.languages}")
        return self

    @property
    def keys_path(self) -> Path:
        return self.keys_file or self.home / "keys.json"

    @property
    def audit_path(self) -> Path | None:
        if self.audit_log == "-":
            return None
        return Path(self.audit_log) if self.audit_log else self.home / "audit.log"

    @property
    def jobs_path(self) -> Path:
        return self.jobs_dir or self.home / "jobs"

    @property
    def intent_model_dir(self) -> Path:
        """The text model the intent stage loads (and the escalation rules are checked against)."""
        return self.intent_model or self.heads_dir / "text"

    @property
    def speaker_dir(self) -> Path:
        """The speaker encoder, converted from the resemblyzer wheel by ``speechsvc models install``."""
        return self.home / "models" / "speaker-ge2e"

    @property
    def whisper_dir(self) -> Path:
        """Where the default Whisper model is assembled (or the configured directory)."""
        return self.asr_model_dir or self.home / "models" / "whisper-base-ct2"

    def asr(self) -> AsrOptions:
        return AsrOptions(
            model_dir=self.asr_model_dir,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.cpu_threads,
            inter_threads=self.asr_inter_threads,
            min_window_s=self.asr_min_window_s,
            partial_min_window_s=self.asr_partial_min_window_s,
            tokens_per_second=self.asr_tokens_per_second,
            extra_tokens=self.asr_extra_tokens,
            repetition_penalty=self.asr_repetition_penalty,
            beam_size=self.asr_beam_size,
            compression_ratio_threshold=self.asr_compression_ratio_threshold,
            fallback_temperatures=self.asr_fallback_temperatures,
            fallback_hypotheses=self.asr_fallback_hypotheses,
            fallback_logprob=self.asr_fallback_logprob,
            fallback_window_s=self.asr_fallback_window_s,
            no_speech_threshold=self.asr_no_speech_threshold,
            logprob_threshold=self.asr_logprob_threshold,
            punctuation=self.punctuation,
            hotwords_file=self.asr_hotwords_file,
            languages=self.languages,
            continue_after_s=self.asr_continue_after_s,
        )

    def vad(self) -> VadOptions:
        return VadOptions(
            threshold=self.vad_threshold,
            neg_threshold=max(0.01, self.vad_threshold - self.vad_hysteresis),
            min_speech_ms=self.vad_min_speech_ms,
            min_silence_ms=self.vad_min_silence_ms,
            speech_pad_ms=self.vad_speech_pad_ms,
            max_segment_s=self.vad_max_segment_s,
            cut_search_ms=self.vad_cut_search_ms,
            webrtc_mode=self.vad_webrtc_mode,
            narrowband_threshold=self.vad_narrowband_threshold,
        )

    def stream(self) -> StreamOptions:
        return StreamOptions(
            partial_interval_ms=self.partial_interval_ms,
            first_partial_ms=self.first_partial_ms,
            partial_stale_ms=self.partial_stale_ms,
            partial_max_stretch=self.partial_max_stretch,
            max_frame_ms=self.max_frame_ms,
            max_pending_events=self.max_pending_events,
            max_pending_utterances=self.max_pending_utterances,
            final_context=self.final_context,
        )

    def broker(self) -> BrokerOptions | None:
        """The event broker's options; None when events stay in this process."""
        if not self.event_broker:
            return None
        replica = self.replica_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        return BrokerOptions(self.event_broker, self.event_stream, self.event_stream_maxlen,
                             self.event_publish_queue, replica, self.event_claim_idle_s)

    def asr_worker(self) -> WorkerOptions:
        cost = self.asr_max_batch_cost_s
        if cost is None:
            gpu = self.device == "cuda" or (self.device == "auto" and Path("/dev/nvidiactl").exists())
            cost = 0.0 if gpu else 8.0
        return WorkerOptions(max_batch=self.asr_max_batch, max_batch_cost_s=cost, max_queue=self.asr_max_queue, nice=0,
                             parallel=self.asr_inter_threads)

    def analysis_worker(self) -> WorkerOptions:
        """Bounds of the analysis stages' workers (text, emotion): they see every final of every call."""
        return WorkerOptions(max_batch=self.text_max_batch, max_batch_cost_s=0.0, max_queue=self.asr_max_queue * 2,
                             nice=self.analysis_nice, parallel=1)

