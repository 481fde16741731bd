"""The shared job store of a fleet: PostgreSQL (``SPEECHSVC_JOBS_DB=postgresql://user:pass@host/db``), so every
replica accepts, lists, serves and works any job. Items are claimed ``FOR UPDATE OF i SKIP LOCKED`` under a
lease (:mod:`.sql`). The files (uploads, outputs) live in the jobs folder, which every replica must mount (a
shared volume).

Migrations run at open, in one transaction under an advisory lock (replicas starting together wait for each
other), recorded in ``speechsvc_schema``: each version is applied once, and re-running is a no-op.

A database that cannot be reached raises :class:`~speechsvc.batch.jobs.model.StoreUnavailable` (the REST API
answers 503, the runner retries); the connection is made again on the next use. A replica starts without it
(live calls never need it): the migrations then run at the first use that reaches the database.

Thread-safety: one connection, serialised by a lock (the store's statements are short; the runner's calls are
few per item).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg

from speechsvc.batch.jobs.model import StoreUnavailable
from speechsvc.batch.jobs.sql import SqlJobStore, Tx
from speechsvc.security.network import safe_url

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
MIGRATION_LOCK = 0x5EEC4_10B5  # pg_advisory_xact_lock key: one replica migrates at a time
# Version -> statements. Append; never edit a released version.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            request TEXT NOT NULL,
            progress TEXT NOT NULL,
            error TEXT,
            tenant TEXT NOT NULL DEFAULT 'default',
            attempts INTEGER NOT NULL DEFAULT 0,
            webhook_url TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS job_items (
            job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            input TEXT NOT NULL,
            state TEXT NOT NULL,
            owner TEXT,
            replica TEXT,
            lease_until DOUBLE PRECISION,
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            audio_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            updated DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (job_id, idx)
        )""",
        "CREATE INDEX IF NOT EXISTS job_items_state ON job_items (state, lease_until)",
        "CREATE INDEX IF NOT EXISTS job_items_owner ON job_items (owner) WHERE owner IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS jobs_tenant ON jobs (tenant, created)",
    ),
)


def _sql(statement: str) -> str:
    """Our statements use ``?``; psycopg's placeholder is ``%s`` (no statement of ours holds a literal %)."""
    return statement.replace("?", "%s")


class _PgTx(Tx):
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.cursor = cursor

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(_sql(sql), args)
        return self.cursor.fetchall()

    def run(self, sql: str, args: Sequence[Any] = ()) -> int:
        self.cursor.execute(_sql(sql), args)
        return self.cursor.rowcount

    def many(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        if args:
            self.cursor.executemany(_sql(sql), args)


class PostgresJobStore(SqlJobStore):
    lock_clause = " FOR UPDATE OF i SKIP LOCKED"

    def __init__(self, url: str, directory: Path, max_attempts: int = 3) -> None:
        super().__init__(directory, max_attempts)
        self.url = url
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None
        self._migrated = False
        try:
            self._migrate()
        except StoreUnavailable as e:
            log.warning("%s; jobs wait for it (live calls go on)", e)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                         application_name="speechsvc")
        return self._conn

    def _migrate(self) -> None:
        with self._transaction() as tx:
            tx.rows("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
            tx.run("CREATE TABLE IF NOT EXISTS speechsvc_schema (version INTEGER PRIMARY KEY, "
                   "applied DOUBLE PRECISION NOT NULL DEFAULT EXTRACT(EPOCH FROM now()))")
            current = int(tx.rows("SELECT COALESCE(MAX(version), 0) FROM speechsvc_schema")[0][0])
            for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in statements:
                    tx.run(statement)
                tx.run("INSERT INTO speechsvc_schema (version) VALUES (?)", (version,))
                log.info("job store %s: schema version %d", safe_url(self.url), version)
        self._migrated = True

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        if not self._migrated:
            self._migrate()
        with self._transaction() as tx:
            yield tx

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cursor:
                    yield _PgTx(cursor)
            except (psycopg.OperationalError, psycopg.InterfaceError) as e:
                self._drop()
                raise StoreUnavailable(f"job database {safe_url(self.url)}: {type(e).__name__}") from e

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
