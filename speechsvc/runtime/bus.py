"""Fan-out of every call's events to subscribers: the ``/v1/calls/{call_id}/events`` and ``/v1/events``
WebSocket endpoints and the optional webhook. Calls that arrive through platform adapters (Twilio, AudioSocket,
mod_audio_fork) are read here by the operator's application.

The bus carries typed :class:`~speechsvc.types.CallEvent` s, exactly as the call's own client receives them;
each consumer serialises them (:func:`speechsvc.protocol.event_dict`). A subscription sees one tenant's calls
(call ids are unique only within a tenant), or every tenant's (``tenant=None``: admins, operator-wide webhooks).
Each subscriber has a bounded queue; a
subscriber that falls behind loses its oldest events (counted) instead of slowing calls down. ``publish``
never blocks and never raises.

Thread-safety: used from the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

from speechsvc.types import CallEvent


@dataclass(eq=False)
class Subscription:
    call_id: str | None  # None = every call
    maxsize: int = 1000
    tenant: str | None = None  # None = every tenant
    # Only these event types (empty = every event).
    types: frozenset[str] = frozenset()
    queue: asyncio.Queue[CallEvent | None] = field(init=False)
    dropped: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.maxsize)

    async def events(self) -> AsyncIterator[CallEvent]:
        """Events until the bus closes (shutdown); what was queued before that is still delivered."""
        while not (self.closed and self.queue.empty()):
            event = await self.queue.get()
            if event is None:
                return
            yield event

    def close(self) -> None:
        self.closed = True
        if not self.queue.full():
            self.queue.put_nowait(None)

    def wants(self, event: CallEvent) -> bool:
        return ((self.call_id is None or self.call_id == event.call_id)
                and (self.tenant is None or self.tenant == event.tenant)
                and (not self.types or event.event.type in self.types))


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        # Called with every event, synchronously (cheap in-memory views such as the call index).
        self.listeners: list[Callable[[CallEvent], None]] = []

    def publish(self, event: CallEvent) -> None:
        """Deliver one event to every listener and every matching subscriber."""
        for listener in self.listeners:
            listener(event)
        for sub in self._subscriptions:
            if not sub.wants(event):
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self, call_id: str | None = None, tenant: str | None = None,
                  types: frozenset[str] = frozenset()) -> Iterator[Subscription]:
        """Events of one call (or every call) of one tenant (or every tenant), optionally of some types only."""
        sub = Subscription(call_id, self._queue_size, tenant, types)
        self._subscriptions.add(sub)
        try:
            yield sub
        finally:
            self._subscriptions.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def close(self, timeout_s: float) -> None:
        """Shutdown, after the calls have ended: every subscriber gets what is queued for it (the finals and
        ``ended`` of the drained calls), then its ``events()`` ends. Waits up to ``timeout_s`` for them to go."""
        for sub in list(self._subscriptions):
            sub.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._subscriptions and loop.time() < deadline:
            await asyncio.sleep(0.02)
