"""The event broker: the :class:`~speechsvc.runtime.bus.EventBus` of every replica shared through one Redis
stream (``SPEECHSVC_EVENT_BROKER=redis://...``), so a subscriber or a webhook on any replica sees every replica's
calls.

- Publishing: :meth:`RedisBroker.offer` puts this replica's events on a bounded queue (full: dropped, counted in
  ``speechsvc_broker_dropped_total``; a call never waits for Redis); one task drains it in order, in pipelined
  ``XADD``s (``MAXLEN ~`` bounds the stream). A call lives on one replica and that replica's events are added in
  the order the call produced them, so the stream holds each call's events in order.
- Reading: one task follows the stream (``XREAD``) and hands other replicas' events to the local bus as
  :class:`~speechsvc.types.RemoteEvent` s: the JSON text that call's own client received, its call id, seq,
  tenant and type (what subscriptions filter on), and to the ``listeners`` with the replica that holds the call
  (the call index shows every replica's calls). This replica's own events were delivered locally already.
- Webhooks: :meth:`RedisBroker.feed` is a consumer group per webhook target (``XREADGROUP``/``XACK``): each event
  goes to one replica. A replica settles an event after its last attempt; one it gave up on goes to the
  dead-letter stream ``<stream>:dead`` (with the reason) and is acknowledged. An event a replica took and never
  settled (it was stopped or killed mid-delivery) is claimed by another after ``claim_idle_s`` (``XAUTOCLAIM``).

A broken or unreachable broker never fails a call: local subscribers still get every event of this replica's
calls, publishing retries with backoff (what does not fit the queue meanwhile is dropped, counted), and every
failure is a specific ``redis`` exception, logged when the broker goes away and when it comes back. Entries are
never logged (they carry transcripts), only their ids.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from speechsvc.config import BrokerOptions
from speechsvc.metrics import Metrics
from speechsvc.protocol import event_json
from speechsvc.runtime.bus import Delivery, EventBus, Feed
from speechsvc.security.network import safe_url
from speechsvc.types import BusEvent, CallEvent, RemoteEvent

log = logging.getLogger(__name__)

PUBLISH_BATCH = 256  # events per pipelined round trip
READ_COUNT = 500  # entries per XREAD
READ_BLOCK_MS = 1000  # how long one XREAD / XREADGROUP waits for new entries
GROUP_COUNT = 50  # entries per XREADGROUP / XAUTOCLAIM
READY_TIMEOUT_S = 5.0
SOCKET_TIMEOUT_S = 5.0  # above READ_BLOCK_MS
STOP_TIMEOUT_S = 3.0  # how long stop waits for its tasks


class Backoff:
    """Exponential delays between retries: 0.1 s doubling up to 5 s."""

    def __init__(self, first_s: float = 0.1, max_s: float = 5.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next = first_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.first_s


def entry_fields(event: BusEvent, origin: str) -> dict[str, str]:
    """One event as a stream entry: what subscriptions filter on, and the JSON every consumer sends.

    Raises:
        TypeError, ValueError: the event cannot be serialised (then no consumer could send it either).
    """
    return {"origin": origin, "tenant": event.tenant, "call_id": event.call_id, "seq": str(event.seq),
            "type": event.type, "json": event_json(event)}


Entry = tuple[str, dict[str, str] | None]


def stream_entries(reply: Any) -> list[Entry]:
    """The entries of an ``XREAD``/``XREADGROUP`` reply (RESP2: ``[[stream, [(id, fields), ...]], ...]``)."""
    return [(str(entry_id), fields) for _name, entries in reply or () for entry_id, fields in entries]


def parse_entry(fields: Mapping[str, str] | None) -> RemoteEvent | None:
    """A stream entry back as an event; None for an entry that is not one of ours (or was trimmed)."""
    if not fields:
        return None
    try:
        return RemoteEvent(call_id=fields["call_id"], seq=int(fields["seq"]), tenant=fields["tenant"],
                           type=fields["type"], json=fields["json"])
    except (KeyError, ValueError):
        return None


class RedisBroker:
    """One replica's side of the shared event stream (see the module's docstring)."""

    def __init__(self, options: BrokerOptions, bus: EventBus, metrics: Metrics) -> None:
        self.options = options
        self.bus = bus
        self.metrics = metrics
        self.dead_stream = f"{options.stream}:dead"
        self.connected = False
        self._queue: asyncio.Queue[CallEvent] = asyncio.Queue(maxsize=options.queue)
        self._in_flight = 0
        self._reading = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Redis | None = None
        # Called with each other replica's event and that replica's name (synchronously, on the event loop).
        self.listeners: list[Callable[[RemoteEvent, str], None]] = []

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            raise RuntimeError("the event broker is not started")
        return self._redis

    async def start(self) -> None:
        """Attach to the bus and start publishing and reading; returns at once (an unreachable broker is retried
        in the background, calls go on meanwhile).

        Raises:
            ValueError: a malformed broker URL.
        """
        self._redis = Redis.from_url(self.options.url, decode_responses=True, protocol=2,
                                     socket_timeout=SOCKET_TIMEOUT_S, socket_connect_timeout=2.0,
                                     health_check_interval=30)
        self.bus.remote = self
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._publish_loop(), name="broker publish"),
                       loop.create_task(self._read_loop(), name="broker read")]
        log.info("event broker %s, stream %s, replica %s", safe_url(self.options.url), self.options.stream,
                 self.options.replica)

    async def reading(self) -> None:
        """Wait until the reader follows the stream (events added from now on reach this replica)."""
        await self._reading.wait()

    async def stop(self) -> None:
        """Stop publishing and reading (after :meth:`flush`, which the bus's close does) and disconnect."""
        if self.bus.remote is self:
            self.bus.remote = None
        for task in self._tasks:
            task.cancel()
        _, stuck = await asyncio.wait(self._tasks, timeout=STOP_TIMEOUT_S) if self._tasks else (set(), set())
        if self._redis is not None:
            # Closing the connections also ends a read the cancellation did not reach (seen under load: a
            # blocking XREAD that outlived its task's cancellation and held the shutdown).
            await self._redis.aclose()
            self._redis = None
        if stuck:
            log.warning("event broker: %d tasks did not stop at once", len(stuck))
            await asyncio.wait(stuck, timeout=STOP_TIMEOUT_S)
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("event broker task %s failed: %r", task.get_name(), task.exception())
        self._tasks = []

    # ---- publishing --------------------------------------------------------------------------------------

    def offer(self, event: CallEvent) -> None:
        if self._queue.full():
            self.metrics.broker_dropped.labels("queue_full").inc()
            return
        self._queue.put_nowait(event)

    async def flush(self, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while (self._in_flight or not self._queue.empty()) and self.connected and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._in_flight or not self._queue.empty():
            log.warning("event broker: %d events not published at shutdown", self._in_flight + self._queue.qsize())

    async def _publish_loop(self) -> None:
        backoff = Backoff()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < PUBLISH_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._in_flight = len(batch)
            entries = []
            for event in batch:
                try:
                    entries.append(entry_fields(event, self.options.replica))
                except (TypeError, ValueError) as e:
                    self.metrics.broker_dropped.labels("unpublishable").inc()
                    log.error("event broker: a %s event of call %s cannot be serialised (%s); not published",
                              event.type, event.call_id, type(e).__name__)
            while entries:
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for fields in entries:
                            pipe.xadd(self.options.stream, fields,  # type: ignore[arg-type]
                                      maxlen=self.options.maxlen, approximate=True)
                        await pipe.execute()
                    break
                except RedisError as e:
                    self._down("publish", e)
                    await asyncio.sleep(backoff.next())
            if entries:
                backoff.reset()
                self._up()
                self.metrics.broker_events.labels("published").inc(len(entries))
            self._in_flight = 0

    # ---- reading -----------------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        backoff = Backoff()
        last_id: str | None = None
        stream = self.options.stream
        while True:
            try:
                if last_id is None:  # follow from the newest entry on
                    newest = await self.redis.xrevrange(stream, count=1)
                    last_id = str(newest[0][0]) if newest else "0-0"
                    self._reading.set()
                reply = await self.redis.xread({stream: last_id}, count=READ_COUNT, block=READ_BLOCK_MS)
            except RedisError as e:
                self._down("read", e)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            self._up()
            for entry_id, fields in stream_entries(reply):
                last_id = entry_id
                if fields and fields.get("origin") == self.options.replica:
                    continue  # delivered locally when it was published
                event = parse_entry(fields)
                if event is None:
                    self.metrics.broker_errors.labels("bad_entry").inc()
                    log.warning("event broker: entry %s of %s is not an event; skipped", entry_id, stream)
                    continue
                self.metrics.broker_events.labels("received").inc()
                self.bus.deliver(event)
                for listener in self.listeners:
                    listener(event, fields.get("origin", "") if fields else "")

    # ---- webhook groups ----------------------------------------------------------------------------------

    def feed(self, name: str, tenant: str | None, types: frozenset[str]) -> Feed:
        return GroupFeed(self, name, tenant, types)

    def _down(self, operation: str, error: RedisError) -> None:
        self.metrics.broker_errors.labels(operation).inc()
        if self.connected or not self._reading.is_set():
            log.warning("event broker %s: %s failed (%s: %s); retrying", safe_url(self.options.url), operation,
                        type(error).__name__, error)
        self.connected = False
        self.metrics.broker_connected.set(0)

    def _up(self) -> None:
        if not self.connected:
            log.info("event broker %s connected", safe_url(self.options.url))
        self.connected = True
        self.metrics.broker_connected.set(1)


class GroupFeed:
    """A consumer group on the stream for one webhook target: each event goes to one replica (this replica's
    consumer name is its replica id); entries for other tenants or types are acknowledged unseen."""

    def __init__(self, broker: RedisBroker, name: str, tenant: str | None, types: frozenset[str]) -> None:
        self.broker = broker
        self.group = name
        self.tenant = tenant
        self.types = types
        self._group_ok = False
        self._closing = False

    async def ready(self) -> None:
        try:
            await asyncio.wait_for(self._create_group(), READY_TIMEOUT_S)
        except (RedisError, TimeoutError) as e:
            log.warning("event broker: webhook group %s not created yet (%s); retrying in the background",
                        self.group, type(e).__name__)

    def close(self) -> None:
        self._closing = True

    def _wants(self, event: RemoteEvent) -> bool:
        return (self.tenant is None or self.tenant == event.tenant) and (not self.types or event.type in self.types)

    async def _create_group(self) -> None:
        if self._group_ok:
            return
        try:
            await self.broker.redis.xgroup_create(self.broker.options.stream, self.group, id="$", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._group_ok = True

    async def _next_entries(self, claim: bool) -> list[Entry]:
        redis, options = self.broker.redis, self.broker.options
        await self._create_group()
        if claim:  # entries another consumer took and never settled (stopped or killed mid-delivery)
            reply = await redis.xautoclaim(options.stream, self.group, options.replica,
                                           min_idle_time=int(options.claim_idle_s * 1000), start_id="0-0",
                                           count=GROUP_COUNT)
            claimed: list[Entry] = [(str(entry_id), fields) for entry_id, fields in reply[1]]
            if claimed:
                log.info("webhook group %s: took over %d unsettled events", self.group, len(claimed))
                return claimed
        block = None if self._closing else READ_BLOCK_MS
        return stream_entries(await redis.xreadgroup(self.group, options.replica, {options.stream: ">"},
                                                     count=GROUP_COUNT, block=block))

    async def deliveries(self) -> AsyncIterator[Delivery]:
        loop = asyncio.get_running_loop()
        backoff = Backoff()
        claim_every = min(self.broker.options.claim_idle_s / 2, 30.0)
        last_claim = float("-inf")
        while True:
            claim = loop.time() - last_claim > claim_every
            if claim:
                last_claim = loop.time()
            try:
                entries = await self._next_entries(claim)
            except RedisError as e:
                if isinstance(e, ResponseError) and "NOGROUP" in str(e):
                    self._group_ok = False  # the broker lost its data (restarted without persistence)
                self.broker._down("webhook_read", e)
                if self._closing:
                    return
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            if not entries:
                if self._closing:
                    return
                continue
            unseen = []
            for entry_id, fields in entries:
                event = parse_entry(fields)
                if event is None or not self._wants(event):
                    unseen.append(entry_id)
                    continue
                yield Delivery(event, entry_id)
            if unseen:
                await self._ack(unseen)

    async def settle(self, delivery: Delivery, dead_reason: str | None = None) -> None:
        broker = self.broker
        try:
            async with broker.redis.pipeline(transaction=True) as pipe:
                if dead_reason is not None:
                    fields = {**entry_fields(delivery.event, broker.options.replica), "reason": dead_reason,
                              "group": self.group, "entry": delivery.id}
                    pipe.xadd(broker.dead_stream, fields,  # type: ignore[arg-type]
                              maxlen=broker.options.maxlen, approximate=True)
                pipe.xack(broker.options.stream, self.group, delivery.id)
                await pipe.execute()
        except RedisError as e:  # stays pending: a replica takes it over after claim_idle_s
            broker._down("webhook_ack", e)
            return
        if dead_reason is not None:
            broker.metrics.webhook_dead.inc()

    async def _ack(self, ids: list[str]) -> None:
        try:
            await self.broker.redis.xack(self.broker.options.stream, self.group, *ids)
        except RedisError as e:
            self.broker._down("webhook_ack", e)
