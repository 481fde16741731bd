"""One inference worker per model: a bounded priority queue of (item, future), micro-batching, and a
single executor thread that is the only caller of the model (or ``WorkerOptions.parallel`` threads, each running
one batch, for a model that takes concurrent calls: CTranslate2 with ``inter_threads``).

Callers (sessions, batch jobs, analysis stages) ``await worker.submit(item, priority)``. Lower priority values
run first: live finals before live partials before batch work, so batch jobs never starve live calls. When the
queue is full, ``submit`` raises :class:`~speechsvc.errors.Overloaded` at once instead of waiting; batch work
that must not be refused uses :meth:`InferenceWorker.submit_wait`, which waits for room (backpressure).

A batch holds items of one priority only (a final never shares a batch with partials, so it never waits for
partials to be decoded), and is bounded in cost as well as in items: items that have a ``cost_s`` (estimated model
seconds of work, e.g. encoder seconds for ASR) are added while the batch stays within
``WorkerOptions.max_batch_cost_s``, so an urgent item that arrives while a batch runs waits for at most one short
batch. Within a priority, items run in the order of their ``key`` (default: arrival), so a caller can put the
longest-waiting call first. An item submitted with ``stale_after`` (seconds) that has waited longer than that when
its turn comes is not run at all: its future fails with :class:`~speechsvc.errors.Overloaded` (a partial that
would arrive too late to be worth showing).

A batch that fails fails only its own futures, never the worker: when a batch of several items raises, each
item is run again alone, so one bad item (say, a language the model does not know) cannot fail other calls'
items that happened to share its batch.

Thread-safety: ``submit`` must be called from the event loop that started the worker; the model function runs
on the worker's own thread(s), one batch at a time per thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import enum
import heapq
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from speechsvc.config import WorkerOptions
from speechsvc.errors import InternalError, Overloaded, ShuttingDown, SpeechsvcError

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class Priority(enum.IntEnum):
    FINAL = 0
    PARTIAL = 1
    BATCH = 2


@dataclass(order=True)
class _Job(Generic[In, Out]):
    priority: int
    key: float  # order within a priority (arrival time unless the caller says otherwise)
    order: int
    item: Any = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    enqueued: float = field(compare=False, default=0.0)
    deadline: float = field(compare=False, default=math.inf)  # not run when its turn comes after this


def name_os_thread(name: str) -> str:
    """Give the calling thread ``name`` in the OS too (``/proc/PID/task/*/comm``, top -H), so CPU per thread
    can be told apart; threads a native library starts from this thread inherit it. Returns the previous name.
    Best effort: only Linux has ``prctl``."""
    try:
        libc = ctypes.CDLL(None)
        old = ctypes.create_string_buffer(16)
        libc.prctl(16, old, 0, 0, 0)  # PR_GET_NAME
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
        return old.value.decode(errors="replace")
    except (OSError, AttributeError):
        return name


@contextlib.contextmanager
def os_thread_named(name: str) -> Iterator[None]:
    """The calling thread is called ``name`` meanwhile: a native library's thread pool created inside (e.g.
    CTranslate2's compute threads at the first decode) carries that name."""
    old = name_os_thread(name)
    try:
        yield
    finally:
        name_os_thread(old)


def _thread_setup(name: str, nice: int) -> None:
    """A worker thread's OS name, and its niceness on top of the process's (Linux: per thread)."""
    name_os_thread(name)
    if nice > 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0) + nice)
        except OSError as e:
            log.warning("cannot lower the priority of the %s thread: %s", name, e)


def cost_of(item: object) -> float:
    """Estimated model seconds of an item: its ``cost_s`` when it has one, else 0 (bounded by count only)."""
    cost = getattr(item, "cost_s", 0.0)
    return float(cost) if isinstance(cost, int | float) else 0.0


class InferenceWorker(Generic[In, Out]):
    """Owns one model function ``run(batch) -> results`` and feeds it batches from a bounded queue."""

    def __init__(
        self,
        name: str,
        run: Callable[[list[In]], Sequence[Out]],
        options: WorkerOptions,
        on_batch: Callable[[str, int, float, float], None] | None = None,
    ) -> None:
        self.name = name
        self._run = run
        self.options = options
        self._heap: list[_Job[In, Out]] = []  # bounded by options.max_queue
        self._wake = asyncio.Event()
        self._counter = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=max(1, options.parallel), thread_name_prefix=f"infer-{name}",
                                            initializer=_thread_setup, initargs=(f"infer-{name}", options.nice))
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._on_batch = on_batch
        self._room = asyncio.Condition()
        self._queued: collections.Counter[int] = collections.Counter()  # queued items per priority
        # Batches in flight, per lane: (perf_counter() when it started, its expected model seconds).
        self._running: dict[int, tuple[float, float]] = {}
        # Model seconds per item, moving average per priority: what a caller can expect to wait.
        self._item_s: dict[int, float] = {}
        self.stale = 0  # items dropped because their turn came after their stale_after

    @property
    def busy(self) -> bool:
        """A batch is running."""
        return bool(self._running)

    @property
    def depth(self) -> int:
        """Items waiting (not counting the batch being run)."""
        return len(self._heap)

    def item_seconds(self, priority: int) -> float:
        """Recent model seconds per item of this priority (0 before the first batch)."""
        return self._item_s.get(priority, 0.0)

    def expected_wait(self, priority: int) -> float:
        """Seconds a new item of ``priority`` would wait before its batch starts, from the items queued ahead of
        it and the batch in flight (moving averages; an estimate, not a promise)."""
        lanes = max(1, self.options.parallel)
        ahead = sum(n * self._item_s.get(p, 0.0) for p, n in self._queued.items() if p <= priority) / lanes
        if len(self._running) >= lanes:  # every lane busy: the first to finish takes it
            now = time.perf_counter()
            ahead += min(max(0.0, expected - (now - started)) for started, expected in self._running.values())
        return ahead

    def queued(self, upto: int) -> int:
        """Items waiting at priority ``upto`` or more urgent (what would run before a new item of that
        priority): live partials are not held back by batch work queued behind them."""
        return sum(n for priority, n in self._queued.items() if priority <= upto)

    def start(self) -> None:
        if not self._tasks:
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._loop(lane), name=f"worker-{self.name}-{lane}")
                           for lane in range(max(1, self.options.parallel))]

    async def submit(self, item: In, priority: int = Priority.FINAL, *, key: float | None = None,
                     stale_after: float | None = None) -> Out:
        """Queue ``item`` and wait for its result.

        Args:
            key: order among items of the same priority, lower first (default: arrival time).
            stale_after: seconds; if the item has not started by then, it is not run (Overloaded).

        Raises:
            Overloaded: the queue is full, or the item went stale.
            ShuttingDown: the worker is stopping.
            SpeechsvcError: the model failed on this item (InternalError for an unexpected failure).
        """
        if self._closing:
            raise ShuttingDown(f"{self.name} worker is shutting down")
        if len(self._heap) >= self.options.max_queue:
            raise Overloaded(f"{self.name} queue is full ({self.options.max_queue} items)")
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        now = time.perf_counter()
        deadline = now + stale_after if stale_after is not None else math.inf
        job: _Job[In, Out] = _Job(int(priority), now if key is None else key, next(self._counter), item, future,
                                  now, deadline)
        heapq.heappush(self._heap, job)
        self._queued[job.priority] += 1
        self._wake.set()
        return await future

    async def submit_wait(self, item: In, priority: int = Priority.BATCH) -> Out:
        """Like :meth:`submit`, but waits for room in the queue instead of refusing (batch backpressure).

        Raises:
            ShuttingDown: the worker is stopping.
            SpeechsvcError: the model failed on this item.
        """
        while True:
            try:
                return await self.submit(item, priority)
            except Overloaded:
                async with self._room:
                    await self._room.wait()

    def _pop(self) -> _Job[In, Out] | None:
        """The next job worth running (cancelled and stale ones are dropped on the way), or None."""
        now = time.perf_counter()
        while self._heap:
            job = heapq.heappop(self._heap)
            self._queued[job.priority] -= 1
            if job.future.done():
                continue
            if now > job.deadline:
                self.stale += 1
                job.future.set_exception(Overloaded(f"{self.name}: item went stale before its turn"))
                continue
            return job
        return None

    def _batch(self) -> list[_Job[In, Out]]:
        """The next batch: the most urgent job, then more of the same priority while count and cost allow."""
        first = self._pop()
        if first is None:
            return []
        jobs = [first]
        budget = self.options.max_batch_cost_s
        cost = cost_of(first.item)
        while len(jobs) < self.options.max_batch and self._heap and self._heap[0].priority == first.priority:
            if budget and cost + cost_of(self._heap[0].item) > budget:
                break
            job = self._pop()
            if job is None:
                break
            jobs.append(job)
            cost += cost_of(job.item)
        return jobs

    async def _loop(self, lane: int) -> None:
        """One lane: takes the next batch whenever its previous one is done (lanes share the queue)."""
        loop = asyncio.get_running_loop()
        while True:
            while not self._heap:
                self._wake.clear()
                await self._wake.wait()
            jobs = self._batch()
            async with self._room:
                self._room.notify_all()
            if not jobs:
                continue
            priority = jobs[0].priority
            started = time.perf_counter()
            self._running[lane] = (started, self._item_s.get(priority, 0.0) * len(jobs))
            try:
                outcomes = await self._outcomes(loop, jobs)
            finally:
                del self._running[lane]
            took = time.perf_counter() - started
            previous = self._item_s.get(priority)
            self._item_s[priority] = took / len(jobs) if previous is None else 0.8 * previous + 0.2 * took / len(jobs)
            if self._on_batch:
                self._on_batch(self.name, len(jobs), took, started - min(j.enqueued for j in jobs))
            for job, outcome in zip(jobs, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    async def _outcomes(self, loop: asyncio.AbstractEventLoop, jobs: list[_Job[In, Out]]) -> list[Any]:
        """Run the batch; on failure run each item alone, so only the items that fail get an error."""
        try:
            return await self._call(loop, [j.item for j in jobs])
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - isolated per item below, never kills the worker
            if len(jobs) == 1:
                return [self._error(e)]
            log.warning("%s worker: a batch of %d failed (%s); running its items one by one",
                        self.name, len(jobs), type(e).__name__)
        outcomes: list[Any] = []
        for job in jobs:
            try:
                outcomes.extend(await self._call(loop, [job.item]))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - becomes this item's error
                outcomes.append(self._error(e))
        return outcomes

    async def _call(self, loop: asyncio.AbstractEventLoop, items: list[In]) -> list[Any]:
        results = list(await loop.run_in_executor(self._executor, self._run, items))
        if len(results) != len(items):
            raise InternalError(f"{self.name} model returned {len(results)} results for {len(items)} items")
        return results

    def _error(self, e: Exception) -> SpeechsvcError:
        if isinstance(e, SpeechsvcError):
            return e
        log.error("%s worker: item failed", self.name, exc_info=e)
        error = InternalError(f"{self.name} failed on this item: {type(e).__name__}")
        error.__cause__ = e
        return error

    async def stop(self) -> None:
        """Refuse new work, let queued work finish, then stop the thread."""
        self._closing = True
        async with self._room:
            self._room.notify_all()
        while self._heap or self.busy:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
