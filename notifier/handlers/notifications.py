"""The ``notifications`` function: the original service's contract, POST one event.

Flask request in, Flask response out. It runs the pipeline the Pub/Sub entry runs (validate, claim,
send once, record, one log line), so an event POSTed here and the same event published to Pub/Sub
are one notification. Its answers are built for a client that re-sends until it gets a 2xx: every
valid event ends in a 2xx, however often and however concurrently it is sent. Answers and log
lines hold ids, codes and paths only: never a payload or the token.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import flask

from notifier import logs
from notifier.domain.decoding import event_from, parse_object
from notifier.domain.errors import ClaimHeld, Rejected, Transient
from notifier.domain.events import NO_PUBSUB_DELIVERY, Event
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.handlers import http_body, http_guard, outcome_log, pubsub, shutdown
from notifier.handlers.answers import answer, incomplete, retry_later
from notifier.handlers.dependencies import Dependencies, Provider

log = logs.get("http")

PATHS = ("/", "/notifications")
# A push envelope carries a Pub/Sub message (up to 10 MB, in base64) and its attributes.
_PUSH_ENVELOPE_LIMIT = http_guard.BODY_CAP


@http_body.read_by_handler_only
def handle(request: flask.Request, provide: Provider) -> flask.Response:
    """``POST`` one event (its JSON as the body), or a Pub/Sub push envelope (docs/http-api.md)."""
    with logs.traced(request.headers):
        if request.path not in PATHS:
            return answer(404, {"error": "not_found"})
        if request.method != "POST":
            return answer(405, {"error": "method_not_allowed"}, {"Allow": "POST"})
        deps = provide()
        try:
            return _notify(request, deps, time.monotonic())
        except http_body.BodyIncomplete as exc:
            return incomplete(exc)
        except Transient as exc:  # Firestore down while keeping a rejection: nothing decided
            logs.log(log, logging.WARNING, "rejection not recorded", error=exc.summary())
            return retry_later(exc, {"error": exc.code})


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
        rejected_id = outcome_log.record_rejection(
            deps.store, rejection, NO_PUBSUB_DELIVERY, raw, started, logger=log
        )
        body = {
            "error": rejection.code,
            "detail": rejection.detail,
            "errors": rejection.errors,  # what the schema expected, never the value found
            "rejected_id": rejected_id,
        }
        return answer(400, body)
    with logs.bound(event_id=event.id):
        outcome = _deliver_waiting(deps, event, started)
        outcome_log.log_outcome(event, NO_PUBSUB_DELIVERY, outcome, started, logger=log)
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
        if shutdown.STOPPING.wait(pause):  # SIGTERM: answer now, the client sends again
            return outcome
        pause = min(pause * 2, 1.0)


def _delivery_answer(event_id: str | None, outcome: Outcome) -> flask.Response:
    """201 sent, 200 already sent, 202 refused by Svix for good (now or on an earlier try), 409
    an id recorded for another project or type, and 429/503 with ``Retry-After`` for what a later
    try can fix."""
    body: dict[str, Any] = {"event_id": event_id} if event_id else {}
    if outcome.kind is OutcomeKind.REJECTED and outcome.error is not None:
        return answer(409, {**body, "error": outcome.error.code, "detail": outcome.error.detail})
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
        return retry_later(outcome.error or Transient("retried"), body)
    return answer(http, body)


def _push(envelope: dict[str, Any], deps: Dependencies) -> flask.Response:
    """A Pub/Sub push subscription pointed here: the Pub/Sub entry's logic, answered in HTTP
    (2xx acknowledges, 429/503 has Pub/Sub deliver again with its backoff)."""
    outcome = pubsub.process(envelope, deps)
    if outcome is None or outcome.kind is OutcomeKind.REJECTED:
        return answer(200, {"status": "rejected"})
    return _delivery_answer(None, outcome)


def _too_large(size: int, limit: int, started: float) -> flask.Response:
    """Answered without keeping the body: the sender has it, and it may not even have been read."""
    rejection = Rejected("too_large", f"the body is {size} bytes; the limit is {limit}")
    outcome_log.log_rejection(rejection, started, logger=log)
    return answer(413, {"error": rejection.code, "detail": rejection.detail, "errors": []})
