"""Logging with the call id on every line, from a context variable set by each transport handler."""

from __future__ import annotations

import contextvars
import logging

call_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("call_id", default="-")


class CallIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.call_id = call_id_var.get()
        return True


def setup(level: str = "INFO") -> None:
    """Configure the root logger for the service: stderr, one line per record, with the call id."""
    handler = logging.StreamHandler()
    handler.addFilter(CallIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [call=%(call_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # At DEBUG these libraries log every WebSocket frame, transcripts included: never below INFO.
    for noisy in ("websockets", "uvicorn.protocols", "httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level) if isinstance(level, str) else level,
                                              logging.INFO))
