"""Fan-out of every call's events to subscribers: the ``/v1/calls/{call_id}/events`` and ``/v1/events``
WebSocket endpoints and the optional webhook. Calls that arrive through platform adapters (Twilio,
AudioSocket, mod_audio_fork) are read here by the operator's application.

Each subscriber has a bounded queue; a subscriber that falls behind loses its oldest events (counted)
instead of slowing calls down. ``publish`` never blocks and never raises.

Thread-safety: used from the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscription:
    call_id: str | None  # None = every call
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))
    dropped: int = 0


class EventBus:
    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def publish(self, event: dict[str, Any]) -> None:
        """Deliver one JSON-protocol event dict (with ``call_id``) to every matching subscriber."""
        for sub in list(self._subscriptions):
            if sub.call_id is not None and sub.call_id != event.get("call_id"):
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self, call_id: str | None = None) -> Any:
        sub = Subscription(call_id)
        self._subscriptions.add(sub)
        try:
            yield sub
        finally:
            self._subscriptions.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)


async def iterate(sub: Subscription) -> AsyncIterator[dict[str, Any]]:
    while True:
        yield await sub.queue.get()


class WebhookPoster:
    """POSTs every event (JSON) to a URL, in order, retrying with backoff; bounded backlog."""

    def __init__(self, bus: EventBus, url: str, retries: int = 5, timeout_s: float = 5.0) -> None:
        self.bus = bus
        self.url = url
        self.retries = retries
        self.timeout_s = timeout_s
        self.delivered = 0
        self.failed = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhook")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import httpx

        with self.bus.subscribe() as sub:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                async for event in iterate(sub):
                    await self._post(client, event)

    async def _post(self, client: Any, event: dict[str, Any]) -> None:
        import httpx

        delay = 0.2
        for attempt in range(1, self.retries + 1):
            try:
                response = await client.post(self.url, json=event)
                if response.status_code < 500:
                    self.delivered += 1
                    return
                log.warning("webhook %s answered %d (attempt %d)", self.url, response.status_code, attempt)
            except httpx.HTTPError as e:
                log.warning("webhook %s failed: %s (attempt %d)", self.url, e, attempt)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        self.failed += 1
        log.error("webhook %s: gave up on a %s event after %d attempts", self.url, event.get("type"), self.retries)
