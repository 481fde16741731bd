"""The audit log: who (key id, tenant) did what (started a call, subscribed, submitted or read a job,
was refused, created or revoked a key), when, from where. JSON lines in a file created 0600, and the
``speechsvc.audit`` logger.

What it never holds: transcript text, audio, or any event content. :meth:`AuditLog.record` takes only
the fixed fields of :class:`AuditRecord`, and every string is cut to a bound, so a client cannot make the
audit log carry its words, or grow it by more than a line per action.

Thread-safety: writes are serialised by a lock (the key CLI and the service may share the file).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from speechsvc.security.principal import Principal, principal_var

log = logging.getLogger("speechsvc.audit")

FIELD_CHARS = 160


@dataclass(frozen=True)
class AuditRecord:
    at: float
    # call.start, call.refused, subscribe, job.submit, job.read, auth.denied, key.create, key.revoke, ...
    action: str
    key_id: str
    tenant: str
    # ws, grpc, twilio, rest, subscribe, cli, ...
    surface: str = ""
    # What it was about: a call id, a job id, a key id, "*" (every call).
    target: str = ""
    # ok, or the error code of a refusal.
    outcome: str = "ok"
    # The peer's address, when known.
    source: str = ""
    # A short reason (error message) for refusals; never content.
    detail: str = ""


def _clip(value: str) -> str:
    return value.replace("\n", "\\n").replace("\r", "\\r")[:FIELD_CHARS]


class AuditLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.records = 0

    def record(self, action: str, *, principal: Principal | None = None, surface: str = "", target: str = "",
               outcome: str = "ok", source: str = "", detail: str = "") -> AuditRecord:
        who = principal or principal_var.get()
        entry = AuditRecord(time.time(), action, who.key_id, who.tenant, _clip(surface), _clip(target),
                            _clip(outcome), _clip(source), _clip(detail))
        line = json.dumps(asdict(entry), ensure_ascii=False)
        log.info("%s", line)
        if self.path is not None:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                with os.fdopen(fd, "a", encoding="utf-8") as f:
                    f.write(line + "\n")
        self.records += 1
        return entry
