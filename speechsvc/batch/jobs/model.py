"""What the job stores hold and promise: a job (one tenant's request over many inputs), its items (one input
each, claimed by one replica at a time under a lease), and the :class:`JobStore` interface both stores
implement (:mod:`.sqlite` for one machine, :mod:`.postgres` for a fleet).

States: a job is ``uploading`` (its files are arriving), ``queued``, ``running``, ``done`` (every item ended;
some may have failed), ``failed`` (the job as a whole could not run) or ``deleted`` (cancelled by
``DELETE``: invisible at once, its rows and files removed once no replica still works one of its items). An item
is ``queued``, ``running`` (claimed: ``owner`` holds it until ``lease_until``, renewed by heartbeat), ``done``,
``skipped`` (its output existed already: resumed work), ``failed`` or ``cancelled``.
"""

from __future__ import annotations

import builtins
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

JOB_STATES = ("uploading", "queued", "running", "done", "failed", "deleted")
FINISHED_ITEM_STATES = ("done", "skipped", "failed", "cancelled")


class StoreUnavailable(Exception):
    """The job database cannot be reached (PostgreSQL down, a network partition): retry later (HTTP 503)."""


@dataclass
class Job:
    id: str
    state: str
    created: float
    updated: float
    # inputs (what the runner reads), names (what the client called them: upload file names), language, formats,
    # uploaded.
    request: dict[str, Any]
    # total, done, skipped, failed, audio_s, errors (input -> message): counted from the items.
    progress: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    tenant: str = "default"
    attempts: int = 0
    # Where the signed completion callback goes; None = no callback.
    webhook_url: str | None = None

    def name(self, index: int) -> str:
        """Input ``index`` as the client named it (an upload's file name; a server-side path as given)."""
        names = self.request.get("names") or []
        return str(names[index]) if index < len(names) else str(self.request["inputs"][index])


@dataclass(frozen=True)
class Claim:
    """One item a replica holds: work it, then :meth:`JobStore.finish` it (fenced by ``owner``)."""

    job_id: str
    index: int
    input: str
    # Runs started, this one included: past the store's max_attempts the item is failed as a poison input.
    attempts: int
    tenant: str
    language: str | None
    formats: tuple[str, ...]
    # Speakers in each mono recording, when the job says (None: the server's default).
    speakers: int | None = None


@dataclass(frozen=True)
class ItemState:
    """An item as the results view shows it."""

    index: int
    input: str
    state: str
    error: str | None
    # The replica that worked it (its last claim).
    replica: str | None
    attempts: int


class JobStore(Protocol):
    """Jobs, their items and leases. Methods block (run them in a thread from the event loop); a database that
    cannot be reached raises :class:`StoreUnavailable`."""

    directory: Path
    max_attempts: int

    def job_dir(self, job_id: str) -> Path: ...

    def create(self, request: dict[str, Any], state: str = "queued", tenant: str = "default",
               webhook_url: str | None = None) -> Job: ...

    def get(self, job_id: str) -> Job | None: ...

    def list(self, tenant: str | None, limit: int = 100, offset: int = 0) -> builtins.list[Job]: ...

    def count(self, tenant: str | None) -> int: ...

    def active(self, tenant: str) -> int: ...

    def set_request(self, job_id: str, request: dict[str, Any]) -> None: ...

    def items(self, job_id: str, offset: int, limit: int) -> builtins.list[ItemState]: ...

    def claim(self, owner: str, limit: int, lease_s: float) -> builtins.list[Claim]: ...

    def renew(self, owner: str, lease_s: float) -> int: ...

    def finish(self, claim: Claim, owner: str, state: str, error: str | None = None,
               audio_s: float = 0.0) -> bool: ...

    def complete_if_finished(self, job_id: str) -> Job | None: ...

    def release(self, owner: str) -> int: ...

    def fail(self, job_id: str, error: str) -> None: ...

    def cancel(self, job_id: str) -> bool: ...

    def purge_deleted(self) -> builtins.list[str]: ...

    def fail_stale_uploads(self, older_than_s: float) -> int: ...

    def close(self) -> None: ...


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path
