"""Which job store a configuration asks for: PostgreSQL when ``jobs_db`` is a ``postgresql://`` URL (a fleet),
else the embedded SQLite store in the jobs folder (one machine)."""

from __future__ import annotations

from speechsvc.batch.jobs.model import JobStore
from speechsvc.config import Settings

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(settings: Settings) -> JobStore:
    """Open (and migrate) the configured store.

    Raises:
        StoreUnavailable: PostgreSQL cannot be reached.
        ValueError: ``jobs_db`` is neither empty nor a PostgreSQL URL.
    """
    url = settings.jobs_db
    if url.startswith(POSTGRES_SCHEMES):
        from speechsvc.batch.jobs.postgres import PostgresJobStore  # psycopg only where it is used

        return PostgresJobStore(url, settings.jobs_path, settings.max_job_attempts)
    if url:
        raise ValueError("SPEECHSVC_JOBS_DB must be empty (SQLite in the jobs folder) or a postgresql:// URL")
    from speechsvc.batch.jobs.sqlite import SqliteJobStore

    store = SqliteJobStore(settings.jobs_path, settings.max_job_attempts)
    store.expire_leases()  # one machine: the process that held them is gone, resume at once
    return store
