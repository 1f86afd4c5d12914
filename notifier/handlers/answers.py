"""The HTTP functions' answers: JSON, never cached, and the one way to say "try again later"."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import flask

from notifier import logs
from notifier.domain.errors import BadCredentials, NotifierError, RateLimited
from notifier.handlers import http_body

log = logs.get("http")

RETRY_AFTER_DEFAULT = 5  # seconds: Svix or Firestore unavailable
RETRY_AFTER_CREDENTIALS = 60  # an operator must fix the token first


def retry_later(error: NotifierError, body: dict[str, Any]) -> flask.Response:
    """429 when Svix is limiting us, 503 for anything else that a later try can fix."""
    seconds = getattr(error, "retry_after", None)
    if seconds is None:
        credentials = isinstance(error, BadCredentials)
        seconds = RETRY_AFTER_CREDENTIALS if credentials else RETRY_AFTER_DEFAULT
    seconds = max(1, math.ceil(seconds))
    status = 429 if isinstance(error, RateLimited) else 503
    return answer(status, {**body, "retry_after": seconds}, {"Retry-After": str(seconds)})


def answer(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> flask.Response:
    """``body`` as JSON with ``status``, never cached (a portal link is a credential)."""
    response = flask.Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"  # a portal link is a credential
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def incomplete(exc: http_body.BodyIncomplete) -> flask.Response:
    """A body cut off or too slow: nothing was sent, so nothing is kept, logged as such."""
    logs.log(log, logging.WARNING, f"request body incomplete: {exc.reason}", reason=exc.reason)
    status, code = (408, "body_timeout") if exc.reason == "timeout" else (400, "incomplete_body")
    return answer(status, {"error": code})
