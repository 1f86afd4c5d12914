"""The WSGI guard in front of every function: bounded URLs, bounded bodies, bounded reading time.

Installed by ``main.py`` on the app functions-framework builds, before Flask or functions-framework
read anything (docs/decisions/http-limits-in-the-function.md): a URL over ``MAX_URL_BYTES`` is a 414
(and gunicorn gets that bound back), a declared ``Content-Length`` over ``BODY_CAP`` a 413, and
every other body is wrapped in :class:`~notifier.handlers.http_body.GuardedInput`, which the
handlers read through :func:`~notifier.handlers.http_body.read` with their own, smaller limits.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from notifier import logs
from notifier.handlers import http_body

log = logs.get("http")

# gunicorn's largest request line (its MAX_REQUEST_LINE); browsers and proxies stay under 8 KiB.
MAX_URL_BYTES = 8190
# Pub/Sub pushes messages of up to 10 MB (10,000,000 bytes of data, base64 in the envelope)
# with up to 100 attributes (keys 256 bytes, values 1024): the envelope stays under this.
PUBSUB_MAX_MESSAGE_BYTES = 10_000_000
BODY_CAP = 4 * math.ceil(PUBSUB_MAX_MESSAGE_BYTES / 3) + 1024 * 1024

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Guard:
    """WSGI middleware: answers an over-long URL or an over-cap declared body itself (414/413/400)
    and bounds the reading of every other body
    (:class:`~notifier.handlers.http_body.GuardedInput`)."""

    def __init__(self, app: WsgiApp, *, cap: int = BODY_CAP, max_url: int = MAX_URL_BYTES):
        self.app = app
        self.cap = cap
        self.max_url = max_url

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        url_bytes = len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", ""))
        if url_bytes > self.max_url:
            return _refuse(start_response, 414, "uri_too_long", url_bytes, self.max_url)
        try:
            declared = http_body.declared_length(environ)
        except ValueError:
            return _refuse(start_response, 400, "bad_content_length", 0, self.cap)
        if declared is not None and declared > self.cap:
            return _refuse(start_response, 413, "too_large", declared, self.cap)
        body = http_body.GuardedInput.install(environ, cap=self.cap)
        try:
            return self.app(environ, start_response)
        finally:
            body.stop()


def install(app: Any) -> None:
    """Wraps ``app.wsgi_app`` (once) and bounds gunicorn's request line."""
    if not isinstance(app.wsgi_app, Guard):
        app.wsgi_app = Guard(app.wsgi_app)
    _bound_gunicorn_request_line()


def _bound_gunicorn_request_line() -> None:
    """functions-framework sets ``limit_request_line: 0`` and offers no way to change it; its
    gunicorn application is built after ``main.py`` is imported, so its options are set here."""
    try:
        from functions_framework._http import gunicorn as ff_gunicorn
    except ImportError:  # no gunicorn (Windows, --debug): the guard's own 414 still holds
        return
    application = ff_gunicorn.GunicornApplication
    if getattr(application, "_notifier_bounded", False):
        return
    original: Callable[[Any], None] = application.load_config

    def load_config(self: Any) -> None:
        self.options["limit_request_line"] = MAX_URL_BYTES
        original(self)

    setattr(application, "load_config", load_config)  # noqa: B010 - mypy: no method assignment
    setattr(application, "_notifier_bounded", True)  # noqa: B010


def _refuse(
    start_response: Callable[..., Any], status: int, code: str, size: int, limit: int
) -> list[bytes]:
    logs.log(log, logging.WARNING, f"request refused: {code}", reason=code, size=size, limit=limit)
    detail = f"{size} bytes; the limit is {limit}" if size else "Content-Length is not a number"
    body = json.dumps({"error": code, "detail": detail}).encode()
    reason = {400: "Bad Request", 413: "Content Too Large", 414: "URI Too Long"}[status]
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
        ("Connection", "close"),
    ]
    start_response(f"{status} {reason}", headers)
    return [body]
