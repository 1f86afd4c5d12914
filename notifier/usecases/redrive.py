"""Bring dead letters back: pull the dead-letter subscription until it is empty and send every
message back, republished to the topic (the deployed function gets it, with Pub/Sub's retries) or
processed here through the function's own entry (``direct``).

A message is acknowledged only once republished, or once the function reached a final outcome;
the rest, and everything in a dry run, is given back to the subscription at the end.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from notifier.domain.decoding import parse_event
from notifier.domain.errors import NotifierError, Rejected
from notifier.domain.events import SAFE_ID
from notifier.domain.messages import PulledMessage
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.domain.ports import DeadLetters, Republisher
from notifier.usecases.progress import Progress, run_in_parallel

TO_TOPIC, DIRECT = "to-topic", "direct"
ACK_EXTENSION_SECONDS = 600  # Pub/Sub's maximum: what this run holds a pulled message for
DEAD_LETTER_ATTRIBUTES = "CloudPubSubDeadLetter"  # added by Pub/Sub when it dead-lettered it
REDRIVEN_FROM = "notifier_redriven_from"  # attribute naming the dead letter a message came from
REJECTED, REPUBLISHED, DRY_RUN = "rejected", "republished", "dry_run"
_FINAL = (OutcomeKind.SENT, OutcomeKind.DUPLICATE, OutcomeKind.FAILED, REJECTED)

Process = Callable[[dict[str, Any]], Outcome | None]  # the function's entry: a push body in


@dataclass(frozen=True)
class Redriven:
    """What a redrive did with one dead letter."""

    message_id: str
    outcome: str  # republished | sent | duplicate | failed | rejected | retried | dry_run
    acked: bool = False
    event_id: str | None = None
    project: str | None = None
    event_type: str | None = None
    source_attempts: int | None = None  # how often Pub/Sub had delivered it before dead-lettering
    detail: str | None = None  # the new message id, or why


def redrive(
    *,
    dead_letters: DeadLetters,
    mode: str,
    republisher: Republisher | None = None,
    process: Process | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    wait: float = 5.0,
    batch: int = 50,
    workers: int = 4,
    max_bytes: int = 1024 * 1024,
    on_progress: Progress | None = None,
) -> list[Redriven]:
    """Pulls ``dead_letters`` until empty (or ``limit`` messages) and sends each one back:
    through ``republisher`` (``TO_TOPIC``) or ``process`` (``DIRECT``)."""
    if mode not in (TO_TOPIC, DIRECT):
        raise ValueError(f"unknown redrive mode {mode!r}")
    if mode == TO_TOPIC and republisher is None and not dry_run:
        raise ValueError("redrive to a topic needs a publisher and the topic")
    if mode == DIRECT and process is None and not dry_run:
        raise ValueError("a direct redrive needs the handler")

    def process_here(message: PulledMessage) -> Redriven:
        assert process is not None  # checked above
        return _process_directly(message, dead_letters.path, process, max_bytes)

    seen: set[str] = set()
    held: dict[str, str] = {}  # message id -> ack id, for messages left in the subscription
    results: list[Redriven] = []
    counts: dict[str, int] = defaultdict(int)
    try:
        while limit is None or len(results) < limit:
            room = batch if limit is None else min(batch, limit - len(results))
            fresh: list[PulledMessage] = []
            for message in dead_letters.pull(room, wait):
                if message.message_id in seen:  # its lease ran out while held: keep the newer
                    held[message.message_id] = message.ack_id
                    continue
                seen.add(message.message_id)
                fresh.append(message)
            if not fresh:
                break
            dead_letters.hold([m.ack_id for m in fresh], ACK_EXTENSION_SECONDS)
            if dry_run:
                outcomes = [_dead_letter_report(m, DRY_RUN, max_bytes) for m in fresh]
            elif mode == TO_TOPIC:
                assert republisher is not None
                outcomes = _republish(republisher, fresh, max_bytes)
            else:
                outcomes = run_in_parallel(process_here, fresh, workers, None, lambda o: o.outcome)
            to_ack = [m.ack_id for m, o in zip(fresh, outcomes, strict=True) if o.acked]
            acked = dead_letters.acknowledge(to_ack)
            for message, outcome in zip(fresh, outcomes, strict=True):
                if outcome.acked and message.ack_id not in acked:
                    outcome = replace(outcome, acked=False, detail="ack failed: may come back")
                if not outcome.acked:
                    held[message.message_id] = message.ack_id
                results.append(outcome)
                counts[outcome.outcome] += 1
                if on_progress is not None:
                    on_progress(len(results), dict(counts))
    finally:
        dead_letters.hold(list(held.values()), 0)  # back for the next run
    return results


def _dead_letter_report(
    message: PulledMessage, outcome: str, max_bytes: int, **more: Any
) -> Redriven:
    """What the message is, as the function would see it; ids only when they are safe ones."""
    attempts = message.attributes.get(f"{DEAD_LETTER_ATTRIBUTES}SourceDeliveryCount", "")
    fields: dict[str, Any] = {
        "source_attempts": int(attempts) if attempts.isdigit() else None,
    }
    try:
        event = parse_event(message.data, max_bytes=max_bytes)
        fields.update(event_id=event.id, project=event.project, event_type=event.type)
    except Rejected as rejection:
        fields["detail"] = f"invalid: {rejection.code}"
    fields.update(more)
    return Redriven(message_id=_safe(message.message_id), outcome=outcome, **fields)


def _republish(
    republisher: Republisher, fresh: list[PulledMessage], max_bytes: int
) -> list[Redriven]:
    """Back to the topic with the publisher's attributes (Pub/Sub's dead-letter ones dropped)."""
    messages = []
    for message in fresh:
        attributes = {
            key: value
            for key, value in message.attributes.items()
            if not key.startswith((DEAD_LETTER_ATTRIBUTES, "goog"))
        }
        attributes[REDRIVEN_FROM] = message.message_id
        messages.append((message.data, attributes))
    outcomes = []
    for message, published in zip(fresh, republisher.publish(messages), strict=True):
        if isinstance(published, Exception):  # leave it in the dead letters
            failure = type(published).__name__
            outcomes.append(
                _dead_letter_report(message, OutcomeKind.RETRIED.value, max_bytes, detail=failure)
            )
            continue
        outcomes.append(
            _dead_letter_report(message, REPUBLISHED, max_bytes, acked=True, detail=published)
        )
    return outcomes


def _process_directly(
    message: PulledMessage, subscription: str, process: Process, max_bytes: int
) -> Redriven:
    """Through the function's own entry; acknowledged only when the outcome is final."""
    report = _dead_letter_report(message, OutcomeKind.RETRIED.value, max_bytes)
    try:
        outcome = process(push_envelope(message, subscription))
    except NotifierError as exc:
        return replace(report, detail=exc.summary())
    if outcome is None:
        return replace(report, outcome=REJECTED, acked=True)
    if outcome.must_retry:  # what the Eventarc entry answers with a 503 (Redeliver)
        return replace(report, detail=outcome.error.code if outcome.error else "redeliver")
    error = outcome.error.summary() if outcome.error else None
    return replace(
        report,
        outcome=outcome.kind.value,
        acked=outcome.kind in _FINAL,
        detail=error or outcome.svix_message_id,
    )


def push_envelope(message: PulledMessage, subscription: str) -> dict[str, Any]:
    """The push body Eventarc would have delivered for this message (the function's input)."""
    body: dict[str, Any] = {
        "attributes": dict(message.attributes),
        "messageId": message.message_id,
        "publishTime": message.publish_time,
    }
    if message.data:
        body["data"] = base64.b64encode(message.data).decode("ascii")
    return {"message": body, "subscription": subscription}


def _safe(value: str) -> str:
    return value if SAFE_ID.fullmatch(value or "") else "?"
