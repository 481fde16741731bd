"""Logging with the call id on every line, from a context variable set by each transport handler.

Two formats: ``text`` (one line per record) and ``json`` (``SPEECHSVC_LOG_FORMAT=json`` or ``--log-format json``:
one JSON object per line with ``time``, ``level``, ``logger``, ``message``, ``call_id``, and ``exception`` when there
is one), for log collectors. Either way a record carries what the code logged and nothing else: no transcript
text is ever logged (the log guard, :mod:`speechsvc.security.logguard`, also escapes and bounds every message)."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")


class CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "call_id": getattr(record, "call_id", "-"),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


class StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to ``sys.stderr`` as it is at each record, not as it was at setup (a host, or a test runner's
    capture, may replace it; a handler holding the old, closed one would fail on every record)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current ``sys.stderr``; nothing to keep."""


def default_format() -> LogFormat:
    """``SPEECHSVC_LOG_FORMAT`` (text or json; anything else is text)."""
    value = os.environ.get("SPEECHSVC_LOG_FORMAT", "text").strip().lower()
    return "json" if value == "json" else "text"


def setup(level: str = "INFO", fmt: LogFormat = "text") -> None:
    """Configure the root logger for the service: stderr, one line per record, with the call id."""
    handler = StderrHandler()
    handler.addFilter(CallIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [call=%(call_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # At DEBUG these libraries log every WebSocket frame, transcripts included: never below INFO.
    for noisy in ("websockets", "uvicorn.protocols", "httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level) if isinstance(level, str) else level,
                                              logging.INFO))
