"""The ``app_portal`` function: a Svix App Portal link for a project, for the customer dashboard.

Flask request in, Flask response out. The link holds a secret: it is answered (never cached) and
never logged.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import flask

from notifier import logs
from notifier.domain.errors import BadCredentials, Permanent, SvixConflict, Transient
from notifier.domain.events import SAFE_ID
from notifier.handlers import http_body
from notifier.handlers.answers import answer, incomplete, retry_later
from notifier.handlers.dependencies import Dependencies, Provider

log = logs.get("http")

PATHS = ("/", "/app-portal")
MAX_BODY_BYTES = 16 * 1024


@http_body.read_by_handler_only
def handle(request: flask.Request, provide: Provider) -> flask.Response:
    """``GET ?project=ID`` or ``POST {"project": ID}``: a Svix App Portal link for the project."""
    with logs.traced(request.headers):
        if request.path not in PATHS:
            return answer(404, {"error": "not_found"})
        if request.method not in ("GET", "POST"):
            return answer(405, {"error": "method_not_allowed"}, {"Allow": "GET, POST"})
        try:
            project, problem = _project_of(request)
        except http_body.BodyTooLarge:
            return answer(413, {"error": "too_large"})
        except http_body.BodyIncomplete as exc:
            return incomplete(exc)
        if problem:
            return answer(400, {"error": "invalid_project", "errors": [problem]})
        deps = provide()
        with logs.bound(project=project):
            return _portal_link(deps, project)


def _project_of(request: flask.Request) -> tuple[str, str | None]:
    if request.method == "GET":
        project = request.args.get("project")
    else:
        document = _json_or_none(http_body.read(request.environ, MAX_BODY_BYTES))
        if not isinstance(document, dict):
            return "", '/: the body must be a JSON object like {"project": "ID"}'
        project = document.get("project")
    if project is None:
        return "", "/project: is required"
    if not isinstance(project, str) or not SAFE_ID.fullmatch(project):
        return "", f"/project: must match {SAFE_ID.pattern}"
    return project, None


def _portal_link(deps: Dependencies, project: str) -> flask.Response:
    expiry = deps.settings.portal_expiry_seconds
    try:
        if deps.store.application_id(project) is None:
            return answer(404, {"error": "unknown_project", "project": project})
        expires_at = datetime.now(UTC) + timedelta(seconds=expiry)  # asked before: never later
        try:
            url = deps.sender.portal_link(project, expiry)
        except SvixConflict:  # the application was being created meanwhile: now it exists
            url = deps.sender.portal_link(project, expiry)
    except Transient as exc:
        level = logging.ERROR if isinstance(exc, BadCredentials) else logging.WARNING
        logs.log(log, level, f"portal link not issued: {exc.code}", error=exc.summary())
        return retry_later(exc, {"error": exc.code})
    except Permanent as exc:
        msg = f"portal link refused: {exc.code} {exc.status}"
        logs.log(log, logging.ERROR, msg, error=exc.summary())
        return answer(502, {"error": exc.code})
    logs.log(log, logging.INFO, "portal link issued", expires_in=expiry)
    body = {
        "project": project,
        "url": url,
        "expires_at": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return answer(200, body)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))  # strictly UTF-8, as the Pub/Sub entry
    except (ValueError, RecursionError):
        return None
