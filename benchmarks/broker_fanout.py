"""Fan-out through the Redis event broker (``SPEECHSVC_EVENT_BROKER``), on a local ``redis-server``.

    python benchmarks/broker_fanout.py [--events 20000] [--calls 6] [--note TEXT]
        [--out benchmarks/results/broker_fanout.json]

1. Throughput: replica A's bus publishes ``--events`` transcript events (about 300 bytes of JSON each) as fast as
   it can; replica B's bus (another broker client on the same loop) delivers them to a subscription. Events/s is
   the count over the time from the first publish to the last delivery (publisher queue, pipelined XADD, XREAD,
   parsing, delivery), with the number dropped by A's bounded publish queue.
2. Latency: two fake-engine servers (``tests/support/fakeserver.py``: production app and transports, no model) share the
   broker; ``--calls`` calls stream to replica B over ``/v1/stream``, with a ``/v1/events`` subscriber on B (local)
   and one on A (through Redis). For each final, the added latency is its arrival at A's subscriber minus its
   arrival at B's subscriber.

Needs ``redis-server`` on PATH (Debian package; ``make install`` installs it as root on Debian).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from speechsvc.config import Settings  # noqa: E402
from speechsvc.evaluation.machine import describe  # noqa: E402
from speechsvc.metrics import Metrics  # noqa: E402
from speechsvc.runtime.broker import RedisBroker  # noqa: E402
from speechsvc.runtime.bus import EventBus  # noqa: E402
from speechsvc.types import CallEvent, Transcript  # noqa: E402
from tests.support.redisserver import REDIS_SERVER, SKIP_REASON, RedisServer  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def throughput(url: str, n: int) -> dict[str, Any]:
    settings = Settings(event_broker=url, event_publish_queue=n)
    options_a, options_b = settings.broker(), settings.broker()
    assert options_a is not None and options_b is not None
    bus_a, bus_b = EventBus(), EventBus(queue_size=n + 10)
    metrics_a = Metrics()
    a, b = RedisBroker(options_a, bus_a, metrics_a), RedisBroker(options_b, bus_b, Metrics())
    await a.start()
    await b.start()
    await a.reading()
    await b.reading()
    text = "您好请问有什么可以帮您的我想查询一下我的账户余额"
    events = [CallEvent(f"bench{i % 50}", i, Transcript("customer", i, i * 1000, i * 1000 + 900, text, "zh", True,
                                                        0.9), tenant="default") for i in range(n)]
    with bus_b.subscribe() as sub:
        started = time.perf_counter()
        for i, event in enumerate(events):
            bus_a.publish(event)
            if i % 1000 == 999:
                await asyncio.sleep(0)  # a live replica's loop runs calls in between
        received = 0
        while received < n:
            try:
                await asyncio.wait_for(sub.queue.get(), 10)
            except TimeoutError:
                break
            received += 1
        elapsed = time.perf_counter() - started
    dropped = metrics_a.broker_dropped.labels("queue_full")._value.get()
    await a.stop()
    await b.stop()
    return {"events": n, "received": received, "dropped": dropped, "seconds": round(elapsed, 3),
            "events_per_s": round(received / elapsed)}


async def latency(url: str, calls: int) -> dict[str, Any]:
    import websockets

    from tests.support.clients import utterance, ws_call
    from tests.support.fakeserver import FakeServer

    arrivals: dict[str, dict[tuple[str, int], float]] = {"local": {}, "remote": {}}

    async def listen(ws: Any, where: str) -> None:
        async for raw in ws:
            event = json.loads(raw)
            if event["type"] == "transcript.final":
                arrivals[where][(event["call_id"], event["seq"])] = time.perf_counter()

    with FakeServer(event_broker=url) as a, FakeServer(event_broker=url) as b:
        for s in (a, b):
            assert s.engine.broker is not None
            s.run(s.engine.broker.reading())
        async with websockets.connect(b.ws("/v1/events")) as local, websockets.connect(a.ws("/v1/events")) as remote:
            tasks = [asyncio.ensure_future(listen(local, "local")), asyncio.ensure_future(listen(remote, "remote"))]
            await asyncio.sleep(0.1)
            audio = b"".join(utterance(hz, 0.6, 0.7) for hz in (440, 550, 660, 770))
            await asyncio.gather(*(ws_call(b.ws("/v1/stream"), audio, call_id=f"L{i}") for i in range(calls)))
            await asyncio.sleep(0.5)
            for task in tasks:
                task.cancel()
    added = [(arrivals["remote"][k] - t) * 1000 for k, t in arrivals["local"].items() if k in arrivals["remote"]]
    return {"calls": calls, "finals": len(arrivals["local"]), "finals_remote": len(arrivals["remote"]),
            "added_ms_median": round(statistics.median(added), 2), "added_ms_p95": round(percentile(added, 0.95), 2),
            "added_ms_max": round(max(added), 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "broker_fanout.json")
    args = parser.parse_args()
    if REDIS_SERVER is None:
        sys.exit(SKIP_REASON)
    with RedisServer() as redis_server:
        result = {"machine": describe(), "note": args.note, "redis": "redis-server on loopback, no persistence",
                  "throughput": await throughput(redis_server.url, args.events),
                  "latency": await latency(redis_server.url, args.calls)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
