"""Structured JSON lines on stdout, in the shape Cloud Logging parses into ``jsonPayload``.

Callers pass ids, types and outcomes as fields; nothing here ever receives a payload or a secret.
``severity`` drives Cloud Logging's level, and an ERROR with a traceback carries the
``@type`` that makes Error Reporting group it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

_REPORTED_ERROR = (
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
)
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "log_context", default=None
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        entry.update(_context.get() or {})
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["stack_trace"] = "".join(traceback.format_exception(*record.exc_info))
            if record.levelno >= logging.ERROR:
                entry["@type"] = _REPORTED_ERROR
                entry["message"] = f"{entry['message']}\n{entry['stack_trace']}"
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup(level: str = "INFO") -> logging.Logger:
    """Attaches the JSON handler once; repeated calls only adjust the level."""
    root = logging.getLogger("notifier")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
        root.propagate = False
    root.setLevel(level)
    return root


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"notifier.{name}")


def log(logger: logging.Logger, level: int, message: str, *, exc: bool = False, **fields: Any):
    """One line with ``fields`` at the top level; ``None`` fields are left out."""
    clean = {k: v for k, v in fields.items() if v is not None}
    logger.log(level, message, extra={"fields": clean}, exc_info=exc)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Adds fields (a trace id, a delivery id) to every line logged inside the block."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)
