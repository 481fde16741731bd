"""Batch jobs of the service: an embedded SQLite store (a restart loses no job) and one runner that works
the queue, a bounded number of jobs at a time, on the engine's shared workers at batch priority (live
calls first). Uploaded audio is deleted when its job ends unless ``keep_audio`` is set.

Thread-safety: the store serialises its own access; the runner lives on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechsvc.batch.outputs import OutputDir
from speechsvc.batch.runners import JobProgress, run_local
from speechsvc.runtime.engine import Engine

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,          -- uploading | queued | running | done | failed
    created REAL NOT NULL,
    updated REAL NOT NULL,
    request TEXT NOT NULL,        -- JSON: inputs, language, formats, uploaded
    progress TEXT NOT NULL,       -- JSON: total, done, skipped, failed, audio_s, errors
    error TEXT
)
"""


@dataclass
class Job:
    id: str
    state: str
    created: float
    updated: float
    request: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class JobStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock = threading.Lock()
        self._db = sqlite3.connect(directory / "jobs.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)

    def job_dir(self, job_id: str) -> Path:
        return self.directory / job_id

    def create(self, request: dict[str, Any], state: str = "queued") -> Job:
        now = time.time()
        job = Job(uuid.uuid4().hex, state, now, now, request, {"total": len(request["inputs"])})
        with self._lock:
            self._db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (job.id, job.state, now, now, json.dumps(request), json.dumps(job.progress), None))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def update(self, job_id: str, state: str | None = None, progress: dict[str, Any] | None = None,
               error: str | None = None) -> None:
        with self._lock:
            row = self._db.execute("SELECT state, progress, error FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return
            self._db.execute(
                "UPDATE jobs SET state = ?, progress = ?, error = ?, updated = ? WHERE id = ?",
                (state or row[0], json.dumps(progress) if progress is not None else row[1], error or row[2],
                 time.time(), job_id),
            )

    def set_request(self, job_id: str, request: dict[str, Any]) -> None:
        """Complete a job created while its files were uploading, and queue it."""
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET request = ?, progress = ?, state = 'queued', updated = ? WHERE id = ?",
                (json.dumps(request), json.dumps({"total": len(request["inputs"])}), time.time(), job_id),
            )

    def list(self, offset: int = 0, limit: int = 100) -> tuple[list[Job], int]:
        """Jobs newest first (a page of them) and how many there are."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC LIMIT ? OFFSET ?",
                                    (limit, offset)).fetchall()
            total = self._db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        return [self._job(row) for row in rows], int(total)

    def next_queued(self) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
        return self._job(row) if row else None

    def requeue_interrupted(self) -> int:
        """After a restart: jobs that were running go back to the queue (finished outputs are kept)."""
        with self._lock:
            return self._db.execute("UPDATE jobs SET state = 'queued' WHERE state = 'running'").rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        return Job(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6])


class JobRunner:
    """Works the queue: ``max_jobs`` jobs at a time, each with ``concurrency`` recordings in flight."""

    def __init__(self, engine: Engine, store: JobStore, max_jobs: int = 1, concurrency: int = 2,
                 keep_audio: bool = False) -> None:
        self.engine = engine
        self.store = store
        self.max_jobs = max_jobs
        self.concurrency = concurrency
        self.keep_audio = keep_audio
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        requeued = self.store.requeue_interrupted()
        if requeued:
            log.info("resuming %d interrupted jobs", requeued)
        self._loop_task = asyncio.get_running_loop().create_task(self._loop(), name="jobs")
        self._wake.set()

    def submit(self, request: dict[str, Any]) -> Job:
        job = self.store.create(request)
        self.wake()
        return job

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *(t for t in [self._loop_task] if t), return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while len(self._tasks) < self.max_jobs and (job := self.store.next_queued()) is not None:
                self.store.update(job.id, state="running")
                task = asyncio.get_running_loop().create_task(self._run(job))
                self._tasks.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _run(self, job: Job) -> None:
        request = job.request
        out = OutputDir(self.store.job_dir(job.id) / "out")

        def progress(p: JobProgress, _audio_s: float) -> None:
            self.store.update(job.id, progress=asdict(p))

        try:
            result = await run_local(self.engine, list(request["inputs"]), out, list(request["formats"]),
                                     request.get("language"), self.concurrency, progress)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.exception("job %s failed", job.id)
            self.store.update(job.id, state="failed", error=f"{type(e).__name__}: {e}")
            return
        self.store.update(job.id, state="done", progress=asdict(result))
        if request.get("uploaded") and not self.keep_audio:
            shutil.rmtree(self.store.job_dir(job.id) / "input", ignore_errors=True)
        log.info("job %s done: %d done, %d failed", job.id, result.done, result.failed)
