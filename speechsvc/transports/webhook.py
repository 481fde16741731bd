"""The webhook: every event of every call POSTed (JSON, the same body a subscriber receives) to a URL, in
order, retrying with backoff; the backlog is the subscriber's bounded queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx

from speechsvc.protocol import event_dict
from speechsvc.runtime.bus import EventBus
from speechsvc.types import CallEvent

log = logging.getLogger(__name__)


class WebhookPoster:
    def __init__(self, bus: EventBus, url: str, retries: int, timeout_s: float) -> None:
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
        with self.bus.subscribe() as sub:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                async for event in sub.events():
                    await self._post(client, event)

    async def _post(self, client: httpx.AsyncClient, event: CallEvent) -> None:
        body = event_dict(event)
        delay = 0.2
        for attempt in range(1, self.retries + 1):
            try:
                response = await client.post(self.url, json=body)
                if response.status_code < 500:
                    self.delivered += 1
                    return
                log.warning("webhook answered %d (attempt %d)", response.status_code, attempt)
            except httpx.HTTPError as e:
                log.warning("webhook failed: %s (attempt %d)", type(e).__name__, attempt)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        self.failed += 1
        log.error("webhook: gave up on a %s event after %d attempts", body["type"], self.retries)
