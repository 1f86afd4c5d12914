"""One delivery's decision, told in one log line: shared by the Pub/Sub and the HTTP entries.

Both entries run the same pipeline (:meth:`notifier.usecases.exactly_once.Notifier.deliver`) and
must count the same way in the log-based metrics (``outcome``), so the line is written here and
nowhere else.
"""

from __future__ import annotations

import logging
import time

from notifier import logs
from notifier.domain.errors import BadCredentials, IdConflict, Rejected
from notifier.domain.events import Delivery, Event, Identity
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.domain.ports import RejectionStore

log = logs.get("delivery")


def log_outcome(
    event: Event | Identity,
    delivery: Delivery,
    outcome: Outcome,
    started: float,
    *,
    logger: logging.Logger = log,
    rejected_id: str | None = None,
) -> None:
    """The outcome line; its message names the cause (never an id) so errors group by cause.

    An id conflict names the project and type the id is recorded for, and nothing else of theirs.
    """
    error = outcome.error
    conflict = error if isinstance(error, IdConflict) else None
    cause = f": {error.code}{f' {error.status}' if error.status else ''}" if error else ""
    logs.log(
        logger,
        severity(outcome),
        f"event {outcome.kind.value}{cause}",
        event_id=event.id,
        project=event.project,
        event_type=event.type,
        outcome=outcome.kind.value,
        attempts=outcome.attempts,
        svix_status=outcome.svix_status,
        svix_message_id=outcome.svix_message_id,
        reason=error.code if error else None,
        error=error.summary() if error else None,
        retries=outcome.retries or None,
        recorded_project=conflict.recorded_project if conflict else None,
        recorded_event_type=conflict.recorded_type if conflict else None,
        rejected_id=rejected_id,
        delivery_attempt=delivery.delivery_attempt,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        catalog_drift=outcome.catalog_drift,  # counted per event by the drift metric
    )


def record_rejection(
    store: RejectionStore,
    rejection: Rejected,
    delivery: Delivery,
    raw: bytes,
    started: float,
    *,
    logger: logging.Logger = log,
) -> str:
    """Keeps the message for inspection, then logs why; the payload itself is never logged.

    Returns the ``rejected/`` document id; raises ``StoreUnavailable`` when it could not be kept.
    """
    doc_id = store.reject(rejection, delivery, raw)
    log_rejection(rejection, started, rejected_id=doc_id, logger=logger)
    return doc_id


def log_rejection(
    rejection: Rejected,
    started: float,
    *,
    rejected_id: str | None = None,
    logger: logging.Logger = log,
) -> None:
    """The rejection line: the reason and the schema paths, never the values found there."""
    logs.log(
        logger,
        logging.WARNING,
        f"message rejected: {rejection.code}",
        outcome="rejected",
        reason=rejection.code,
        error=rejection.detail[:300],
        error_paths=[e.split(":", 1)[0] for e in rejection.errors[:20]] or None,
        rejected_id=rejected_id,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )


def severity(outcome: Outcome) -> int:
    """ERROR for what an operator must see (failed, bad credentials), WARNING for a retry or a
    refusal (as for any rejected message)."""
    if outcome.kind is OutcomeKind.FAILED or isinstance(outcome.error, BadCredentials):
        return logging.ERROR
    rejected = outcome.kind is OutcomeKind.REJECTED
    return logging.WARNING if outcome.must_retry or rejected else logging.INFO
