"""The HTTP entries: ``notifications`` (the original service's contract) and ``app_portal``.

Flask request in, Flask response out. ``notifications`` runs the pipeline the Pub/Sub entry runs
(validate, claim, send once, record, one log line), so an event POSTed here and the same event
published to Pub/Sub are one notification. Its answers are built for a client that re-sends until
it gets a 2xx: every valid event ends in a 2xx, however often and however concurrently it is sent.
Answers and log lines hold ids, codes and paths only: never a payload, a portal link or the token.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import flask

from notifier import http_body, http_guard, logs, outcomes, pubsub
from notifier.dependencies import Dependencies
from notifier.domain.decoding import event_from, parse_object
from notifier.domain.errors import (
    BadCredentials,
    ClaimHeld,
    NotifierError,
    Permanent,
    RateLimited,
    Rejected,
    SvixConflict,
    Transient,
)
from notifier.domain.events import NO_PUBSUB_DELIVERY, SAFE_ID, Event
from notifier.domain.outcomes import Outcome, OutcomeKind

log = logs.get("http")

NOTIFICATIONS_PATHS = ("/", "/notifications")
PORTAL_PATHS = ("/", "/app-portal")
RETRY_AFTER_DEFAULT = 5  # seconds: Svix or Firestore unavailable
RETRY_AFTER_CREDENTIALS = 60  # an operator must fix the token first
# A push envelope carries a Pub/Sub message (up to 10 MB, in base64) and its attributes.
_PUSH_ENVELOPE_LIMIT = http_guard.BODY_CAP
_PORTAL_BODY_LIMIT = 16 * 1024

Provider = Callable[[], Dependencies]  # the entry point's way to its dependencies, asked on use


# -- notifications ------------------------------------------------------------------------------


@http_body.read_by_handler_only
def notifications(request: flask.Request, provide: Provider) -> flask.Response:
    """``POST`` one event (its JSON as the body), or a Pub/Sub push envelope; see the README."""
    with logs.traced(request.headers):
        if request.path not in NOTIFICATIONS_PATHS:
            return _answer(404, {"error": "not_found"})
        if request.method != "POST":
            return _answer(405, {"error": "method_not_allowed"}, {"Allow": "POST"})
        deps = provide()
        try:
            return _notify(request, deps, time.monotonic())
        except http_body.BodyIncomplete as exc:
            return _incomplete(exc)
        except Transient as exc:  # Firestore down while keeping a rejection: nothing decided
            logs.log(log, logging.WARNING, "rejection not recorded", error=exc.summary())
            return _retry_later(exc, {"error": exc.code})


def _notify(request: flask.Request, deps: Dependencies, started: float) -> flask.Response:
    limit = deps.settings.max_payload_bytes
    try:  # read whole or not at all; a declared length over the limit is refused unread
        raw = http_body.read(request.environ, max(_PUSH_ENVELOPE_LIMIT, limit))
    except http_body.BodyTooLarge as exc:
        return _too_large(exc.size, limit, started)
    try:
        document = parse_object(raw)  # parsed once, by the very rules of the Pub/Sub entry
        if "message" in document and "subscription" in document:
            return _push(document, deps)
        if len(raw) > limit:
            return _too_large(len(raw), limit, started)
        event = event_from(document, max_bytes=limit)
    except Rejected as rejection:
        if rejection.code == "too_large" or len(raw) > limit:  # not an envelope: too large
            return _too_large(len(raw), limit, started)
        rejected_id = outcomes.record_rejection(
            deps.store, rejection, NO_PUBSUB_DELIVERY, raw, started, logger=log
        )
        body = {
            "error": rejection.code,
            "detail": rejection.detail,
            "errors": rejection.errors,  # what the schema expected, never the value found
            "rejected_id": rejected_id,
        }
        return _answer(400, body)
    with logs.bound(event_id=event.id):
        outcome = _deliver_waiting(deps, event, started)
        outcomes.log_outcome(event, NO_PUBSUB_DELIVERY, outcome, started, logger=log)
    return _delivery_answer(event.id, outcome)


def _deliver_waiting(deps: Dependencies, event: Event, started: float) -> Outcome:
    """Delivers; while another request holds the claim, waits (within the retry budget) for it
    to finish, so that concurrent re-sends all end in the first one's answer instead of a 503."""
    deadline = started + deps.settings.retry_budget_seconds
    pause = 0.05
    while True:
        outcome = deps.notifier.deliver(event, NO_PUBSUB_DELIVERY)
        if not isinstance(outcome.error, ClaimHeld) or time.monotonic() + pause > deadline:
            return outcome
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _delivery_answer(event_id: str | None, outcome: Outcome) -> flask.Response:
    """201 sent, 200 already sent, 202 refused by Svix for good (now or on an earlier try), 409
    an id recorded for another project or type, and 429/503 with ``Retry-After`` for what a later
    try can fix."""
    body: dict[str, Any] = {"event_id": event_id} if event_id else {}
    if outcome.kind is OutcomeKind.REJECTED and outcome.error is not None:
        return _answer(409, {**body, "error": outcome.error.code, "detail": outcome.error.detail})
    if outcome.kind is OutcomeKind.SENT:
        http, status = 201, "sent"
    elif outcome.kind is OutcomeKind.DUPLICATE and outcome.error is None:
        http, status = 200, "duplicate"
    elif outcome.kind in (OutcomeKind.FAILED, OutcomeKind.DUPLICATE):
        http, status = 202, "failed"
    else:
        http, status = 0, "pending"
    body.update(status=status, svix_message_id=outcome.svix_message_id)
    if outcome.error is not None:
        body["error"] = outcome.error.code
    if outcome.must_retry:
        return _retry_later(outcome.error or Transient("retried"), body)
    return _answer(http, body)


def _push(envelope: dict[str, Any], deps: Dependencies) -> flask.Response:
    """A Pub/Sub push subscription pointed here: the Pub/Sub entry's logic, answered in HTTP
    (2xx acknowledges, 429/503 has Pub/Sub deliver again with its backoff)."""
    outcome = pubsub.process(envelope, deps)
    if outcome is None or outcome.kind is OutcomeKind.REJECTED:
        return _answer(200, {"status": "rejected"})
    return _delivery_answer(None, outcome)


def _incomplete(exc: http_body.BodyIncomplete) -> flask.Response:
    """A body cut off or too slow: nothing was sent, so nothing is kept, logged as such."""
    logs.log(log, logging.WARNING, f"request body incomplete: {exc.reason}", reason=exc.reason)
    status, code = (408, "body_timeout") if exc.reason == "timeout" else (400, "incomplete_body")
    return _answer(status, {"error": code})


def _too_large(size: int, limit: int, started: float) -> flask.Response:
    """Answered without keeping the body: the sender has it, and it may not even have been read."""
    rejection = Rejected("too_large", f"the body is {size} bytes; the limit is {limit}")
    outcomes.log_rejection(rejection, started, logger=log)
    return _answer(413, {"error": rejection.code, "detail": rejection.detail, "errors": []})


# -- app_portal ---------------------------------------------------------------------------------


@http_body.read_by_handler_only
def app_portal(request: flask.Request, provide: Provider) -> flask.Response:
    """``GET ?project=ID`` or ``POST {"project": ID}``: a Svix App Portal link for the project."""
    with logs.traced(request.headers):
        if request.path not in PORTAL_PATHS:
            return _answer(404, {"error": "not_found"})
        if request.method not in ("GET", "POST"):
            return _answer(405, {"error": "method_not_allowed"}, {"Allow": "GET, POST"})
        try:
            project, problem = _project_of(request)
        except http_body.BodyTooLarge:
            return _answer(413, {"error": "too_large"})
        except http_body.BodyIncomplete as exc:
            return _incomplete(exc)
        if problem:
            return _answer(400, {"error": "invalid_project", "errors": [problem]})
        deps = provide()
        with logs.bound(project=project):
            return _portal_link(deps, project)


def _project_of(request: flask.Request) -> tuple[str, str | None]:
    if request.method == "GET":
        project = request.args.get("project")
    else:
        document = _json_or_none(http_body.read(request.environ, _PORTAL_BODY_LIMIT))
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
            return _answer(404, {"error": "unknown_project", "project": project})
        expires_at = datetime.now(UTC) + timedelta(seconds=expiry)  # asked before: never later
        try:
            url = deps.sender.portal_link(project, expiry)
        except SvixConflict:  # the application was being created meanwhile: now it exists
            url = deps.sender.portal_link(project, expiry)
    except Transient as exc:
        level = logging.ERROR if isinstance(exc, BadCredentials) else logging.WARNING
        logs.log(log, level, f"portal link not issued: {exc.code}", error=exc.summary())
        return _retry_later(exc, {"error": exc.code})
    except Permanent as exc:
        msg = f"portal link refused: {exc.code} {exc.status}"
        logs.log(log, logging.ERROR, msg, error=exc.summary())
        return _answer(502, {"error": exc.code})
    logs.log(log, logging.INFO, "portal link issued", expires_in=expiry)
    body = {
        "project": project,
        "url": url,
        "expires_at": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    return _answer(200, body)


# -- answers ------------------------------------------------------------------------------------


def _retry_later(error: NotifierError, body: dict[str, Any]) -> flask.Response:
    """429 when Svix is limiting us, 503 for anything else that a later try can fix."""
    seconds = getattr(error, "retry_after", None)
    if seconds is None:
        credentials = isinstance(error, BadCredentials)
        seconds = RETRY_AFTER_CREDENTIALS if credentials else RETRY_AFTER_DEFAULT
    seconds = max(1, math.ceil(seconds))
    status = 429 if isinstance(error, RateLimited) else 503
    return _answer(status, {**body, "retry_after": seconds}, {"Retry-After": str(seconds)})


def _answer(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> flask.Response:
    response = flask.Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    response.headers["Cache-Control"] = "no-store"  # a portal link is a credential
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))  # strictly UTF-8, as the Pub/Sub entry
    except (ValueError, RecursionError):
        return None
