"""Per-tenant limits and rate limits, connection bounds, and pacing of fast senders.

- :class:`TenantPolicy`: each tenant's bounds (calls, jobs, upload bytes, request rate), from the settings'
  defaults and ``tenant_limits`` overrides.
- :class:`RateLimiter`: a token bucket per tenant for handshakes and REST requests. Refused with the
  protocol's own code (HTTP 429, WebSocket handshake 429 / close 1013, gRPC RESOURCE_EXHAUSTED).
- :class:`ConnectionGate`: open connections of a kind (stream sockets, subscriptions) at once, counted from
  the handshake, so idle connections that never start a call cannot pile up.
- :class:`AudioPacer`: a call may run ahead of real time by a burst, then at most ``max_factor`` x real
  time; a faster sender waits (TCP backpressure) instead of stalling the event loop for every other call.

Thread-safety: event loop only (the rate limiter is also safe from gRPC's loop: one process, one loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from speechsvc.config import Settings
from speechsvc.errors import Overloaded, RateLimited
from speechsvc.metrics import Metrics


@dataclass(frozen=True)
class Bounds:
    """The resolved bounds of one tenant (0 = no per-tenant bound)."""

    max_calls: int
    max_jobs: int
    max_upload_bytes: int
    rate_per_s: float
    rate_burst: int


class TenantPolicy:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def bounds(self, tenant: str) -> Bounds:
        s = self.settings
        o = s.tenant_limits.get(tenant)
        upload = s.tenant_max_upload_bytes or s.max_upload_bytes

        def pick(value: int | float | None, default: int | float) -> int | float:
            return default if value is None else value

        return Bounds(
            max_calls=int(pick(o.max_calls if o else None, s.tenant_max_calls)),
            max_jobs=int(pick(o.max_jobs if o else None, s.tenant_max_jobs)),
            max_upload_bytes=int(pick(o.max_upload_bytes if o else None, upload)),
            rate_per_s=float(pick(o.rate_per_s if o else None, s.rate_per_s)),
            rate_burst=int(pick(o.rate_burst if o else None, s.rate_burst)),
        )


class RateLimiter:
    """Token buckets per tenant; at most ``max_tenants`` buckets are kept (least recently used dropped)."""

    def __init__(self, policy: TenantPolicy, metrics: Metrics | None = None, max_tenants: int = 10000) -> None:
        self.policy = policy
        self.metrics = metrics
        self.max_tenants = max_tenants
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, last refill)

    def check(self, tenant: str, what: str = "request") -> None:
        """Take one token.

        Raises:
            RateLimited: the tenant's bucket is empty.
        """
        bounds = self.policy.bounds(tenant)
        now = time.monotonic()
        tokens, last = self._buckets.pop(tenant, (float(bounds.rate_burst), now))
        tokens = min(float(bounds.rate_burst), tokens + (now - last) * bounds.rate_per_s)
        if tokens < 1.0:
            self._buckets[tenant] = (tokens, now)
            if self.metrics is not None:
                self.metrics.tenant_rejections.labels(tenant, "rate").inc()
                self.metrics.rejections.labels("rate_limit").inc()
            raise RateLimited(f"tenant {tenant} is over its rate of {bounds.rate_per_s:g} {what}s/s; retry later")
        self._buckets[tenant] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_tenants:
            self._buckets.pop(next(iter(self._buckets)))


class FailureThrottle:
    """Failed authentications per source address: a token bucket of ``burst`` failures refilled at ``per_s``.
    A source whose bucket is empty is refused before its credentials are checked (a guessing client gets 429s, not
    an oracle) and its refusals are counted instead of audited one by one. At most ``max_sources`` are tracked."""

    def __init__(self, burst: int, per_s: float, max_sources: int = 10000) -> None:
        self.burst = burst
        self.per_s = per_s
        self.max_sources = max_sources
        self._buckets: dict[str, tuple[float, float]] = {}  # source -> (tokens, last refill)

    def _tokens(self, source: str, now: float) -> float:
        tokens, last = self._buckets.get(source, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.per_s)

    def check(self, source: str) -> None:
        """Raises:
        RateLimited: this source failed too often recently.
        """
        if self._tokens(source, time.monotonic()) < 1.0:
            raise RateLimited("too many failed authentication attempts from this address; retry later")

    def failed(self, source: str) -> bool:
        """Count one failure; False when the source was already past its rate (do not audit it line by line)."""
        now = time.monotonic()
        tokens = self._tokens(source, now)
        self._buckets.pop(source, None)
        self._buckets[source] = (max(0.0, tokens - 1.0), now)
        if len(self._buckets) > self.max_sources:
            self._buckets.pop(next(iter(self._buckets)))
        return tokens >= 1.0


class ConnectionGate:
    """At most ``limit`` connections of one kind open at once."""

    def __init__(self, kind: str, limit: int, metrics: Metrics | None = None) -> None:
        self.kind = kind
        self.limit = limit
        self.metrics = metrics
        self.open = 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Raises:
        Overloaded: ``limit`` connections are already open.
        """
        if self.open >= self.limit:
            if self.metrics is not None:
                self.metrics.rejections.labels(f"{self.kind}_connections").inc()
            raise Overloaded(f"too many open {self.kind} connections ({self.limit}); retry later")
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


class AudioPacer:
    """Slows a sender that runs ahead of real time by more than ``burst_s``, to ``max_factor`` x real time.

    Call :meth:`pace` after each frame with the frame's duration; it sleeps when the sender is ahead, which
    stops reading from its socket (the peer's sends block: backpressure) and yields the loop to other calls.
    """

    def __init__(self, max_factor: float, burst_s: float) -> None:
        self.max_factor = max_factor
        self.burst_s = burst_s
        self.audio_s = 0.0
        self._start: float | None = None

    async def pace(self, seconds: float) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
        self.audio_s += seconds
        if self.max_factor <= 0:
            return
        allowed = self.burst_s + (now - self._start) * self.max_factor
        ahead = self.audio_s - allowed
        if ahead > 0:
            await asyncio.sleep(ahead / self.max_factor)
        else:
            await asyncio.sleep(0)  # let other calls run between frames of a fast sender
