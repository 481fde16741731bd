"""Batch jobs of the REST API: a store (SQLite on one machine, PostgreSQL shared by a fleet) and the runner each
replica runs over it. See :mod:`.model` for the states, :mod:`.sql` for claims and leases, :mod:`.runner` for
how items are worked."""

from speechsvc.batch.jobs.factory import open_store
from speechsvc.batch.jobs.model import Claim, ItemState, Job, JobStore, StoreUnavailable, private_dir
from speechsvc.batch.jobs.runner import JobRunner, RunnerOptions
from speechsvc.batch.jobs.sqlite import SqliteJobStore

__all__ = ["Claim", "ItemState", "Job", "JobRunner", "JobStore", "RunnerOptions", "SqliteJobStore",
           "StoreUnavailable", "open_store", "private_dir"]
