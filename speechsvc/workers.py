"""One inference worker per model: a bounded priority queue of (item, future), micro-batching, and a
single executor thread that is the only caller of the model.

Callers (sessions, batch jobs) ``await worker.submit(item, priority)``. Lower priority values run first:
live finals before live partials before batch work, so batch jobs never starve live calls. When the
queue is full, ``submit`` raises :class:`~speechsvc.errors.Overloaded` at once instead of waiting.

Thread-safety: ``submit`` must be called from the event loop that started the worker; the model
function runs on the worker's own thread, one batch at a time.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from speechsvc.errors import Overloaded, ShuttingDown

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class Priority(enum.IntEnum):
    FINAL = 0
    PARTIAL = 1
    BATCH = 2


@dataclass(frozen=True)
class WorkerOptions:
    # Most items run in one model call (cross-call batching).
    max_batch: int = 8
    # How long the first item of a batch waits for company, in seconds (0 = take what is queued).
    max_wait_s: float = 0.0
    # Queued items beyond this are refused with Overloaded.
    max_queue: int = 256


@dataclass(order=True)
class _Job(Generic[In, Out]):
    priority: int
    order: int
    item: In = None  # type: ignore[assignment]
    future: asyncio.Future[Out] = None  # type: ignore[assignment]
    enqueued: float = 0.0


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
        self.busy = False

    @property
    def depth(self) -> int:
        """Items waiting (not counting the batch being run)."""
        return self._queue.qsize()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"worker-{self.name}")

    async def submit(self, item: In, priority: int = Priority.FINAL) -> Out:
        """Queue ``item`` and wait for its result.

        Raises:
            Overloaded: the queue is full.
            ShuttingDown: the worker is stopping.
        """
        if self._closing:
            raise ShuttingDown(f"{self.name} worker is shutting down")
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        job = _Job(int(priority), next(self._counter), item, future, time.perf_counter())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise Overloaded(f"{self.name} queue is full ({self.options.max_queue} items)") from None
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            if self.options.max_wait_s > 0 and self._queue.empty():
                await asyncio.sleep(self.options.max_wait_s)
            while len(jobs) < self.options.max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            jobs = [j for j in jobs if not j.future.cancelled()]
            if not jobs:
                continue
            started = time.perf_counter()
            self.busy = True
            try:
                results = await loop.run_in_executor(self._executor, self._run, [j.item for j in jobs])
            except Exception as e:
                log.exception("%s worker: batch of %d failed", self.name, len(jobs))
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            finally:
                self.busy = False
            elapsed = time.perf_counter() - started
            if self._on_batch:
                self._on_batch(self.name, len(jobs), elapsed, started - min(j.enqueued for j in jobs))
            for j, result in zip(jobs, results, strict=True):
                if not j.future.done():
                    j.future.set_result(result)

    async def stop(self) -> None:
        """Refuse new work, let queued work finish, then stop the thread."""
        self._closing = True
        while not self._queue.empty() or self.busy:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
