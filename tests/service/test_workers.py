"""The inference worker with fake model functions: priorities, cross-call batching, bounds, and that a failing
batch fails only its own items and never the worker."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from speechsvc.config import WorkerOptions
from speechsvc.errors import InternalError, Overloaded, ShuttingDown
from speechsvc.workers import InferenceWorker, Priority


def opts(max_batch: int, max_batch_cost_s: float, max_queue: int, nice: int, parallel: int = 1) -> WorkerOptions:
    return WorkerOptions(max_batch=max_batch, max_batch_cost_s=max_batch_cost_s, max_queue=max_queue, nice=nice,
                         parallel=parallel)


def double(batch: list[int]) -> list[int]:
    return [2 * x for x in batch]


async def test_results_in_order_and_batched() -> None:
    sizes: list[int] = []

    def run(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        return double(batch)

    worker = InferenceWorker("t", run, opts(max_batch=4, max_batch_cost_s=0.0, max_queue=100, nice=0))
    futures = [worker.submit(i) for i in range(10)]  # queued before the worker starts: they batch
    tasks = [asyncio.ensure_future(f) for f in futures]
    await asyncio.sleep(0)
    worker.start()
    assert await asyncio.gather(*tasks) == [2 * i for i in range(10)]
    assert max(sizes) == 4 and sum(sizes) == 10
    await worker.stop()


async def test_priority_finals_first() -> None:
    gate = threading.Event()
    order: list[int] = []

    def run(batch: list[int]) -> list[int]:
        gate.wait(5)
        order.extend(batch)
        return batch

    worker = InferenceWorker("t", run, opts(max_batch=1, max_batch_cost_s=0.0, max_queue=100, nice=0))
    worker.start()
    first = asyncio.ensure_future(worker.submit(0))
    await asyncio.sleep(0.05)  # the worker is now blocked inside run(0)
    later = [asyncio.ensure_future(worker.submit(i, p)) for i, p in
             [(1, Priority.BATCH), (2, Priority.PARTIAL), (3, Priority.FINAL)]]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, *later)
    assert order == [0, 3, 2, 1]
    await worker.stop()


async def test_full_queue_is_refused_at_once_but_batch_work_waits_for_room() -> None:
    gate = threading.Event()

    def run(batch: list[int]) -> list[int]:
        gate.wait(5)
        return batch

    worker = InferenceWorker("t", run, opts(max_batch=1, max_batch_cost_s=0.0, max_queue=2, nice=0))
    worker.start()
    running = asyncio.ensure_future(worker.submit(0))
    await asyncio.sleep(0.05)
    queued = [asyncio.ensure_future(worker.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="queue is full"):
        await worker.submit(3)
    waiting = asyncio.ensure_future(worker.submit_wait(4))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    gate.set()
    assert await asyncio.gather(running, *queued, waiting) == [0, 1, 2, 4]
    await worker.stop()


async def test_one_bad_item_fails_alone_and_the_worker_goes_on() -> None:
    def run(batch: list[int]) -> list[int]:
        if -1 in batch:
            raise ValueError("model cannot take -1")
        return double(batch)

    worker = InferenceWorker("t", run, opts(max_batch=8, max_batch_cost_s=0.0, max_queue=100, nice=0))
    tasks = [asyncio.ensure_future(worker.submit(i)) for i in (1, -1, 3)]
    await asyncio.sleep(0)
    worker.start()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results[0] == 2 and results[2] == 6
    assert isinstance(results[1], InternalError) and isinstance(results[1].__cause__, ValueError)
    assert await worker.submit(5) == 10  # still alive
    await worker.stop()


async def test_wrong_number_of_results_fails_the_batch_not_the_worker() -> None:
    calls = {"n": 0}

    def run(batch: list[int]) -> list[int]:
        calls["n"] += 1
        return [] if calls["n"] == 1 else double(batch)

    worker = InferenceWorker("t", run, opts(max_batch=8, max_batch_cost_s=0.0, max_queue=100, nice=0))
    worker.start()
    with pytest.raises(InternalError, match="returned 0 results for 1 items"):
        await worker.submit(1)
    assert await worker.submit(2) == 4


async def test_stop_finishes_queued_work_then_refuses() -> None:
    worker = InferenceWorker("t", double, opts(max_batch=2, max_batch_cost_s=0.0, max_queue=10, nice=0))
    worker.start()
    pending = [asyncio.ensure_future(worker.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    await worker.stop()
    assert [p.result() for p in pending] == [0, 2, 4, 6, 8]
    with pytest.raises(ShuttingDown):
        await worker.submit(1)


async def test_queued_counts_only_work_at_or_above_a_priority() -> None:
    gate = threading.Event()

    def run(batch: list[int]) -> list[int]:
        gate.wait(5)
        return batch

    worker = InferenceWorker("t", run, opts(max_batch=1, max_batch_cost_s=0.0, max_queue=100, nice=0))
    worker.start()
    first = asyncio.ensure_future(worker.submit(0))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(worker.submit(i, p)) for i, p in
            [(1, Priority.BATCH), (2, Priority.BATCH), (3, Priority.PARTIAL), (4, Priority.FINAL)]]
    await asyncio.sleep(0.05)
    assert worker.depth == 4 and worker.queued(upto=Priority.PARTIAL) == 2 and worker.queued(upto=Priority.FINAL) == 1
    gate.set()
    await asyncio.gather(first, *rest)
    assert worker.queued(upto=Priority.BATCH) == 0
    await worker.stop()


class Costly:
    """An item with an estimated cost (as AsrRequest has: seconds of audio to encode)."""

    def __init__(self, n: int, cost_s: float) -> None:
        self.n = n
        self.cost_s = cost_s


async def test_a_batch_holds_one_priority_and_is_bounded_in_cost() -> None:
    gate = threading.Event()
    batches: list[list[int]] = []

    def run(batch: list[Costly]) -> list[int]:
        gate.wait(5)
        batches.append([c.n for c in batch])
        return [c.n for c in batch]

    worker = InferenceWorker("t", run, opts(max_batch=8, max_batch_cost_s=10.0, max_queue=100, nice=0))
    worker.start()
    first = asyncio.ensure_future(worker.submit(Costly(0, 1.0)))
    await asyncio.sleep(0.05)  # the worker is blocked inside run([0])
    partials = [asyncio.ensure_future(worker.submit(Costly(n, 4.0), Priority.PARTIAL)) for n in (1, 2, 3)]
    finals = [asyncio.ensure_future(worker.submit(Costly(n, 4.0))) for n in (4, 5)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, *partials, *finals)
    # Finals first and alone; partials after, two of them (8 s) within the 10 s bound, the third in a batch of its own.
    assert batches == [[0], [4, 5], [1, 2], [3]]
    await worker.stop()


async def test_key_orders_within_a_priority_and_stale_items_are_not_run() -> None:
    gate = threading.Event()
    ran: list[int] = []

    def run(batch: list[int]) -> list[int]:
        gate.wait(5)
        ran.extend(batch)
        return batch

    worker = InferenceWorker("t", run, opts(max_batch=1, max_batch_cost_s=0.0, max_queue=100, nice=0))
    worker.start()
    first = asyncio.ensure_future(worker.submit(0))
    await asyncio.sleep(0.05)
    late = asyncio.ensure_future(worker.submit(1, Priority.PARTIAL, key=5.0))
    early = asyncio.ensure_future(worker.submit(2, Priority.PARTIAL, key=1.0))  # has waited longer: goes first
    stale = asyncio.ensure_future(worker.submit(3, Priority.PARTIAL, key=0.0, stale_after=0.01))
    await asyncio.sleep(0.1)
    gate.set()
    assert await asyncio.gather(first, late, early) == [0, 1, 2]
    with pytest.raises(Overloaded, match="stale"):
        await stale
    assert ran == [0, 2, 1] and worker.stale == 1
    assert worker.item_seconds(Priority.PARTIAL) > 0 and worker.expected_wait(Priority.FINAL) == 0
    await worker.stop()


async def test_parallel_lanes_run_batches_side_by_side_and_finals_still_go_first() -> None:
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    def run(batch: list[int]) -> list[int]:
        with lock:
            running.append(1)
            most[0] = max(most[0], len(running))
        time.sleep(0.05)
        with lock:
            running.pop()
        return [x * 10 for x in batch]

    worker = InferenceWorker("t", run, opts(max_batch=1, max_batch_cost_s=0.0, max_queue=100, nice=0, parallel=2))
    worker.start()
    results = await asyncio.gather(*(worker.submit(i, Priority.PARTIAL if i % 2 else Priority.FINAL)
                                     for i in range(8)))
    assert results == [i * 10 for i in range(8)] and most[0] == 2  # two batches at once, never more
    await worker.stop()
