"""One inference worker per model: a bounded priority queue of (item, future), micro-batching, and a
single executor thread that is the only caller of the model.

Callers (sessions, batch jobs, analysis stages) ``await worker.submit(item, priority)``. Lower priority values
run first: live finals before live partials before batch work, so batch jobs never starve live calls. When the
queue is full, ``submit`` raises :class:`~speechsvc.errors.Overloaded` at once instead of waiting; batch work
that must not be refused uses :meth:`InferenceWorker.submit_wait`, which waits for room (backpressure).

A batch that fails fails only its own futures, never the worker: when a batch of several items raises, each
item is run again alone, so one bad item (say, a language the model does not know) cannot fail other calls'
items that happened to share its batch.

Thread-safety: ``submit`` must be called from the event loop that started the worker; the model function runs
on the worker's own thread, one batch at a time.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
import time
from collections.abc import Callable, Sequence
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
    order: int
    item: Any = field(compare=False)
    future: asyncio.Future[Any] = field(compare=False)
    enqueued: float = field(compare=False, default=0.0)


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
        self._queue: asyncio.PriorityQueue[_Job[In, Out]] = asyncio.PriorityQueue(maxsize=options.max_queue)
        self._counter = itertools.count()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._on_batch = on_batch
        self._room = asyncio.Condition()
        self._queued: collections.Counter[int] = collections.Counter()  # queued items per priority
        self.busy = False

    @property
    def depth(self) -> int:
        """Items waiting (not counting the batch being run)."""
        return self._queue.qsize()

    def queued(self, upto: int) -> int:
        """Items waiting at priority ``upto`` or more urgent (what would run before a new item of that
        priority): live partials are not held back by batch work queued behind them."""
        return sum(n for priority, n in self._queued.items() if priority <= upto)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"worker-{self.name}")

    async def submit(self, item: In, priority: int = Priority.FINAL) -> Out:
        """Queue ``item`` and wait for its result.

        Raises:
            Overloaded: the queue is full.
            ShuttingDown: the worker is stopping.
            SpeechsvcError: the model failed on this item (InternalError for an unexpected failure).
        """
        if self._closing:
            raise ShuttingDown(f"{self.name} worker is shutting down")
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        job: _Job[In, Out] = _Job(int(priority), next(self._counter), item, future, time.perf_counter())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(f"{self.name} queue is full ({self.options.max_queue} items)") from None
        self._queued[job.priority] += 1
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

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self.options.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            for job in jobs:
                self._queued[job.priority] -= 1
            async with self._room:
                self._room.notify_all()
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            started = time.perf_counter()
            self.busy = True
            try:
                outcomes = await self._outcomes(loop, jobs)
            finally:
                self.busy = False
            if self._on_batch:
                self._on_batch(self.name, len(jobs), time.perf_counter() - started,
                               started - min(j.enqueued for j in jobs))
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
        while not self._queue.empty() or self.busy:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
