"""The embedded job store for one machine: SQLite in the jobs folder (0700; the database 0600: it holds
transcripts' metadata). Stores made by earlier versions are migrated at open: missing columns added, and jobs
that were queued or running get their items.

Thread-safety: one connection, serialised by a lock; a write transaction is ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from speechsvc.batch.jobs.sql import SqlJobStore, Tx

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL,
        request TEXT NOT NULL,
        progress TEXT NOT NULL,
        error TEXT,
        tenant TEXT NOT NULL DEFAULT 'default',
        attempts INTEGER NOT NULL DEFAULT 0,
        webhook_url TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS job_items (
        job_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        input TEXT NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        replica TEXT,
        lease_until REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        audio_s REAL NOT NULL DEFAULT 0,
        updated REAL NOT NULL,
        PRIMARY KEY (job_id, idx)
    )""",
    "CREATE INDEX IF NOT EXISTS job_items_state ON job_items (state, lease_until)",
    "CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, created)",
)
# Columns stores of earlier versions lack.
ADDED_COLUMNS = {
    "tenant": "ALTER TABLE jobs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'",
    "attempts": "ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
    "webhook_url": "ALTER TABLE jobs ADD COLUMN webhook_url TEXT",
}


class _SqliteTx(Tx):
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, args).fetchall()

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.db.execute(sql, args).rowcount

    def many(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        self.db.executemany(sql, args)


class SqliteJobStore(SqlJobStore):
    def __init__(self, directory: Path, max_attempts: int = 3) -> None:
        super().__init__(directory, max_attempts)
        self._lock = threading.Lock()
        db_path = directory / "jobs.sqlite"
        if not db_path.exists():
            os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(db_path, 0o600)  # SQLite gives its -wal and -shm files the database file's mode
        self._db = sqlite3.connect(db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    def _migrate(self) -> None:
        """Idempotent: every step checks what is there first."""
        with self.transaction() as tx:
            for statement in SCHEMA:
                tx.run(statement)
            present = {row[1] for row in tx.rows("PRAGMA table_info(jobs)")}
            for column, statement in ADDED_COLUMNS.items():
                if column not in present:
                    tx.run(statement)
            # Jobs queued or running before items existed: their items now (outputs already written are
            # recognised when an item runs, and skipped).
            now = time.time()
            for job_id, request in tx.rows(
                    "SELECT id, request FROM jobs WHERE state IN ('queued', 'running') AND NOT EXISTS "
                    "(SELECT 1 FROM job_items WHERE job_items.job_id = jobs.id)"):
                self._add_items(tx, job_id, json.loads(request)["inputs"], now)
                tx.run("UPDATE jobs SET state = 'queued' WHERE id = ?", (job_id,))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()
