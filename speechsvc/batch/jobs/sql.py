"""The job store's logic in SQL both stores share (SQLite and PostgreSQL understand the same statements here);
each store brings its connection, its transactions and its migrations.

Claiming: one transaction selects up to ``limit`` items that are queued, or running under a lease that expired
(their replica died), oldest job first, and marks them running under this replica's lease. PostgreSQL selects
them ``FOR UPDATE ... SKIP LOCKED``, so replicas claiming at once never take the same item and never wait for
each other; SQLite (one machine) serialises its writers. Every later write of an item is fenced by its owner:
a replica whose lease was taken over cannot finish an item another replica now holds, so an item is recorded
done once. Lease times are the replicas' clocks (keep them synchronised, as NTP does; a lease is tens of
seconds).
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from speechsvc.batch.jobs.model import Claim, ItemState, Job, private_dir

JOB_COLUMNS = "id, state, created, updated, request, progress, error, tenant, attempts, webhook_url"
UNFINISHED = "('uploading', 'queued', 'running')"
OPTIONS_CACHE = 256  # jobs whose language and formats a store remembers (claims read them per item)


class Tx(abc.ABC):
    """One transaction: statements with ``?`` placeholders."""

    @abc.abstractmethod
    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abc.abstractmethod
    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Execute; the number of rows changed."""

    @abc.abstractmethod
    def many(self, sql: str, args: Sequence[Sequence[Any]]) -> None: ...


class SqlJobStore(abc.ABC):
    """:class:`~speechsvc.batch.jobs.model.JobStore` on a SQL database (see the module's docstring)."""

    # Appended to the claim's SELECT: PostgreSQL's row locks; nothing for SQLite.
    lock_clause = ""

    def __init__(self, directory: Path, max_attempts: int) -> None:
        private_dir(directory)
        self.directory = directory
        self.max_attempts = max_attempts
        self._options: dict[str, tuple[str | None, tuple[str, ...], int | None]] = {}

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Tx]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def job_dir(self, job_id: str) -> Path:
        return self.directory / job_id

    # ---- jobs --------------------------------------------------------------------------------------------

    def create(self, request: dict[str, Any], state: str = "queued", tenant: str = "default",
               webhook_url: str | None = None) -> Job:
        now = time.time()
        job = Job(uuid.uuid4().hex, state, now, now, request, {"total": len(request["inputs"])}, None, tenant, 0,
                  webhook_url)
        with self.transaction() as tx:
            tx.run(f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (job.id, state, now, now, json.dumps(request), json.dumps(job.progress), None, tenant, 0,
                    webhook_url))
            if state == "queued":
                self._add_items(tx, job.id, request["inputs"], now)
        private_dir(self.job_dir(job.id))
        return job

    def set_request(self, job_id: str, request: dict[str, Any]) -> None:
        """Complete a job created while its files were uploading, and queue it."""
        now = time.time()
        with self.transaction() as tx:
            changed = tx.run("UPDATE jobs SET request = ?, progress = ?, state = 'queued', updated = ? "
                             "WHERE id = ? AND state = 'uploading'",
                             (json.dumps(request), json.dumps({"total": len(request["inputs"])}), now, job_id))
            if changed:
                self._add_items(tx, job_id, request["inputs"], now)

    @staticmethod
    def _add_items(tx: Tx, job_id: str, inputs: Sequence[str], now: float) -> None:
        tx.many("INSERT INTO job_items (job_id, idx, input, state, attempts, audio_s, updated) "
                "VALUES (?, ?, ?, 'queued', 0, 0, ?)", [(job_id, i, item, now) for i, item in enumerate(inputs)])

    def get(self, job_id: str) -> Job | None:
        with self.transaction() as tx:
            rows = tx.rows(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ? AND state != 'deleted'", (job_id,))
            return self._with_progress(tx, [self._job(r) for r in rows])[0] if rows else None

    def list(self, tenant: str | None, limit: int = 100, offset: int = 0) -> builtins.list[Job]:
        """Newest first; one tenant's (None = every tenant's)."""
        where, args = self._tenant_filter(tenant)
        with self.transaction() as tx:
            rows = tx.rows(f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY created DESC LIMIT ? OFFSET ?",
                           (*args, limit, offset))
            return self._with_progress(tx, [self._job(r) for r in rows])

    def count(self, tenant: str | None) -> int:
        where, args = self._tenant_filter(tenant)
        with self.transaction() as tx:
            return int(tx.rows(f"SELECT COUNT(*) FROM jobs {where}", args)[0][0])

    def active(self, tenant: str) -> int:
        """Jobs of ``tenant`` not finished (uploading, queued, running)."""
        with self.transaction() as tx:
            return int(tx.rows(f"SELECT COUNT(*) FROM jobs WHERE tenant = ? AND state IN {UNFINISHED}",
                               (tenant,))[0][0])

    @staticmethod
    def _tenant_filter(tenant: str | None) -> tuple[str, builtins.list[Any]]:
        if tenant is None:
            return "WHERE state != 'deleted'", []
        return "WHERE state != 'deleted' AND tenant = ?", [tenant]

    def _with_progress(self, tx: Tx, jobs: builtins.list[Job]) -> builtins.list[Job]:
        """Each job's progress counted from its items (a job stored before items existed keeps its own)."""
        if not jobs:
            return jobs
        marks = ", ".join("?" for _ in jobs)
        ids = [j.id for j in jobs]
        counts: dict[str, dict[str, Any]] = {}
        for job_id, state, n, audio_s in tx.rows(
                f"SELECT job_id, state, COUNT(*), SUM(audio_s) FROM job_items WHERE job_id IN ({marks}) "
                "GROUP BY job_id, state", ids):
            p = counts.setdefault(job_id, {"total": 0, "done": 0, "skipped": 0, "failed": 0, "audio_s": 0.0,
                                           "errors": {}})
            p["total"] += int(n)
            p["audio_s"] += float(audio_s or 0.0)
            if state in ("done", "skipped", "failed"):
                p[state] += int(n)
        for job_id, item, error in tx.rows(
                f"SELECT job_id, input, error FROM job_items WHERE job_id IN ({marks}) AND state = 'failed'", ids):
            counts[job_id]["errors"][item] = error or "failed"
        for job in jobs:
            if job.id in counts:
                job.progress = counts[job.id]
        return jobs

    def items(self, job_id: str, offset: int, limit: int) -> builtins.list[ItemState]:
        with self.transaction() as tx:
            rows = tx.rows("SELECT idx, input, state, error, replica, attempts FROM job_items WHERE job_id = ? "
                           "AND idx >= ? AND idx < ? ORDER BY idx", (job_id, offset, offset + limit))
        return [ItemState(int(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]

    # ---- items: claim, lease, finish ---------------------------------------------------------------------

    def claim(self, owner: str, limit: int, lease_s: float) -> builtins.list[Claim]:
        """Up to ``limit`` items for ``owner``, leased for ``lease_s`` (see the module's docstring)."""
        if limit <= 0:
            return []
        now = time.time()
        with self.transaction() as tx:
            rows = tx.rows(
                "SELECT i.job_id, i.idx, i.input, i.attempts, j.tenant FROM job_items i JOIN jobs j ON j.id = i.job_id "
                "WHERE j.state IN ('queued', 'running') AND (i.state = 'queued' OR (i.state = 'running' AND "
                "i.lease_until < ?)) ORDER BY j.created, i.idx LIMIT ?" + self.lock_clause, (now, limit))
            if not rows:
                return []
            tx.many("UPDATE job_items SET state = 'running', owner = ?, replica = ?, lease_until = ?, "
                    "attempts = attempts + 1, updated = ? WHERE job_id = ? AND idx = ?",
                    [(owner, owner, now + lease_s, now, r[0], r[1]) for r in rows])
            jobs = sorted({r[0] for r in rows})
            tx.many("UPDATE jobs SET state = 'running', updated = ? WHERE id = ? AND state = 'queued'",
                    [(now, job_id) for job_id in jobs])
            options = {job_id: self._job_options(tx, job_id) for job_id in jobs}
        return [Claim(r[0], int(r[1]), r[2], int(r[3]) + 1, r[4], *options[r[0]]) for r in rows]

    def _job_options(self, tx: Tx, job_id: str) -> tuple[str | None, tuple[str, ...], int | None]:
        """A job's language, formats and speakers (fixed once it is queued), remembered for its next claims."""
        if job_id not in self._options:
            if len(self._options) >= OPTIONS_CACHE:
                self._options.pop(next(iter(self._options)))
            request = json.loads(tx.rows("SELECT request FROM jobs WHERE id = ?", (job_id,))[0][0])
            self._options[job_id] = (request.get("language"), tuple(request.get("formats") or ["json"]),
                                     request.get("speakers"))
        return self._options[job_id]

    def renew(self, owner: str, lease_s: float) -> int:
        """Heartbeat: extend the lease of every item ``owner`` holds; how many it holds."""
        with self.transaction() as tx:
            return tx.run("UPDATE job_items SET lease_until = ? WHERE owner = ? AND state = 'running'",
                          (time.time() + lease_s, owner))

    def finish(self, claim: Claim, owner: str, state: str, error: str | None = None, audio_s: float = 0.0) -> bool:
        """Record an item's end; False when ``owner`` no longer holds it (its lease went to another replica)."""
        with self.transaction() as tx:
            return tx.run("UPDATE job_items SET state = ?, error = ?, audio_s = ?, owner = NULL, lease_until = NULL, "
                          "updated = ? WHERE job_id = ? AND idx = ? AND owner = ? AND state = 'running'",
                          (state, error, audio_s, time.time(), claim.job_id, claim.index, owner)) == 1

    def complete_if_finished(self, job_id: str) -> Job | None:
        """Mark the job done when none of its items is left; the job for the one caller that did (it sends the
        completion callback), None for everyone else."""
        with self.transaction() as tx:
            left = tx.rows("SELECT COUNT(*) FROM job_items WHERE job_id = ? AND state IN ('queued', 'running')",
                           (job_id,))[0][0]
            if left or not tx.run("UPDATE jobs SET state = 'done', updated = ? WHERE id = ? AND "
                                  "state IN ('queued', 'running')", (time.time(), job_id)):
                return None
            self._options.pop(job_id, None)
            rows = tx.rows(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
            return self._with_progress(tx, [self._job(rows[0])])[0]

    def expire_leases(self) -> int:
        """Every claim's lease ends now (one machine restarting: whoever held them is gone); attempts still count."""
        with self.transaction() as tx:
            return tx.run("UPDATE job_items SET lease_until = 0 WHERE state = 'running'")

    def release(self, owner: str) -> int:
        """A replica stopping gracefully hands its items back to the queue at once (the attempt is not counted)."""
        with self.transaction() as tx:
            return tx.run("UPDATE job_items SET state = 'queued', owner = NULL, lease_until = NULL, "
                          "attempts = attempts - 1 WHERE owner = ? AND state = 'running'", (owner,))

    # ---- cancel, delete, clean up ------------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Cancel and delete: the job disappears at once, its queued items are never started (running ones end
        at their item boundary); :meth:`purge_deleted` removes it once none is running."""
        now = time.time()
        with self.transaction() as tx:
            if not tx.run("UPDATE jobs SET state = 'deleted', updated = ? WHERE id = ? AND state != 'deleted'",
                          (now, job_id)):
                return False
            tx.run("UPDATE job_items SET state = 'cancelled', updated = ? WHERE job_id = ? AND state = 'queued'",
                   (now, job_id))
        self._options.pop(job_id, None)
        return True

    def purge_deleted(self) -> builtins.list[str]:
        """Remove deleted jobs no replica still works on; their ids (the caller removes their files)."""
        with self.transaction() as tx:
            ids = [r[0] for r in tx.rows(
                "SELECT id FROM jobs WHERE state = 'deleted' AND NOT EXISTS (SELECT 1 FROM job_items WHERE "
                "job_items.job_id = jobs.id AND job_items.state = 'running' AND job_items.lease_until >= ?)",
                (time.time(),))]
            for job_id in ids:
                tx.run("DELETE FROM job_items WHERE job_id = ?", (job_id,))
                tx.run("DELETE FROM jobs WHERE id = ?", (job_id,))
        return ids

    def fail_stale_uploads(self, older_than_s: float) -> int:
        """Uploads that stopped arriving (their replica died mid-upload) never complete: failed."""
        with self.transaction() as tx:
            return tx.run("UPDATE jobs SET state = 'failed', error = 'upload interrupted', updated = ? "
                          "WHERE state = 'uploading' AND updated < ?", (time.time(), time.time() - older_than_s))

    def fail(self, job_id: str, error: str) -> None:
        """Fail a job as a whole (it cannot run at all); its items are cancelled."""
        with self.transaction() as tx:
            tx.run("UPDATE jobs SET state = 'failed', error = ?, updated = ? WHERE id = ? AND state != 'deleted'",
                   (error, time.time(), job_id))
            tx.run("UPDATE job_items SET state = 'cancelled' WHERE job_id = ? AND state = 'queued'", (job_id,))

    @staticmethod
    def _job(row: Sequence[Any]) -> Job:
        return Job(row[0], row[1], float(row[2]), float(row[3]), json.loads(row[4]), json.loads(row[5]), row[6],
                   row[7], int(row[8]), row[9])
