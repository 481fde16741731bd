"""Webhooks: events POSTed (JSON, the same body a subscriber receives) to each configured URL, in order,
signed with the Standard Webhooks scheme (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``).

Each target (``SPEECHSVC_WEBHOOK_URL`` for every call, ``SPEECHSVC_WEBHOOKS`` per tenant) has its own subscription
(tenant and event-type filters) and poster. A 2xx is delivered; a 4xx is the receiver refusing this event: not
retried, recorded (counted, logged, ``rejected``); a 5xx, a timeout or a connection error is retried with
exponential backoff up to ``webhook_retries`` times, then recorded as ``failed``. The URL is validated at
start-up and before each delivery (no link-local or cloud-metadata targets unless allowed), and only ever
logged without its credentials and query string. The backlog is the subscription's bounded queue; at shutdown
the poster delivers what is queued (the drained calls' finals and ``ended``) before it stops.

With an event broker (several replicas), each replica runs the same posters over the bus's shared feed (a Redis
consumer group per target): every replica's events, each POSTed by one replica. An event that failed after the
last retry (or whose URL is refused) goes to the dead-letter stream. Each replica posts in order, but two
replicas post concurrently, so a receiver orders one call's events by ``seq``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx

from speechsvc.config import Settings, WebhookTarget
from speechsvc.errors import Forbidden
from speechsvc.protocol import event_dict
from speechsvc.runtime.bus import Delivery, EventBus
from speechsvc.runtime.engine import Engine
from speechsvc.security.network import check_webhook_url, safe_url
from speechsvc.security.signing import check_secret, sign

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
URL_RECHECK_S = 30.0


class WebhookPoster:
    def __init__(self, bus: EventBus, url: str, retries: int, timeout_s: float, *, secret: str | None = None,
                 tenant: str | None = None, events: tuple[str, ...] = (), allow_link_local: bool = False,
                 engine: Engine | None = None) -> None:
        self.bus = bus
        self.url = url
        self.safe_url = safe_url(url)
        self.retries = retries
        self.timeout_s = timeout_s
        self.secret = check_secret(secret) if secret else None
        self.tenant = tenant
        self.events = frozenset(events)
        self.allow_link_local = allow_link_local
        self.metrics = engine.metrics if engine is not None else None
        self.delivered = 0
        self.rejected = 0  # 4xx: the receiver refused the event; not retried
        self.failed = 0  # 5xx/timeouts after every retry
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._checked_at = float("-inf")
        # The target's name on the broker, the same on every replica with the same configuration.
        key = f"{url}\n{tenant or ''}\n{','.join(sorted(self.events))}"
        self.group = "webhook:" + hashlib.sha256(key.encode()).hexdigest()[:16]

    def start(self) -> None:
        # httpx logs every request's full URL at INFO (credentials and query included); ours log safe_url only.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"webhook {self.safe_url}")

    async def started(self) -> None:
        """Wait until the poster's subscription exists (events published after this reach it)."""
        await self._subscribed.wait()

    async def stop(self) -> None:
        """Deliver what is queued (the bus closes subscriptions at shutdown), waiting a bounded time."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), STOP_TIMEOUT_S)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        with self.bus.feed(self.group, self.tenant, self.events) as feed:
            await feed.ready()
            self._subscribed.set()
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
                async for delivery in feed.deliveries():
                    failure = await self._post(client, delivery)
                    await feed.settle(delivery, failure)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.webhook_deliveries.labels(outcome).inc()

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery) -> str | None:
        """Deliver one event with retries; None when done (delivered, or refused by the receiver), else why it
        failed after every attempt."""
        event = delivery.event
        body = json.dumps(event_dict(event), ensure_ascii=False).encode("utf-8")
        # One id per event (a receiver deduplicates retries by it); the timestamp is signed at each attempt. With a
        # broker the id comes from the stream entry, so a replica that takes an event over reuses it.
        unique = delivery.id.replace("-", "_") if delivery.id else uuid.uuid4().hex[:8]
        message_id = f"msg_{event.tenant}_{event.call_id}_{event.seq}_{unique}"
        kind = event.type
        delay = 0.2
        for attempt in range(1, self.retries + 1):
            headers = {"content-type": "application/json"}
            if self.secret:
                headers.update(sign(self.secret, message_id, int(time.time()), body))
            try:
                if time.monotonic() - self._checked_at > URL_RECHECK_S:  # DNS may change (rebinding)
                    await asyncio.to_thread(check_webhook_url, self.url, self.allow_link_local)
                    self._checked_at = time.monotonic()
                response = await client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    self._count("delivered")
                    return None
                if response.status_code < 500:
                    self.rejected += 1
                    self.last_error = f"HTTP {response.status_code}"
                    self._count("rejected")
                    log.warning("webhook %s refused a %s event with HTTP %d; not retried", self.safe_url, kind,
                                response.status_code)
                    return None
                self.last_error = f"HTTP {response.status_code}"
                log.warning("webhook %s answered %d (attempt %d)", self.safe_url, response.status_code, attempt)
            except Forbidden as e:
                self.last_error = str(e)
                log.error("webhook: %s; event not sent", e)
                break
            except httpx.HTTPError as e:
                self.last_error = type(e).__name__
                log.warning("webhook %s failed: %s (attempt %d)", self.safe_url, type(e).__name__, attempt)
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.failed += 1
        self._count("failed")
        log.error("webhook %s: gave up on a %s event after %d attempts", self.safe_url, kind, self.retries)
        return self.last_error or "failed"


def targets(settings: Settings) -> list[WebhookTarget]:
    """Every configured webhook: ``webhook_url`` (every call) and the ``webhooks`` list."""
    out = list(settings.webhooks)
    if settings.webhook_url:
        out.insert(0, WebhookTarget(url=settings.webhook_url, secret=settings.webhook_secret))
    return out


async def start_webhooks(engine: Engine, settings: Settings) -> list[Callable[[], Awaitable[None]]]:
    """Validate every target and start its poster; returns their stop functions.

    Raises:
        Forbidden: a URL that resolves to a forbidden address.
        ValueError: a malformed secret, or an unsigned webhook while authentication is on.
    """
    stops: list[Callable[[], Awaitable[None]]] = []
    for target in targets(settings):
        await asyncio.to_thread(check_webhook_url, target.url, settings.webhook_allow_link_local)
        if target.secret is None and engine.guard.auth.enabled:
            log.warning("webhook %s is not signed: set its secret (speechsvc keys webhook-secret makes one)",
                        safe_url(target.url))
        poster = WebhookPoster(engine.bus, target.url, settings.webhook_retries, settings.webhook_timeout_s,
                               secret=target.secret, tenant=target.tenant, events=target.events,
                               allow_link_local=settings.webhook_allow_link_local, engine=engine)
        poster.start()
        await poster.started()
        stops.append(poster.stop)
        log.info("webhook %s (tenant %s, events %s, %s)", poster.safe_url, target.tenant or "all",
                 ",".join(target.events) or "all", "signed" if target.secret else "unsigned")
    return stops
