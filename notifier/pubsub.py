"""The Pub/Sub entry: one delivery in, one decision and one log line out.

Returning acknowledges the message; raising :class:`Redeliver` (a 503) makes Pub/Sub deliver it
again with backoff. Only a transient outcome raises: bad input is recorded and acknowledged so it
can never poison the subscription.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import ServiceUnavailable

from notifier import logs, wiring
from notifier.errors import BadCredentials, Rejected
from notifier.events import Delivery, decode, delivery_of
from notifier.service import FAILED, Outcome

log = logs.get("pubsub")


class Redeliver(ServiceUnavailable):
    """Raised to have Pub/Sub deliver again; a 503 with no traceback in the logs."""


def handle(envelope: Any) -> Outcome | None:
    deps = wiring.dependencies()
    started = time.monotonic()
    delivery = delivery_of(envelope)
    with logs.bound(pubsub_message_id=delivery.message_id or None):
        try:
            event = decode(envelope, max_bytes=deps.settings.max_payload_bytes)
        except Rejected as rejection:
            record_rejection(rejection, delivery, raw_message(envelope), started)
            return None
        outcome = deps.notifier.deliver(event, delivery)
        fields = {
            "event_id": event.id,
            "project": event.project,
            "event_type": event.type,
            "outcome": outcome.outcome,
            "attempts": outcome.attempts,
            "svix_status": outcome.svix_status,
            "svix_message_id": outcome.svix_message_id,
            "reason": outcome.error.code if outcome.error else None,
            "error": outcome.error.summary() if outcome.error else None,
            "retries": outcome.retries or None,
            "delivery_attempt": delivery.delivery_attempt,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
        }
        logs.log(log, _severity(outcome), f"event {outcome.outcome}", **fields)
        if outcome.must_retry:
            retry_after = getattr(outcome.error, "retry_after", None)
            raise Redeliver(description=outcome.error.code, retry_after=_seconds(retry_after))
        return outcome


def record_rejection(rejection: Rejected, delivery: Delivery, raw: bytes, started: float) -> None:
    """Keeps the message for inspection, then logs why; the payload itself is never logged."""
    deps = wiring.dependencies()
    doc_id = deps.store.reject(rejection, delivery, raw)  # StoreUnavailable: redelivered
    logs.log(
        log,
        logging.WARNING,
        f"message rejected: {rejection.code}",
        outcome="rejected",
        reason=rejection.code,
        error=rejection.detail[:300],
        error_paths=[e.split(":", 1)[0] for e in rejection.errors[:20]] or None,
        rejected_id=doc_id,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )


def raw_message(envelope: Any) -> bytes:
    """The message as received, decoded where possible, for the rejected record."""
    message = envelope.get("message") if isinstance(envelope, Mapping) else None
    data = message.get("data") if isinstance(message, Mapping) else None
    if isinstance(data, str):
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return data.encode("utf-8", "replace")
    if isinstance(data, bytes):
        return data
    return json.dumps(envelope, default=str)[:65536].encode()


def _severity(outcome: Outcome) -> int:
    if outcome.outcome == FAILED or isinstance(outcome.error, BadCredentials):
        return logging.ERROR
    return logging.WARNING if outcome.must_retry else logging.INFO


def _seconds(value: float | None) -> int | None:
    return None if value is None else max(1, round(value))
