"""Fan-out of every call's events to subscribers: the ``/v1/calls/{call_id}/events`` and ``/v1/events``
WebSocket endpoints and the optional webhook. Calls that arrive through platform adapters (Twilio, AudioSocket,
mod_audio_fork) are read here by the operator's application.

The bus carries typed :class:`~speechsvc.types.CallEvent` s, exactly as the call's own client receives them;
each consumer serialises them (:func:`speechsvc.protocol.event_dict`). A subscription sees one tenant's calls
(call ids are unique only within a tenant), or every tenant's (``tenant=None``: admins, operator-wide webhooks).
Each subscriber has a bounded queue; a
subscriber that falls behind loses its oldest events (counted) instead of slowing calls down. ``publish``
never blocks and never raises.

With a :class:`Remote` attached (the Redis broker, :mod:`speechsvc.runtime.broker`), ``publish`` also hands each
event to it (a bounded queue, never blocking), and it feeds other replicas' events back through :meth:`deliver`
as :class:`~speechsvc.types.RemoteEvent` s (already serialised): subscriptions see every replica's calls. Local
listeners (the call index) see this replica's calls only. A webhook reads a :class:`Feed` (:meth:`EventBus.feed`):
without a broker, a subscription; with one, a consumer group shared by the replicas, so each event is delivered
once whichever replica runs it.

Thread-safety: used from the event loop only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from speechsvc.types import BusEvent, CallEvent


@dataclass(frozen=True)
class Delivery:
    """One event a :class:`Feed` hands to its consumer, who settles it once handled."""

    event: BusEvent
    # The broker's id of the entry ("" for an in-process feed); stable across replicas and retries.
    id: str = ""


class Feed(Protocol):
    """Events for one consumer that must handle each once (a webhook target)."""

    async def ready(self) -> None:
        """Wait (bounded) until events published from now on will be delivered."""

    def deliveries(self) -> AsyncIterator[Delivery]:
        """Events until the feed closes (shutdown); what was owed before that is still delivered."""

    async def settle(self, delivery: Delivery, dead_reason: str | None = None) -> None:
        """The event was handled (``dead_reason`` None: delivered or refused) or gave up on (dead-lettered)."""

    def close(self) -> None:
        """Shutdown: deliver what is owed now, then end :meth:`deliveries`."""


class Remote(Protocol):
    """Where events go beyond this process (the Redis broker)."""

    def offer(self, event: CallEvent) -> None:
        """Queue one event for publishing; never blocks or raises."""

    async def flush(self, timeout_s: float) -> None:
        """Wait (bounded) until what was offered is published."""

    def feed(self, name: str, tenant: str | None, types: frozenset[str]) -> Feed:
        """A feed shared by every replica under ``name``: each event goes to one of them."""


@dataclass(eq=False)
class Subscription:
    call_id: str | None  # None = every call
    maxsize: int = 1000
    tenant: str | None = None  # None = every tenant
    # Only these event types (empty = every event).
    types: frozenset[str] = frozenset()
    queue: asyncio.Queue[BusEvent | None] = field(init=False)
    dropped: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.maxsize)

    async def events(self) -> AsyncIterator[BusEvent]:
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

    def wants(self, event: BusEvent) -> bool:
        return ((self.call_id is None or self.call_id == event.call_id)
                and (self.tenant is None or self.tenant == event.tenant)
                and (not self.types or event.type in self.types))


class LocalFeed:
    """A :class:`Feed` over one subscription of this process (no broker): settling is a no-op."""

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub

    async def ready(self) -> None:
        return None

    async def deliveries(self) -> AsyncIterator[Delivery]:
        async for event in self.sub.events():
            yield Delivery(event)

    async def settle(self, delivery: Delivery, dead_reason: str | None = None) -> None:
        return None

    def close(self) -> None:
        self.sub.close()


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._queue_size = queue_size
        self._subscriptions: set[Subscription] = set()
        self._feeds: set[Feed] = set()
        # Called with every event of this replica's calls, synchronously (cheap in-memory views such as the
        # call index).
        self.listeners: list[Callable[[CallEvent], None]] = []
        # The broker, when events are shared between replicas.
        self.remote: Remote | None = None

    def publish(self, event: CallEvent) -> None:
        """Deliver one event of this replica's calls to every listener, every matching subscriber and the
        broker."""
        for listener in self.listeners:
            listener(event)
        self.deliver(event)
        if self.remote is not None:
            self.remote.offer(event)

    def deliver(self, event: BusEvent) -> None:
        """Hand one event to every matching subscriber (the broker calls this with other replicas' events)."""
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

    @contextlib.contextmanager
    def feed(self, name: str, tenant: str | None = None, types: frozenset[str] = frozenset()) -> Iterator[Feed]:
        """Events for a consumer that handles each once (a webhook target named ``name``, the same on every
        replica): with a broker, every replica's events, each to one replica; otherwise this replica's."""
        if self.remote is None:
            with self.subscribe(None, tenant, types) as sub:
                local = LocalFeed(sub)
                self._feeds.add(local)
                try:
                    yield local
                finally:
                    self._feeds.discard(local)
            return
        shared = self.remote.feed(name, tenant, types)
        self._feeds.add(shared)
        try:
            yield shared
        finally:
            self._feeds.discard(shared)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def close(self, timeout_s: float) -> None:
        """Shutdown, after the calls have ended: every subscriber gets what is queued for it (the finals and
        ``ended`` of the drained calls), then its ``events()`` ends; the broker gets what it was offered, then
        each feed delivers what it owes and ends. Waits up to ``timeout_s`` for them to go."""
        for sub in list(self._subscriptions):
            sub.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self.remote is not None:
            await self.remote.flush(timeout_s)
        for feed in list(self._feeds):
            feed.close()
        while (self._subscriptions or self._feeds) and loop.time() < deadline:
            await asyncio.sleep(0.02)
