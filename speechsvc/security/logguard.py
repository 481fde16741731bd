"""A logging filter against log injection and log floods.

- Every record's message and call id are rendered once, control characters (CR, LF, ...) escaped, and cut
  to ``max_chars``: a ``callSid`` or a frame with newlines cannot forge log lines, and a 1 MB message cannot
  make a 1 MB log line.
- ``access_token=...`` query values and ``Bearer ...`` tokens are masked (uvicorn logs request paths).
- Warnings from one call with the same template are rate-limited: the first ``burst`` pass, then one in
  ``every``, so a client sending bad frames grows the log by a bounded amount, not a line per frame.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

SECRET = re.compile(r"(access_token=|[Bb]earer\s+|ssk_[0-9a-f]{12}_)[^\s&\"']+")
CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _escape(text: str) -> str:
    return CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def clean(text: str, max_chars: int = 2000) -> str:
    text = SECRET.sub(lambda m: m.group(1) + "***", text)
    text = _escape(text)
    return text if len(text) <= max_chars else text[:max_chars] + f"…[{len(text) - max_chars} more chars]"


class LogGuard(logging.Filter):
    def __init__(self, max_chars: int = 2000, burst: int = 20, every: int = 1000, max_keys: int = 4096) -> None:
        super().__init__()
        self.max_chars = max_chars
        self.burst = burst
        self.every = every
        self.max_keys = max_keys
        self._counts: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        call_id = str(getattr(record, "call_id", "-"))
        if record.levelno == logging.WARNING and call_id != "-":
            key = (call_id, record.name, str(record.msg))
            n = self._counts.pop(key, 0) + 1
            self._counts[key] = n
            if len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
            if n > self.burst and (n - self.burst) % self.every:
                self.suppressed += 1
                return False
            if n > self.burst:
                record.msg = f"{record.msg} [repeated {n} times in this call]"
        message = clean(record.getMessage(), self.max_chars)
        record.msg, record.args = message, None
        record.call_id = clean(call_id, 160)
        if record.exc_text:
            record.exc_text = clean(record.exc_text, 20000)
        return True


def install(logger: logging.Logger | None = None) -> LogGuard:
    """Add the guard to every handler of ``logger`` (default: root), after the call-id filter."""
    guard = LogGuard()
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(guard)
    return guard
