"""Structured JSON lines on stdout, in the shape Cloud Logging parses into ``jsonPayload``.

Callers pass ids, types and outcomes as fields; nothing here ever receives a payload or a secret.
``severity`` drives Cloud Logging's level. Every ERROR line is shaped for Error Reporting (the
``@type`` of a ReportedErrorEvent, ``serviceContext``, and a stack trace or, for an error without
an exception, ``context.reportLocation``), and lines logged while serving a request carry its
trace (``logging.googleapis.com/trace``), so Cloud Logging nests them under the request.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

_REPORTED_ERROR = (
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
)
_TRACE = "logging.googleapis.com/trace"
_SPAN = "logging.googleapis.com/spanId"
_SAMPLED = "logging.googleapis.com/trace_sampled"
# W3C: version-traceid-parentid-flags; version ff and all-zero ids are invalid.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?")
# Google's legacy header: TRACE_ID[/SPAN_ID][;o=OPTIONS], the span id in decimal.
_CLOUD_TRACE = re.compile(r"([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([0-9]+))?")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)).replace("\\", "/")
_PACKAGE_NAME = os.path.basename(_PACKAGE_DIR)
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
                entry["message"] = f"{entry['message']}\n{entry['stack_trace']}"
        if record.levelno >= logging.ERROR:
            entry.update(_reported_error(record))
        return json.dumps(entry, default=str, ensure_ascii=False)


def _reported_error(record: logging.LogRecord) -> dict[str, Any]:
    """What Error Reporting needs to take an ERROR line in and group it.

    With a traceback it groups by the stack; without one (bad credentials, an event Svix refused)
    the ``@type`` makes it take the line anyway and ``reportLocation`` (the code that logged it)
    plus the message, which holds a reason code and never an id, make one group per cause.
    """
    service = {"service": os.environ.get("K_SERVICE") or "notifier"}
    if os.environ.get("K_REVISION"):
        service["version"] = os.environ["K_REVISION"]
    fields: dict[str, Any] = {"@type": _REPORTED_ERROR, "serviceContext": service}
    if not record.exc_info:
        location = {
            "filePath": _relative(record.pathname),
            "lineNumber": record.lineno,
            "functionName": record.funcName,
        }
        fields["context"] = {"reportLocation": location}
    return fields


def _relative(path: str) -> str:
    """``notifier/handlers/pubsub.py``, not the instance's absolute path: stable across deploys.

    Judged by where this package really is, never by folder names: a checkout may itself live
    in a folder called ``notifier``.
    """
    normalized = path.replace("\\", "/")
    inside = normalized.removeprefix(_PACKAGE_DIR + "/")
    if inside != normalized:
        return f"{_PACKAGE_NAME}/{inside}"
    return normalized.rsplit("/", 1)[-1]


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
    """The logger of one part of the package (``notifier.<name>``)."""
    return logging.getLogger(f"notifier.{name}")


def log(
    logger: logging.Logger, level: int, message: str, *, exc: bool = False, **fields: Any
) -> None:
    """One line with ``fields`` at the top level; ``None`` fields are left out."""
    if not logger.isEnabledFor(level):
        return
    clean = {k: v for k, v in fields.items() if v is not None}
    if exc or level >= logging.ERROR:
        # stacklevel: the record (and Error Reporting's reportLocation) names the caller.
        logger.log(level, message, extra={"fields": clean}, exc_info=exc, stacklevel=2)
        return
    # No line below ERROR names its code: skip the caller lookup, a walk up the stack per line.
    record = logger.makeRecord(
        logger.name, level, "(unknown file)", 0, message, (), None, extra={"fields": clean}
    )
    logger.handle(record)


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Adds fields (a trace id, a delivery id) to every line logged inside the block."""
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


class Headers(Protocol):
    """Request headers: a mapping, or werkzeug's (case-insensitive) ``Headers``."""

    def get(self, key: str, /) -> str | None:
        """The header's value, if the request has it."""
        ...


def trace_fields(
    headers: Headers, *, traceparent: str | None = None, project: str | None = None
) -> dict[str, Any]:
    """The request's trace, as Cloud Logging reads it from a JSON line; empty when there is none.

    Cloud Run passes ``traceparent`` (W3C) and ``X-Cloud-Trace-Context``; a CloudEvent may carry
    a ``traceparent`` extension (``traceparent=``), used when the request has no trace header.
    """
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    if not project:
        return {}
    found = (
        _from_traceparent(headers.get("traceparent"))
        or _from_cloud_trace(headers.get("X-Cloud-Trace-Context"))
        or _from_traceparent(traceparent)
    )
    if found is None:
        return {}
    trace_id, span_id, sampled = found
    fields: dict[str, Any] = {_TRACE: f"projects/{project}/traces/{trace_id}"}
    if span_id:
        fields[_SPAN] = span_id
    if sampled:
        fields[_SAMPLED] = True
    return fields


def _from_traceparent(value: str | None) -> tuple[str, str, bool] | None:
    match = _TRACEPARENT.fullmatch((value or "").strip().lower())
    if not match:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or set(trace_id) == {"0"} or set(span_id) == {"0"}:
        return None
    return trace_id, span_id, bool(int(flags, 16) & 1)


def _from_cloud_trace(value: str | None) -> tuple[str, str | None, bool] | None:
    match = _CLOUD_TRACE.fullmatch((value or "").strip())
    if not match:
        return None
    trace_id, span, options = match.groups()
    if set(trace_id) == {"0"}:
        return None
    # Cloud Logging wants the span as 16 hex digits; this header has it as a decimal uint64.
    span_id = f"{int(span):016x}" if span and 0 < int(span) < 2**64 else None
    return trace_id.lower(), span_id, options == "1"


@contextlib.contextmanager
def traced(headers: Headers, traceparent: str | None = None) -> Iterator[None]:
    """Every line logged inside the block carries the request's trace (see :func:`trace_fields`)."""
    with bound(**trace_fields(headers, traceparent=traceparent)):
        yield
