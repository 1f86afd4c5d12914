"""The Pub/Sub entry: one delivery in, one decision and one log line out.

Returning acknowledges the message; raising :class:`Redeliver` (a 503) makes Pub/Sub deliver it
again with backoff. Only a transient outcome raises: bad input is recorded and acknowledged so it
can never poison the subscription.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import ServiceUnavailable

from notifier import logs, outcomes, wiring
from notifier.errors import Rejected
from notifier.events import decode, delivery_of
from notifier.service import Outcome

log = logs.get("pubsub")


class Redeliver(ServiceUnavailable):
    """Raised to have Pub/Sub deliver again; a 503 with no traceback in the logs."""


def handle(envelope: Any) -> Outcome | None:
    outcome = process(envelope)
    if outcome is not None and outcome.must_retry:
        retry_after = getattr(outcome.error, "retry_after", None)
        raise Redeliver(description=outcome.error.code, retry_after=_seconds(retry_after))
    return outcome


def process(envelope: Any) -> Outcome | None:
    """Decides one delivery and logs it; ``None`` for a rejected message (recorded, to ack).

    Never raises for an outcome (only ``StoreUnavailable`` when a rejection cannot be recorded):
    the caller answers as its transport needs (:func:`handle` for Eventarc, the HTTP entry for a
    push subscription pointed at it).
    """
    deps = wiring.dependencies()
    started = time.monotonic()
    delivery = delivery_of(envelope)
    with logs.bound(pubsub_message_id=delivery.message_id or None):
        try:
            event = decode(envelope, max_bytes=deps.settings.max_payload_bytes)
        except Rejected as rejection:
            outcomes.record_rejection(
                rejection, delivery, raw_message(envelope), started, logger=log
            )
            return None
        outcome = deps.notifier.deliver(event, delivery)
        outcomes.log_outcome(event, delivery, outcome, started, logger=log)
        return outcome


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
    return json.dumps(envelope, default=str).encode()  # whole: raw_size is the size received


def _seconds(value: float | None) -> int | None:
    return None if value is None else max(1, round(value))
