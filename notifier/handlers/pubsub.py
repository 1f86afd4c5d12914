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

from notifier import logs
from notifier.domain import heartbeat
from notifier.domain.decoding import decode, delivery_of, identity_of
from notifier.domain.errors import Rejected
from notifier.domain.events import Delivery, Event, Identity
from notifier.domain.outcomes import Outcome
from notifier.handlers import outcome_log
from notifier.handlers.dependencies import Dependencies
from notifier.usecases.redelivery import done_before

log = logs.get("pubsub")


class Redeliver(ServiceUnavailable):
    """Raised to have Pub/Sub deliver again; a 503 with no traceback in the logs."""


def handle(envelope: Any, deps: Dependencies) -> Outcome | None:
    """Eventarc's delivery: returns to acknowledge, raises :class:`Redeliver` to be retried."""
    outcome = process(envelope, deps)
    if outcome is not None and outcome.must_retry:
        reason = outcome.error.code if outcome.error is not None else outcome.kind.value
        raise Redeliver(description=reason, retry_after=_seconds(outcome.retry_after))
    return outcome


def process(envelope: Any, deps: Dependencies) -> Outcome | None:
    """Decides one delivery and logs it; ``None`` for a rejected message (recorded, to ack), an
    outcome ``rejected`` for an event whose id is another's (recorded too, to ack).

    Never raises for an outcome (only ``StoreUnavailable`` when a rejection cannot be recorded):
    the caller answers as its transport needs (:func:`handle` for Eventarc, the HTTP entry for a
    push subscription pointed at it).
    """
    started = time.monotonic()
    delivery = delivery_of(envelope)
    with logs.bound(pubsub_message_id=delivery.message_id or None):
        identity = _redelivered(envelope, delivery)
        done, looked = done_before(deps.store, identity, delivery) if identity else (None, None)
        if identity is not None and done is not None:  # this very message was done before
            outcome_log.log_outcome(identity, delivery, done, started, logger=log)
            return done
        try:
            event = _heartbeat(envelope, delivery, deps) or decode(
                envelope, max_bytes=deps.settings.max_payload_bytes
            )
        except Rejected as rejection:
            raw = raw_message(envelope)
            outcome_log.record_rejection(deps.store, rejection, delivery, raw, started, logger=log)
            return None
        outcome = deps.notifier.deliver(event, delivery, looked)
        rejected_id = None
        if isinstance(outcome.error, Rejected):  # its id is another's: kept, acknowledged
            rejected_id = deps.store.reject(outcome.error, delivery, raw_message(envelope))
        outcome_log.log_outcome(
            event, delivery, outcome, started, logger=log, rejected_id=rejected_id
        )
        return outcome


def _redelivered(envelope: Any, delivery: Delivery) -> Identity | None:
    """A redelivery's ids, for its record to be read first (:mod:`notifier.usecases.redelivery`);
    None for a first delivery, which goes the full way at once."""
    if (delivery.delivery_attempt or 1) <= 1 or not delivery.message_id:
        return None
    return identity_of(envelope)


def _heartbeat(envelope: Any, delivery: Delivery, deps: Dependencies) -> Event | None:
    """The Scheduler's heartbeat request as the heartbeat event (its id from the messageId)."""
    return heartbeat.request_event(
        envelope,
        delivery,
        project=deps.settings.heartbeat_project,
        max_bytes=deps.settings.max_payload_bytes,
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
    return json.dumps(envelope, default=str).encode()  # whole: raw_size is the size received


def _seconds(value: float | None) -> int | None:
    return None if value is None else max(1, round(value))
