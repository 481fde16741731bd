"""Several replicas sharing events through a real Redis (``tests/support/redisserver.py``: ``redis-server`` on a free
port, no persistence; the tests skip when it is absent). Each replica is the production app and shutdown stages with
the fake engine (``tests/support/fakeserver.py``), two or three in this process, one Redis between them."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
import websockets

from speechsvc.runtime.broker import parse_entry
from speechsvc.security.keys import KeyStore
from speechsvc.transports.webhook import start_webhooks
from tests.support.clients import bearer, frames, hz, read_until_closed, utterance, ws_call
from tests.support.fakes import pcm16, tone
from tests.support.fakeserver import FakeServer
from tests.support.redisserver import REDIS_SERVER, SKIP_REASON, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def replica(broker: RedisServer, **overrides: Any) -> FakeServer:
    return FakeServer(event_broker=broker.url, **overrides)


def following(*servers: FakeServer) -> None:
    """Wait until every replica's reader follows the stream."""
    for s in servers:
        assert s.engine.broker is not None
        s.run(s.engine.broker.reading(), timeout=10)


async def events_of(ws: websockets.ClientConnection, call_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """A subscription's events of one call, up to its ``ended``."""
    out: list[dict[str, Any]] = []

    async def read() -> None:
        async for raw in ws:
            event = json.loads(raw)
            if event["call_id"] == call_id:
                out.append(event)
                if event["type"] == "ended":
                    return

    await asyncio.wait_for(read(), timeout)
    return out


async def test_a_subscriber_on_one_replica_sees_a_call_on_another_in_order_with_the_same_json(
        broker: RedisServer) -> None:
    with replica(broker) as a, replica(broker) as b:
        following(a, b)
        async with websockets.connect(a.ws("/v1/events")) as every, \
                websockets.connect(a.ws("/v1/calls/CB1/events")) as one:
            await asyncio.sleep(0.1)
            client, code = await ws_call(b.ws("/v1/stream"), utterance(440) + utterance(660) + utterance(550),
                                         call_id="CB1")
            seen = await events_of(every, "CB1")
            only = await read_until_closed(one)
            one_code = one.close_code
    assert code == 1000 and hz([e["text"] for e in client if e["type"] == "transcript.final"]) == ["440", "660", "550"]
    assert seen == client, "the remote subscriber must see exactly what the call's client saw, in order"
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)
    assert only == client and one_code == 1000  # a one-call subscription ends with its remote call's ended
    assert a.engine.metrics.broker_events.labels("received")._value.get() >= len(client)
    assert b.engine.metrics.broker_events.labels("published")._value.get() >= len(client)


async def test_tenants_stay_apart_across_replicas(broker: RedisServer, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    store = KeyStore(keys)
    bank = store.create("bank", "stream,subscribe")[0]
    shop = store.create("shop", "stream,subscribe")[0]
    admin = store.create("ops", "admin")[0]
    with replica(broker, auth="required", keys_file=keys) as a, replica(broker, auth="required", keys_file=keys) as b:
        following(a, b)
        async with websockets.connect(a.ws("/v1/events"), additional_headers=bearer(bank)) as bank_sub, \
                websockets.connect(a.ws("/v1/events"), additional_headers=bearer(shop)) as shop_sub, \
                websockets.connect(a.ws("/v1/events?tenant=shop"), additional_headers=bearer(admin)) as ops_sub:
            await asyncio.sleep(0.1)
            # The same call id in two tenants, on the other replica.
            shop_call, _ = await ws_call(b.ws("/v1/stream"), utterance(660), shop, call_id="C7")
            bank_call, _ = await ws_call(b.ws("/v1/stream"), utterance(440), bank, call_id="C7")
            bank_seen = await events_of(bank_sub, "C7")
            shop_seen = await events_of(shop_sub, "C7")
            ops_seen = await events_of(ops_sub, "C7")
    assert bank_seen == bank_call and shop_seen == shop_call and ops_seen == shop_call
    assert hz([e["text"] for e in bank_seen if e["type"] == "transcript.final"]) == ["440"]


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: records (webhook-id, body); answers ``status``."""

    received: ClassVar[list[tuple[str, bytes]]] = []
    status: ClassVar[int] = 204
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        with Receiver.lock:
            Receiver.received.append((self.headers.get("webhook-id", ""), body))
        self.send_response(Receiver.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received, Receiver.status = [], 204
    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{http.server_port}/hook"
    http.shutdown()


SECRET = "whsec_" + base64.b64encode(b"a shared secret of both replicas").decode()


def with_webhook(s: FakeServer, url: str, **settings: Any) -> None:
    update = {"webhook_url": url, "webhook_secret": SECRET, **settings}
    stops = s.run(start_webhooks(s.engine, s.settings.model_copy(update=update)))
    s.http.stops.extend(stops)  # stopped by the server's drain, after the bus closed


async def until(condition: Any, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


async def test_the_webhook_gets_each_event_once_while_two_replicas_run(broker: RedisServer, receiver: str) -> None:
    with replica(broker) as a, replica(broker) as b:
        following(a, b)
        with_webhook(a, receiver)
        with_webhook(b, receiver)
        calls = await asyncio.gather(*(ws_call(s.ws("/v1/stream"), utterance(440) + utterance(660), call_id=f"W{i}")
                                       for i, s in enumerate((a, b, a, b))))
        expected = sorted((e["call_id"], e["seq"]) for events, _ in calls for e in events)
        await until(lambda: len(Receiver.received) >= len(expected))
        await asyncio.sleep(1.5)  # a duplicate would arrive by now
    bodies = [json.loads(body) for _, body in Receiver.received]
    got = sorted((e["call_id"], e["seq"]) for e in bodies)
    assert got == expected, "every event POSTed exactly once across the two replicas"
    assert len({mid for mid, _ in Receiver.received}) == len(expected)
    by_key = {(e["call_id"], e["seq"]): e for events, _ in calls for e in events}
    assert all(by_key[(e["call_id"], e["seq"])] == e for e in bodies)  # the same JSON as the client's


async def test_an_event_that_fails_every_retry_goes_to_the_dead_letter_stream(broker: RedisServer,
                                                                              receiver: str) -> None:
    Receiver.status = 503
    with replica(broker) as a:
        following(a)
        with_webhook(a, receiver, webhook_retries=2)
        client, _ = await ws_call(a.ws("/v1/stream"), utterance(440), call_id="D1")
        r = redis.Redis.from_url(broker.url, decode_responses=True)
        await until(lambda: r.xlen("speechsvc:events:dead") >= len(client))
        dead = r.xrange("speechsvc:events:dead")
        groups = r.xinfo_groups("speechsvc:events")
    assert len(Receiver.received) == 2 * len(client)  # two attempts each
    assert sorted(int(f["seq"]) for _, f in dead) == [e["seq"] for e in client]
    assert all(f["reason"] == "HTTP 503" and json.loads(f["json"]) in client for _, f in dead)
    assert groups and all(g["pending"] == 0 for g in groups)  # dead-lettered events are acknowledged
    assert a.engine.metrics.webhook_dead._value.get() == len(client)


async def test_a_replica_stopped_mid_call_ends_it_cleanly_and_its_events_reach_the_others(
        broker: RedisServer) -> None:
    with replica(broker) as a:
        b = replica(broker)
        with b:
            following(a, b)
            async with websockets.connect(a.ws("/v1/calls/S1/events")) as sub:
                await asyncio.sleep(0.1)
                async with websockets.connect(b.ws("/v1/stream"), max_size=None) as ws:
                    await ws.send(json.dumps({"type": "start", "call_id": "S1"}))
                    # One finished utterance, then speech still going on when the replica stops.
                    for frame in frames(utterance(440) + pcm16(tone(660, 1.0))):
                        await ws.send(frame)
                    await asyncio.sleep(0.5)
                    reading = asyncio.ensure_future(read_until_closed(ws))
                    await asyncio.to_thread(b.shutdown)
                    client = await reading
                    client_code = ws.close_code
                seen = await read_until_closed(sub)
    # The call's client: what was heard finished, ``ended`` (reason shutdown), then the transport's own
    # shutting_down error (not a call event: never published) and 1001.
    ended = [e["type"] for e in client].index("ended")
    assert client[ended]["reason"] == "shutdown" and client_code == 1001
    assert [e.get("code") for e in client[ended + 1:]] == ["shutting_down"]
    assert hz([e["text"] for e in client if e["type"] == "transcript.final"]) == ["440", "660"]
    assert seen == client[:ended + 1], "every event the stopped replica published reached the other replica"


async def test_calls_go_on_while_the_broker_is_down_and_events_flow_again_when_it_is_back(
        broker: RedisServer) -> None:
    with replica(broker) as a, replica(broker) as b:
        following(a, b)
        broker.stop()
        async with websockets.connect(b.ws("/v1/events")) as local:
            await asyncio.sleep(0.1)
            client, code = await ws_call(b.ws("/v1/stream"), utterance(440), call_id="O1")
            seen = await events_of(local, "O1")
        assert code == 1000 and seen == client  # local subscribers lose nothing
        assert b.engine.metrics.broker_errors.labels("publish")._value.get() >= 1
        broker.start()  # same port, empty: the replicas reconnect
        await until(lambda: a.engine.broker is not None and a.engine.broker.connected
                    and b.engine.broker is not None and b.engine.broker.connected)
        async with websockets.connect(a.ws("/v1/events")) as remote:
            await asyncio.sleep(0.1)
            client, _ = await ws_call(b.ws("/v1/stream"), utterance(660), call_id="O2")
            assert await events_of(remote, "O2") == client


async def test_events_a_killed_replica_took_and_never_settled_are_taken_over(broker: RedisServer,
                                                                             receiver: str) -> None:
    """A replica killed mid-delivery leaves its events pending in the webhook's group (played here by a consumer
    that reads and vanishes); a running replica claims them after ``event_claim_idle_s`` and POSTs them."""
    from speechsvc.runtime.bus import EventBus
    from speechsvc.transports.webhook import WebhookPoster

    r = redis.Redis.from_url(broker.url, decode_responses=True)
    group = WebhookPoster(EventBus(), receiver, 1, 1.0, secret=SECRET).group  # the target's group on every replica
    r.xgroup_create("speechsvc:events", group, id="$", mkstream=True)
    for seq, kind in enumerate(("ready", "transcript.final", "ended")):
        body = json.dumps({"type": kind, "version": 1, "call_id": "K1", "seq": seq})
        r.xadd("speechsvc:events", {"origin": "killed", "tenant": "default", "call_id": "K1", "seq": str(seq),
                                    "type": kind, "json": body})
    taken = r.xreadgroup(group, "killed", {"speechsvc:events": ">"})
    assert len(taken[0][1]) == 3
    with replica(broker, event_claim_idle_s=0.5) as a:
        following(a)
        with_webhook(a, receiver)
        await until(lambda: len(Receiver.received) >= 3)
        await asyncio.sleep(0.3)
        pending = r.xpending("speechsvc:events", group)["pending"]
    assert sorted(json.loads(body)["seq"] for _, body in Receiver.received) == [0, 1, 2]
    assert pending == 0


def test_stream_entries_that_are_not_events_are_skipped() -> None:
    assert parse_entry(None) is None
    assert parse_entry({"call_id": "x"}) is None
    assert parse_entry({"call_id": "x", "seq": "one", "tenant": "t", "type": "ended", "json": "{}"}) is None
    event = parse_entry({"call_id": "x", "seq": "3", "tenant": "t", "type": "ended", "json": "{}"})
    assert event is not None and event.seq == 3 and event.tenant == "t"
