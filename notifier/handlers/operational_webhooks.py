"""Svix's operational webhooks: where Svix tells us a customer endpoint is failing, gave up on an
event, was disabled or enabled again; trusted only when Svix signed them.

Public as the canary is (Svix calls without Google credentials): the signature, checked by the
svix SDK's verifier with the operational-webhook endpoint's secret
(``SVIX_OPERATIONAL_WEBHOOK_SECRET``), is the only gate. A verified webhook is recorded once per
``svix-id`` (:class:`~notifier.domain.ports.EndpointHealthLog`) and logged once.

Answers (Svix retries every non-2xx on its schedule):

- 200: recorded, already recorded (a retry of the same ``svix-id``), or verified but of a type
  we do not act on or unreadable (a retry could not change it; the log line says so).
- 401 (``WWW-Authenticate: Svix-Signature``): unsigned, forged, wrongly keyed, stale or future.
  Nothing is recorded; one WARNING line says why.
- 405: not a POST. 413: a body larger than any operational webhook, refused before hashing.
- 503: cannot judge or record now (no secret configured, Firestore unavailable): Svix retries.

Logged: ids, types, states, status codes. Never the body, an endpoint URL, the secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import flask

from notifier import logs
from notifier.config import OPERATIONAL_SECRET_ENV
from notifier.domain import endpoint_health
from notifier.domain.errors import StoreUnavailable
from notifier.domain.ports import EndpointHealthLog
from notifier.handlers import http_body, svix_signature
from notifier.handlers.dependencies import OperationalProvider

# An operational webhook is a few hundred bytes of ids (OpenAPI *EventData): 16 KiB is plenty.
MAX_BODY_BYTES = 16 * 1024

log = logs.get("operational")


def _now() -> datetime:
    return datetime.now(UTC)


@http_body.read_by_handler_only
def handle(
    request: flask.Request,
    provide: OperationalProvider,
    *,
    clock: Callable[[], datetime] | None = None,
) -> flask.Response:
    """One delivery from Svix (or anyone): verified, then applied to the endpoint's health."""
    if request.method != "POST":
        return _refuse(svix_signature.POST_ONLY)
    deps = provide()
    received = svix_signature.receive(
        request,
        deps.secret,
        MAX_BODY_BYTES,
        variable=OPERATIONAL_SECRET_ENV,
        log=log,
        who="operational webhooks",
    )
    if isinstance(received, svix_signature.Refused):
        return _refuse(received)
    with logs.bound(svix_id=received.svix_id):
        if received.svix_id is None:  # signed, so Svix's: but we could not tell a repeat
            return _ignore(logging.WARNING, "unreadable", "no usable svix-id")
        return _verified(received.svix_id, received.body, (clock or _now)(), deps.endpoints)


def _verified(
    svix_id: str, body: bytes, arrived_at: datetime, endpoints: EndpointHealthLog
) -> flask.Response:
    try:
        webhook = endpoint_health.read(json.loads(body))
    except (ValueError, RecursionError) as exc:  # JSON errors and endpoint_health.Unreadable
        detail = str(exc) if isinstance(exc, endpoint_health.Unreadable) else "not JSON"
        return _ignore(logging.WARNING, "unreadable", detail)
    fields: dict[str, Any] = {
        "webhook_type": webhook.type,
        "project": webhook.project,
        "endpoint_id": webhook.endpoint_id,
        "endpoint_uid": webhook.endpoint_uid,
    }
    if not webhook.known:
        return _ignore(logging.INFO, "unknown_type", **fields)
    try:
        applied = endpoints.record(svix_id, webhook, arrived_at)
    except endpoint_health.Unreadable as exc:
        return _ignore(logging.WARNING, "unreadable", str(exc), **fields)
    except StoreUnavailable as exc:
        logs.log(
            log,
            logging.WARNING,
            "operational webhook not recorded",
            reason=exc.code,
            **fields,
        )
        return svix_signature.result(503, "not recorded; retry")
    if not applied.new:
        logs.log(log, logging.INFO, "operational webhook already recorded", **fields)
        return svix_signature.result(200, "already recorded")
    health = applied.health
    state = health.state.value if health else None
    level = logging.WARNING if state == endpoint_health.State.DISABLED else logging.INFO
    logs.log(
        log,
        level,
        f"operational webhook {webhook.type}: endpoint {state or 'forgotten'}",
        endpoint_state=state,
        status_code=webhook.status_code,
        event_id=webhook.event_id,
        event_record=applied.event_record,
        **fields,
    )
    return svix_signature.result(200, "recorded")


def _refuse(refused: svix_signature.Refused) -> flask.Response:
    return svix_signature.refusal(refused, log, "operational webhook", _REFUSALS)


_REFUSALS = {
    401: "signature refused",
    405: "POST only",
    413: "body too large",
    503: "operational webhooks are not configured",
}


def _ignore(level: int, reason: str, detail: str = "", **fields: Any) -> flask.Response:
    message = f"operational webhook ignored: {reason}" + (f" ({detail})" if detail else "")
    logs.log(log, level, message, reason=reason, **fields)
    return svix_signature.result(200, "ignored")
