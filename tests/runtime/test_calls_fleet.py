"""The call index across replicas (fast tier): two replicas of the production app on the fake engine share a real
Redis (``tests/support/redisserver.py``; skipped, saying why, without ``redis-server``); ``/v1/calls`` on either shows
every replica's calls of the caller's tenant, each with the replica that holds it, folded to the same view the
holding replica has; another tenant's calls stay invisible, the same call id in two tenants stays two calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from speechsvc.runtime.call_index import CallIndex
from speechsvc.security.keys import KeyStore
from speechsvc.types import RemoteEvent
from tests.support.clients import bearer, utterance, ws_call
from tests.support.fakeserver import FakeServer
from tests.support.redisserver import REDIS_SERVER, SKIP_REASON, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason=SKIP_REASON)


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


async def calls_of(server: FakeServer, key: str, **params: Any) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.http_url, headers=bearer(key), timeout=10) as client:
        response = await client.get("/v1/calls", params=params)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()["calls"]
        return rows


async def test_every_replica_lists_every_replicas_calls_of_the_tenant(broker: RedisServer, tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    store = KeyStore(keys)
    bank = store.create("bank", "stream,subscribe")[0]
    shop = store.create("shop", "stream,subscribe")[0]
    admin = store.create("ops", "admin")[0]
    common = {"event_broker": broker.url, "auth": "required", "keys_file": keys}
    with FakeServer(replica_id="r1", **common) as a, FakeServer(replica_id="r2", **common) as b:
        for s in (a, b):
            assert s.engine.broker is not None
            s.run(s.engine.broker.reading(), timeout=10)
        await ws_call(a.ws("/v1/stream"), utterance(440), bank, call_id="K1")
        await ws_call(b.ws("/v1/stream"), utterance(660), bank, call_id="K2")
        await ws_call(b.ws("/v1/stream"), utterance(550), shop, call_id="K1")  # the same id, another tenant
        for _ in range(100):
            if len(await calls_of(a, admin)) == 3 and len(await calls_of(b, admin)) == 3:
                break
            await asyncio.sleep(0.05)
        for server in (a, b):
            seen = {(c["call_id"], c["replica"]) for c in await calls_of(server, bank)}
            assert seen == {("K1", "r1"), ("K2", "r2")}  # both replicas' calls, each with its holder
            assert {(c["call_id"], c["tenant"]) for c in await calls_of(server, shop)} == {("K1", "shop")}
            assert len(await calls_of(server, admin)) == 3
        local = {c["call_id"]: c for c in await calls_of(b, bank)}["K2"]
        remote = {c["call_id"]: c for c in await calls_of(a, bank)}["K2"]
        for field in ("transport", "legs", "last_text", "active", "end_reason", "started_at", "ended_at", "risk"):
            assert remote[field] == local[field], field  # folded from JSON to the same view
        async with httpx.AsyncClient(base_url=a.http_url, headers=bearer(bank), timeout=10) as client:
            one = (await client.get("/v1/calls/K2")).json()
            assert one["replica"] == "r2" and [e["type"] for e in one["events"]][-1] == "ended"
            assert (await client.get("/v1/calls/K1", headers=bearer(shop))).json()["tenant"] == "shop"


def test_a_remote_call_whose_replica_went_silent_is_forgotten() -> None:
    index = CallIndex(keep_ended_s=60.0, replica="me")
    ready = '{"type": "ready", "version": 1, "call_id": "X", "seq": 0, "transport": "ws", "legs": ["customer"]}'
    index.remote(RemoteEvent("X", 0, "t", "ready", ready), "gone")
    index.remote(RemoteEvent("Y", 3, "t", "transcript.final", '{"type": "transcript.final"}'), "gone")  # no anchor
    (key,) = index._calls
    assert key == ("t", "X") and index._calls[key].replica == "gone"
    index._calls[key].last_event_at -= 61
    index._forget_old()
    assert not index._calls
