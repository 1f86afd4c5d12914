"""The canary: where Svix delivers heartbeats, and which trusts nothing that Svix did not sign.

The function is public (Svix calls it without Google credentials), so the signature is the only
gate. It is checked by the svix SDK's own verifier with the heartbeat endpoint's ``whsec_`` secret;
a verified heartbeat is recorded once (:class:`~notifier.domain.ports.HeartbeatLog`) and logged
once, as the latency sample of the ``heartbeat_latency`` distribution metric.

Answers (Svix treats every non-2xx as a failure and retries it on its schedule, 8 attempts over
about 28 hours, each attempt signed afresh with the time of that attempt):

- 200: recorded, already recorded (a second delivery of the same event), or a verified event that
  is not a heartbeat or cannot be read (a retry could not change it; a WARNING says so).
- 401 (``WWW-Authenticate: Svix-Signature``): unsigned, forged, wrongly keyed or stale. Svix
  never sends these, so nobody retries them; if Svix's own delivery fails the check (the secret
  was rotated and the canary not yet updated), Svix's retries bring it in once it is fixed.
- 405: not a POST. 413: a body larger than any heartbeat (checked before the signature, so an
  anonymous caller cannot make us hash megabytes).
- 503: the canary cannot judge or record now (no secret configured, Firestore unavailable):
  Svix retries, and the heartbeat arrives once an operator fixes it.

Nothing logged here ever holds the secret, a signature or the body: ids, reasons, latency.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import flask

from notifier import logs
from notifier.config import CANARY_SECRET_ENV
from notifier.domain import heartbeat
from notifier.domain.errors import StoreUnavailable
from notifier.domain.events import safe_id
from notifier.domain.ports import HeartbeatLog
from notifier.handlers import http_body, svix_signature
from notifier.handlers.dependencies import CanaryProvider

# A heartbeat's body is about 300 bytes; Svix adds nothing to it.
MAX_BODY_BYTES = 16 * 1024
log = logs.get("canary")


def _now() -> datetime:
    return datetime.now(UTC)


@http_body.read_by_handler_only
def handle(
    request: flask.Request, provide: CanaryProvider, *, clock: Callable[[], datetime] | None = None
) -> flask.Response:
    """One delivery from Svix (or anyone): verified, then recorded if it is a heartbeat.

    ``provide`` gives the instance's secret and heartbeat log (asked once the method is right);
    ``clock`` gives the arrival time (the system clock, in UTC, when None).
    """
    if request.method != "POST":
        return _refuse(svix_signature.POST_ONLY)
    deps = provide()
    received = svix_signature.receive(
        request, deps.secret, MAX_BODY_BYTES, variable=CANARY_SECRET_ENV, log=log, who="canary"
    )
    if isinstance(received, svix_signature.Refused):
        return _refuse(received)
    arrived_at = (clock or _now)()
    with logs.bound(svix_id=received.svix_id):
        return _verified(received.body, arrived_at, deps.heartbeats)


def _verified(body: bytes, arrived_at: datetime, heartbeats: HeartbeatLog) -> flask.Response:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict):
        return _ignore(logging.WARNING, "unreadable", "the signed body is not a JSON object")
    event_id = safe_id(document.get("id"))
    event_type = safe_id(document.get("type"))
    if event_type != heartbeat.EVENT_TYPE:
        return _ignore(logging.INFO, "not_a_heartbeat", event_id=event_id, event_type=event_type)
    data = document.get("data")
    published = data.get("published_at") if isinstance(data, dict) else None
    try:
        published_at = heartbeat.parse_time(published)
    except ValueError:
        published_at = None
    if event_id is None or published_at is None:
        return _ignore(logging.WARNING, "unreadable", "a heartbeat without id or published_at")
    try:
        new = heartbeats.record(event_id, published_at, arrived_at)
    except StoreUnavailable as exc:
        logs.log(
            log,
            logging.WARNING,
            "canary could not record the heartbeat",
            event_id=event_id,
            reason=exc.code,
        )
        return svix_signature.result(503, "heartbeat not recorded; retry")
    if not new:
        logs.log(log, logging.INFO, "heartbeat already recorded", event_id=event_id)
        return svix_signature.result(200, "already recorded")
    latency = heartbeat.latency_ms(published_at, arrived_at)
    logs.log(
        log, logging.INFO, "heartbeat arrived", event_id=event_id, heartbeat_latency_ms=latency
    )
    return svix_signature.result(200, "recorded")


def _refuse(refused: svix_signature.Refused) -> flask.Response:
    return svix_signature.refusal(refused, log, "canary", _REFUSALS)


_REFUSALS: Mapping[int, str] = {
    401: "signature refused",
    405: "POST only",
    413: "body too large",
    503: "canary is not configured",
}


def _ignore(level: int, reason: str, detail: str = "", **fields: Any) -> flask.Response:
    message = f"canary ignored: {reason}" + (f" ({detail})" if detail else "")
    logs.log(log, level, message, reason=reason, **fields)
    return svix_signature.result(200, "ignored")
