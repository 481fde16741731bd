"""Prometheus metrics of one engine, in their own registry (so tests can build several engines). The registry
also carries the process collectors (``process_*``: CPU, memory, open files; ``python_info``; ``python_gc_*``)
and ``speechsvc_build_info``. No ``_created`` series are exposed (they double the series count and no dashboard
reads them): :func:`prometheus_client.disable_created_metrics`, process-wide. ``/metrics`` answers the text
format or OpenMetrics as the scraper's ``Accept`` asks (:func:`exposition`)."""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from speechsvc import __version__

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the format ``accept`` asks for (prometheus_client's own negotiation: OpenMetrics when the
    scraper accepts ``application/openmetrics-text``, else the text format), and its content type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        r = self.registry
        self.active_calls = Gauge("speechsvc_active_calls", "Calls streaming now", ["transport"], registry=r)
        self.max_calls = Gauge("speechsvc_max_calls", "Configured call capacity", registry=r)
        self.calls_total = Counter("speechsvc_calls_total", "Calls accepted", ["transport"], registry=r)
        self.rejections = Counter(
            "speechsvc_rejections_total", "Calls or work refused", ["reason"], registry=r
        )
        self.errors = Counter("speechsvc_client_errors_total", "Errors reported to clients", ["code"], registry=r)
        self.queue_depth = Gauge("speechsvc_queue_depth", "Items waiting per inference worker", ["worker"], registry=r)
        self.endpoint_to_final = Histogram(
            "speechsvc_endpoint_to_final_seconds",
            "Wall time from the VAD endpoint (end of speech + pause) to the final transcript",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "speechsvc_inference_batch_seconds", "Model time per batch", ["worker"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "speechsvc_inference_batch_size", "Items per batch", ["worker"], buckets=(1, 2, 4, 8, 16, 32), registry=r
        )
        self.queue_wait = Histogram(
            "speechsvc_queue_wait_seconds", "Time items waited in a queue", ["worker"], buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.real_time_factor = Histogram(  # exposed as speechsvc_asr_real_time_factor_ratio
            "speechsvc_asr_real_time_factor",
            "ASR compute time divided by audio duration, per batch",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            unit="ratio",
            registry=r,
        )
        self.asr_fallbacks = Counter(
            "speechsvc_asr_fallbacks",
            "ASR items decoded again (greedy text hit the output bound or repeated itself; recorded chunks also when"
            " the model doubted it)",
            ["kind"], registry=r,
        )
        for kind in ("final", "partial", "recorded"):  # exposed from the start: 0 is a measurement too
            self.asr_fallbacks.labels(kind)
        self.tenant_rejections = Counter(
            "speechsvc_tenant_rejections_total", "Work refused by a per-tenant limit", ["tenant", "reason"], registry=r
        )
        self.auth_failures = Counter(
            "speechsvc_auth_failures_total", "Handshakes and requests refused by authentication", ["reason"],
            registry=r,
        )
        self.auth_audit_suppressed = Counter(
            "speechsvc_auth_audit_suppressed_total",
            "Refused authentications not written to the audit log (a source past its failure rate)", registry=r,
        )
        self.webhook_deliveries = Counter(
            "speechsvc_webhook_deliveries_total", "Webhook deliveries by outcome (delivered, rejected, failed)",
            ["outcome"], registry=r,
        )
        self.audio_seconds = Counter("speechsvc_audio_seconds_total", "Audio received", ["leg"], registry=r)
        self.broker_events = Counter(
            "speechsvc_broker_events_total",
            "Events through the event broker: published by this replica, received from other replicas",
            ["direction"], registry=r,
        )
        self.broker_dropped = Counter(
            "speechsvc_broker_dropped_total", "Events not published to the broker (queue_full, unpublishable)",
            ["reason"], registry=r,
        )
        self.broker_errors = Counter(
            "speechsvc_broker_errors_total", "Broker operations that failed (retried)", ["operation"], registry=r
        )
        self.broker_connected = Gauge("speechsvc_broker_connected", "1 while the event broker answers", registry=r)
        self.webhook_dead = Counter(
            "speechsvc_webhook_dead_letters_total", "Webhook events put on the dead-letter stream", registry=r
        )
        self.build_info = Gauge("speechsvc_build_info", "Version of this build (value 1)", ["version", "python"],
                                registry=r)
        self.build_info.labels(__version__, platform.python_version()).set(1)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

    def track_depth(self, worker: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(worker).set_function(depth)

    def on_batch(self, worker: str, size: int, seconds: float, waited: float) -> None:
        self.batch_seconds.labels(worker).observe(seconds)
        self.batch_size.labels(worker).observe(size)
        self.queue_wait.labels(worker).observe(waited)
