"""One replica's job runner: claims items from the store (any replica's jobs), works ``slots`` of them at a time
on the engine's shared workers at batch priority (live calls first), and keeps its leases alive by heartbeat.

- An item whose output already exists (its replica died after writing it) is recorded ``skipped``, not run
  again; outputs are written atomically, so a finished one is complete.
- An item started ``max_attempts`` times without finishing (a "poison" input that kills the process) is
  failed, not run again.
- A job's items stop at the next item boundary when it is deleted (its queued items are never claimed).
- The replica that finishes a job's last item writes the summary, removes uploads (unless ``keep_audio``) and
  hands the job to ``on_finished`` (the completion callback).
- Stopping hands this replica's claimed items back to the queue; a replica killed holds them until their lease
  expires, then another replica takes them over.

Thread-safety: lives on the event loop; store calls run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from speechsvc.batch.files import load_audio
from speechsvc.batch.jobs.model import Claim, Job, JobStore, StoreUnavailable
from speechsvc.batch.outputs import OutputDir, is_done, write_job_summary, write_outputs
from speechsvc.batch.recording import analyze_recording
from speechsvc.batch.speakers import for_engine
from speechsvc.errors import SpeechsvcError
from speechsvc.runtime.broker import Backoff
from speechsvc.runtime.engine import Engine

log = logging.getLogger(__name__)

STALE_UPLOAD_S = 3600.0  # an upload not completed in this long lost its replica


@dataclass(frozen=True)
class RunnerOptions:
    """How one replica works the shared queue."""

    # This replica's name: the owner of its claims, shown per result.
    replica: str
    # Items in flight at once on this replica.
    slots: int = 2
    # A claim not renewed for this long is taken over by another replica (its holder died).
    lease_s: float = 30.0
    # How often the queue is looked at when nothing woke the runner (another replica's new job).
    poll_s: float = 1.0
    # Keep uploaded audio after its job ends.
    keep_audio: bool = False


Finished = Callable[[Job], Awaitable[None]]


class JobRunner:
    def __init__(self, engine: Engine, store: JobStore, options: RunnerOptions,
                 on_finished: Finished | None = None) -> None:
        self.engine = engine
        self.store = store
        self.options = options
        self.on_finished = on_finished
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="jobs")
        self._wake.set()

    def submit(self, request: dict[str, Any], tenant: str = "default", webhook_url: str | None = None) -> Job:
        job = self.store.create(request, tenant=tenant, webhook_url=webhook_url)
        self.wake()
        return job

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, stop the items in flight and hand them back to the queue."""
        self._stopping = True
        if self._loop_task:
            self._loop_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *(t for t in [self._loop_task] if t), return_exceptions=True)
        with contextlib.suppress(StoreUnavailable):
            released = await asyncio.to_thread(self.store.release, self.options.replica)
            if released:
                log.info("handed %d job items back to the queue", released)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = Backoff()
        heartbeat_every = self.options.lease_s / 3
        last_heartbeat = float("-inf")
        last_cleanup = float("-inf")
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.options.poll_s)
            self._wake.clear()
            try:
                if loop.time() - last_heartbeat > heartbeat_every:
                    await asyncio.to_thread(self.store.renew, self.options.replica, self.options.lease_s)
                    last_heartbeat = loop.time()
                if loop.time() - last_cleanup > self.options.lease_s:
                    await self._clean_up()
                    last_cleanup = loop.time()
                free = self.options.slots - len(self._tasks)
                claims = await asyncio.to_thread(self.store.claim, self.options.replica, free, self.options.lease_s)
            except StoreUnavailable as e:
                log.warning("jobs: %s; retrying", e)
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            for claim in claims:
                task = loop.create_task(self._run(claim), name=f"job {claim.job_id} item {claim.index}")
                self._tasks.add(task)
                task.add_done_callback(self._finished)

    async def _clean_up(self) -> None:
        for job_id in await asyncio.to_thread(self.store.purge_deleted):
            await asyncio.to_thread(shutil.rmtree, self.store.job_dir(job_id), True)
            log.info("job %s deleted", job_id)
        await asyncio.to_thread(self.store.fail_stale_uploads, STALE_UPLOAD_S)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job item task failed: %r", task.exception())
        self._wake.set()

    async def _run(self, claim: Claim) -> None:
        state, error, audio_s = await self._work(claim)
        try:
            held = await asyncio.to_thread(self.store.finish, claim, self.options.replica, state, error, audio_s)
            if not held:
                log.warning("job %s item %d: the lease went to another replica; its result is theirs",
                            claim.job_id, claim.index)
                return
            job = await asyncio.to_thread(self.store.complete_if_finished, claim.job_id)
        except StoreUnavailable as e:  # the lease runs out and another replica (or this one) runs it again
            log.error("job %s item %d: cannot record its end (%s)", claim.job_id, claim.index, e)
            return
        if job is not None:
            await self._complete(job)

    async def _work(self, claim: Claim) -> tuple[str, str | None, float]:
        """Run one item; (state, error, seconds of audio)."""
        if claim.attempts > self.store.max_attempts:
            log.error("job %s item %d interrupted %d times; failed, not retried", claim.job_id, claim.index,
                      claim.attempts - 1)
            return "failed", (f"interrupted {claim.attempts - 1} times (the service stopped while running it); "
                              "not retried"), 0.0
        out = await asyncio.to_thread(OutputDir, self.store.job_dir(claim.job_id) / "out")
        if await asyncio.to_thread(is_done, out, claim.input):
            return "skipped", None, 0.0
        try:
            audio, rate = await asyncio.to_thread(load_audio, claim.input, self.engine.settings.max_recording_s)
            split = for_engine(self.engine, claim.speakers) if claim.speakers else None
            report = await analyze_recording(self.engine, audio, claim.input, claim.language, speaker_split=split,
                                             source_rate=rate)
            await asyncio.to_thread(write_outputs, out, claim.input, report, list(claim.formats), None)
        except (SpeechsvcError, OSError, ValueError) as e:
            log.error("job %s item %d: %s", claim.job_id, claim.index, e)
            return "failed", f"{type(e).__name__}: {e}", 0.0
        except Exception as e:  # a bug: the item is failed with it, never left running (then retried)
            log.exception("job %s item %d failed", claim.job_id, claim.index)
            return "failed", f"{type(e).__name__}: {e}", 0.0
        return "done", None, report.duration_s

    async def _complete(self, job: Job) -> None:
        out = OutputDir(self.store.job_dir(job.id) / "out")
        errors = job.progress.get("errors", {})
        await asyncio.to_thread(write_job_summary, out, list(job.request["inputs"]), errors)
        if job.request.get("uploaded") and not self.options.keep_audio:
            await asyncio.to_thread(shutil.rmtree, self.store.job_dir(job.id) / "input", True)
        log.info("job %s done: %d done, %d skipped, %d failed", job.id, job.progress.get("done", 0),
                 job.progress.get("skipped", 0), job.progress.get("failed", 0))
        if self.on_finished is not None and job.webhook_url:
            await self.on_finished(job)
