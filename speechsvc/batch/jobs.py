"""Batch jobs of the service: an embedded SQLite store (a restart loses no job) and one runner that works
the queue, a bounded number of jobs at a time, on the engine's shared workers at batch priority (live
calls first). Uploaded audio is deleted when its job ends unless ``keep_audio`` is set.

Every job belongs to a tenant (the submitting key's). The store's folder is 0700 and its files 0600: it holds
transcripts. A job that was running when the process died is queued again at the next start, at most
``max_attempts`` times: a "poison" input that kills the process every time is then failed, not re-run forever.

Thread-safety: the store serialises its own access; the runner lives on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
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
    error TEXT,
    tenant TEXT NOT NULL DEFAULT 'default',
    attempts INTEGER NOT NULL DEFAULT 0  -- runs started; a restart re-queues only below max_attempts
)
"""
# Stores created before tenants and attempts existed get the columns added.
MIGRATIONS = {
    "tenant": "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    "attempts": "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
}
COLUMNS = "id, state, created, updated, request, progress, error, tenant, attempts"


@dataclass
class Job:
    id: str
    state: str
    created: float
    updated: float
    request: dict[str, Any]
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tenant: str = "default"
    attempts: int = 0


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


class JobStore:
    def __init__(self, directory: Path, max_attempts: int = 3) -> None:
        private_dir(directory)
        self.directory = directory
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        db_path = directory / "jobs.sqlite"
        if not db_path.exists():
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(db_path, 0o600)  # SQLite gives its -wal and -shm files the database file's mode
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, statement in MIGRATIONS.items():
            if column not in present:
                self._db.execute(statement)

    def job_dir(self, job_id: str) -> Path:
        return self.directory / job_id

    def create(self, request: dict[str, Any], state: str = "queued", tenant: str = "default") -> Job:
        now = time.time()
        job = Job(uuid.uuid4().hex, state, now, now, request, {"total": len(request["inputs"])}, None, tenant)
        with self._lock:
            self._db.execute(f"INSERT INTO jobs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (job.id, job.state, now, now, json.dumps(request), json.dumps(job.progress), None,
                              tenant, 0))
        private_dir(self.job_dir(job.id))
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row) if row else None

    def list(self, tenant: str | None, limit: int = 100, offset: int = 0) -> list[Job]:
        """Newest first; one tenant's (None = every tenant's)."""
        where, args = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
        with self._lock:
            rows = self._db.execute(f"SELECT {COLUMNS} FROM jobs {where} ORDER BY created DESC LIMIT ? OFFSET ?",
                                    (*args, limit, offset)).fetchall()
        return [self._job(row) for row in rows]

    def count(self, tenant: str | None) -> int:
        """How many jobs one tenant has (None = every tenant)."""
        where, args = ("WHERE tenant = ?", [tenant]) if tenant is not None else ("", [])
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()
        return int(row[0])

    def active(self, tenant: str) -> int:
        """Jobs of ``tenant`` not finished (uploading, queued, running)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM jobs WHERE tenant = ? AND state IN "
                                   "('uploading', 'queued', 'running')", (tenant,)).fetchone()
        return int(row[0])

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

    def next_queued(self) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
                                   ).fetchone()
        return self._job(row) if row else None

    def start(self, job_id: str) -> None:
        """Mark a job running and count the attempt (before any of its work starts)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1, updated = ? WHERE id = ?",
                             (time.time(), job_id))

    def requeue_interrupted(self) -> int:
        """After a restart: jobs that were running go back to the queue (finished outputs are kept), unless
        they have been started ``max_attempts`` times already: those are failed (a poison input)."""
        now = time.time()
        with self._lock:
            failed = self._db.execute(
                "UPDATE jobs SET state = 'failed', updated = ?, error = ? WHERE state = 'running' AND attempts >= ?",
                (now, f"interrupted {self.max_attempts} times (the service stopped while running it); not retried",
                 self.max_attempts),
            ).rowcount
            if failed:
                log.error("%d jobs failed after %d interrupted attempts", failed, self.max_attempts)
            # Uploads the process died in the middle of will never complete.
            self._db.execute("UPDATE jobs SET state = 'failed', updated = ?, error = 'upload interrupted' "
                             "WHERE state = 'uploading'", (now,))
            return self._db.execute("UPDATE jobs SET state = 'queued', updated = ? WHERE state = 'running'",
                                    (now,)).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _job(row: tuple[Any, ...]) -> Job:
        return Job(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), row[6], row[7], row[8])


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

    def submit(self, request: dict[str, Any], tenant: str = "default") -> Job:
        job = self.store.create(request, tenant=tenant)
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
                self.store.start(job.id)
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
