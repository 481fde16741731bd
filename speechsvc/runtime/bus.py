"""Fan-out of every call's events to subscribers: the ``/v1/calls/{call_id}/events`` and ``/v1/events``
WebSocket endpoints and the optional webhook. Calls that arrive through platform adapters (Twilio, AudioSocket,
mod_audio_fork) are read here by the operator's application.

The bus carries typed :class:`~speechsvc.types.CallEvent` s, exactly as the call's own client receives them;
each consumer serialises them (:func:`speechsvc.protocol.event_dict`). Each subscriber has a bounded queue; a
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
    queue: asyncio.Queue[CallEvent] = field(init=False)
    dropped: int = 0

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.maxsize)

    async def events(self) -> AsyncIterator[CallEvent]:
        while True:
            yield await self.queue.get()


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
            if sub.call_id is not None and sub.call_id != event.call_id:
                continue
            if sub.queue.full():
                sub.queue.get_nowait()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    @contextlib.contextmanager
    def subscribe(self, call_id: str | None = None) -> Iterator[Subscription]:
        sub = Subscription(call_id, self._queue_size)
        self._subscriptions.add(sub)
        try:
            yield sub
        finally:
            self._subscriptions.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)
