"""Operator work on a running deployment: where the records stand, sending again what did not go
out, and bringing dead letters back.

Nothing here has its own way to Svix: a replay rebuilds the event from its stored payload and hands
it to :meth:`Notifier.deliver`, and a direct redrive hands the dead letter to
:func:`notifier.pubsub.handle`, so both keep the exactly-once guarantees of the function.

Queries use equality filters only (``status``, ``project``, ``event_type``), which Firestore serves
from its single-field indexes; time ranges and ordering are applied in memory to the listing
(projected to a few fields, never the payload). Only ``pending`` and ``failed`` records are ever
listed, and they are few; ``sent`` ones are only counted.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from notifier.config import ConfigError
from notifier.domain.outcomes import Outcome
from notifier.errors import NotifierError, Rejected
from notifier.events import SAFE_ID, Event, event_from, parse_event
from notifier.service import Notifier
from notifier.store import APPLICATIONS, NOTIFICATIONS, REJECTED, FirestoreStore, unpack

STATUSES = ("pending", "sent", "failed")
REPLAYABLE = ("failed", "pending")
UNKNOWN_PROJECT = "(unknown)"
_TIMEOUT = 30.0
_LISTED = [
    "status",
    "project",
    "event_type",
    "attempts",
    "replays",
    "created_at",
    "updated_at",
    "lease_expires_at",
    "last_error",
    "failed_at",
]

Progress = Callable[[int, dict[str, int]], None]  # (done so far, outcomes so far)


# -- records --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """A notification as listed: what an operator needs to judge it, never its payload."""

    event_id: str
    status: str
    project: str | None = None
    event_type: str | None = None
    attempts: int = 0
    replays: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    failed_at: datetime | None = None

    @classmethod
    def of(cls, snapshot: Any) -> Record:
        data = snapshot.to_dict() or {}
        return cls(
            event_id=snapshot.id,
            status=str(data.get("status") or ""),
            project=data.get("project"),
            event_type=data.get("event_type"),
            attempts=int(data.get("attempts") or 0),
            replays=int(data.get("replays") or 0),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            lease_expires_at=data.get("lease_expires_at"),
            last_error=data.get("last_error"),
            failed_at=data.get("failed_at"),
        )

    def stuck(self, now: datetime, older_than: timedelta) -> bool:
        """Pending, nobody holds it, and untouched for ``older_than``: Pub/Sub has given up on it
        (or it was dead-lettered), so only a replay will send it."""
        if self.status != "pending":
            return False
        if self.lease_expires_at is not None and self.lease_expires_at > now:
            return False
        return self.updated_at is None or self.updated_at <= now - older_than


def _listing(db: firestore.Client, status: str, **equal: str | None) -> Iterator[Record]:
    query = db.collection(NOTIFICATIONS).where(filter=FieldFilter("status", "==", status))
    for name, value in equal.items():
        if value is not None:
            query = query.where(filter=FieldFilter(name, "==", value))
    for snapshot in query.select(_LISTED).stream(timeout=_TIMEOUT):
        yield Record.of(snapshot)


def _count(query: Any) -> int:
    return int(query.count(alias="n").get(timeout=_TIMEOUT)[0][0].value)


# -- status ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    totals: dict[str, int]  # status -> notifications
    by_project: dict[str, dict[str, int]]  # project -> status -> notifications
    rejected: int
    stuck: int  # pending ones a replay would pick up (see Record.stuck)
    oldest_pending: Record | None
    latest_failures: list[Record] = field(default_factory=list)


def status(
    db: firestore.Client,
    *,
    now: datetime,
    older_than: timedelta,
    failures: int = 10,
    workers: int = 8,
) -> Status:
    """Counts are exact: ``count()`` aggregations for the totals and the ``sent`` per project
    (projects from ``applications/``, which every sent event's project has), the listing of the
    pending and failed records for the rest."""
    notifications = db.collection(NOTIFICATIONS)
    totals = {
        s: _count(notifications.where(filter=FieldFilter("status", "==", s))) for s in STATUSES
    }
    rejected = _count(db.collection(REJECTED))
    open_records = [r for s in ("pending", "failed") for r in _listing(db, s)]

    by_project: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    for record in open_records:
        by_project[record.project or UNKNOWN_PROJECT][record.status] += 1
    projects = {snap.id for snap in db.collection(APPLICATIONS).select([]).stream()}
    projects |= {r.project for r in open_records if r.project}

    def sent_in(project: str) -> int:
        query = notifications.where(filter=FieldFilter("status", "==", "sent"))
        return _count(query.where(filter=FieldFilter("project", "==", project)))

    with ThreadPoolExecutor(max(1, workers)) as pool:
        sent = dict(zip(sorted(projects), pool.map(sent_in, sorted(projects)), strict=True))
    for project, count in sent.items():
        if count:
            by_project[project]["sent"] = count
    unaccounted = totals["sent"] - sum(sent.values())
    if unaccounted > 0:  # a sent event whose applications/ record was deleted
        by_project[UNKNOWN_PROJECT]["sent"] += unaccounted

    pending = [r for r in open_records if r.status == "pending"]
    failed = [r for r in open_records if r.status == "failed"]
    oldest = min(pending, key=lambda r: (_sortable(r.created_at), r.event_id), default=None)
    failed.sort(key=lambda r: (_sortable(r.failed_at or r.updated_at), r.event_id), reverse=True)
    return Status(
        totals=totals,
        by_project=dict(sorted(by_project.items())),
        rejected=rejected,
        stuck=sum(1 for r in pending if r.stuck(now, older_than)),
        oldest_pending=oldest,
        latest_failures=failed[: max(0, failures)],
    )


def _sortable(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


# -- replay ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criteria:
    """Which records a replay takes: ``pending`` ones only when stuck (see Record.stuck)."""

    statuses: tuple[str, ...] = REPLAYABLE
    project: str | None = None
    event_type: str | None = None
    since: datetime | None = None  # on created_at, inclusive
    until: datetime | None = None  # on created_at, exclusive
    older_than: timedelta = timedelta(minutes=10)
    limit: int | None = None

    def admits(self, record: Record, now: datetime) -> bool:
        if record.status == "pending" and not record.stuck(now, self.older_than):
            return False
        created = record.created_at
        if self.since is not None and (created is None or created < self.since):
            return False
        return self.until is None or (created is not None and created < self.until)


def select(db: firestore.Client, criteria: Criteria, *, now: datetime) -> list[Record]:
    """The records a replay with ``criteria`` takes, oldest first."""
    chosen = [
        record
        for status_ in dict.fromkeys(criteria.statuses)
        for record in _listing(
            db, status_, project=criteria.project, event_type=criteria.event_type
        )
        if criteria.admits(record, now)
    ]
    chosen.sort(key=lambda r: (_sortable(r.created_at), r.event_id))
    return chosen if criteria.limit is None else chosen[: criteria.limit]


@dataclass(frozen=True)
class Replayed:
    event_id: str
    project: str | None
    event_type: str | None
    was: str  # the status it was selected in
    outcome: str  # sent | duplicate | failed | retried | skipped | unreadable
    replays: int = 0  # its replay number: the idempotency key is notifier-{id}-replay{n} when > 0
    svix_status: int | None = None
    svix_message_id: str | None = None
    error: str | None = None

    @property
    def done(self) -> bool:
        """Svix has it: sent now, or found sent already (by Pub/Sub, or another operator)."""
        if self.outcome in ("duplicate", "skipped"):
            return self.error in (None, "now sent")
        return self.outcome == "sent"


def replay(
    records: Iterable[Record],
    *,
    db: firestore.Client,
    store: FirestoreStore,
    notifier: Notifier,
    max_bytes: int,
    workers: int = 4,
    on_progress: Progress | None = None,
) -> list[Replayed]:
    """Sends each record again through :meth:`Notifier.deliver`; failed ones are reopened first."""

    def one(record: Record) -> Replayed:
        def result(outcome: str, **more: Any) -> Replayed:
            return Replayed(
                record.event_id, record.project, record.event_type, record.status, outcome, **more
            )

        try:
            snapshot = db.collection(NOTIFICATIONS).document(record.event_id).get(timeout=_TIMEOUT)
        except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
            return result("retried", error=f"store_unavailable: {type(exc).__name__}")
        data = snapshot.to_dict() or {}
        now_status = data.get("status") if snapshot.exists else "gone"
        if now_status != record.status:
            return result("skipped", error=f"now {now_status}")
        try:
            event = _stored_event(data, max_bytes)
        except Rejected as exc:
            return result("unreadable", error=exc.code)
        except (ValueError, TypeError, zlib.error) as exc:  # messages name no content
            return result("unreadable", error=f"{type(exc).__name__}: {str(exc)[:100]}")
        replays = int(data.get("replays") or 0)
        try:
            if record.status == "failed":
                if not store.reopen(record.event_id):
                    return result("skipped", error="changed while reopening")
                replays += 1
        except NotifierError as exc:
            return result("retried", replays=replays, error=exc.summary())
        outcome = notifier.deliver(event)
        return result(
            outcome.kind.value,
            replays=replays,
            svix_status=outcome.svix_status,
            svix_message_id=outcome.svix_message_id,
            error=outcome.error.summary() if outcome.error else None,
        )

    return _run(one, list(records), workers, on_progress, lambda r: r.outcome)


def _stored_event(data: dict[str, Any], max_bytes: int) -> Event:
    blob = data.get("payload")
    if not isinstance(blob, bytes):
        raise ValueError("no stored payload")
    document = json.loads(unpack(blob))
    if not isinstance(document, dict):
        raise ValueError("stored payload is not an event")
    return event_from(document, max_bytes=max_bytes)


def _run(work, items, workers, on_progress, outcome_of) -> list:
    """``work`` on every item, ``workers`` at a time, in order, reporting progress as they end."""
    results, counts = [], defaultdict(int)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for result in pool.map(work, items):
            results.append(result)
            counts[outcome_of(result)] += 1
            if on_progress is not None:
                on_progress(len(results), dict(counts))
    return results


# -- redrive --------------------------------------------------------------------------------------

TO_TOPIC, DIRECT = "to-topic", "direct"
ACK_EXTENSION_SECONDS = 600  # Pub/Sub's maximum: what this run holds a pulled message for
_DEAD_LETTER_ATTRIBUTES = "CloudPubSubDeadLetter"  # added by Pub/Sub when it dead-lettered it
REDRIVEN_FROM = "notifier_redriven_from"  # attribute naming the dead letter a message came from
_FINAL = ("sent", "duplicate", "failed", "rejected")


@dataclass(frozen=True)
class Redriven:
    message_id: str
    outcome: str  # republished | sent | duplicate | failed | rejected | retried | dry_run
    acked: bool = False
    event_id: str | None = None
    project: str | None = None
    event_type: str | None = None
    source_attempts: int | None = None  # how often Pub/Sub had delivered it before dead-lettering
    detail: str | None = None  # the new message id, or why


def pubsub_module():
    """``google-cloud-pubsub`` is needed by ``redrive`` only, and is not in the function's
    requirements.txt: it comes with requirements-dev.txt."""
    try:
        from google.cloud import pubsub_v1
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "redrive needs google-cloud-pubsub: pip install -r requirements-dev.txt"
        ) from exc
    return pubsub_v1


def resource_path(project: str, kind: str, name: str) -> str:
    """``name``: a short id, or already a full path such as ``projects/P/topics/T``."""
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


def redrive(
    *,
    subscriber: Any,
    subscription: str,
    mode: str,
    publisher: Any = None,
    topic: str | None = None,
    process: Callable[[dict[str, Any]], Outcome | None] | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    wait: float = 5.0,
    batch: int = 50,
    workers: int = 4,
    max_bytes: int = 1024 * 1024,
    on_progress: Progress | None = None,
) -> list[Redriven]:
    """Pulls the dead-letter ``subscription`` until it is empty (or ``limit`` messages) and sends
    every message back: published to ``topic`` (``TO_TOPIC``), or through ``process`` (``DIRECT``,
    the function's own entry). A message is acknowledged only once republished, or once
    ``process`` reached a final outcome; the rest, and everything in a dry run, is released at the
    end for the next run. ``subscription`` and ``topic`` are full resource paths.
    """
    if mode not in (TO_TOPIC, DIRECT):
        raise ValueError(f"unknown redrive mode {mode!r}")
    if mode == TO_TOPIC and (publisher is None or not topic) and not dry_run:
        raise ValueError("redrive to a topic needs a publisher and the topic")
    if mode == DIRECT and process is None and not dry_run:
        raise ValueError("a direct redrive needs the handler")
    seen: set[str] = set()
    held: dict[str, str] = {}  # message id -> ack id, for messages left in the subscription
    results: list[Redriven] = []
    counts: dict[str, int] = defaultdict(int)
    try:
        while limit is None or len(results) < limit:
            room = batch if limit is None else min(batch, limit - len(results))
            fresh = []
            for received in _pull(subscriber, subscription, room, wait):
                message_id = received.message.message_id
                if message_id in seen:  # its lease ran out while this run held it: keep the newer
                    held[message_id] = received.ack_id
                    continue
                seen.add(message_id)
                fresh.append(received)
            if not fresh:
                break
            _modify(subscriber, subscription, [r.ack_id for r in fresh], ACK_EXTENSION_SECONDS)
            if dry_run:
                outcomes = [_described(r, "dry_run", max_bytes) for r in fresh]
            elif mode == TO_TOPIC:
                outcomes = _republish(publisher, topic, fresh, max_bytes)
            else:
                outcomes = _run(
                    lambda r: _handled(r, subscription, process, max_bytes),
                    fresh,
                    workers,
                    None,
                    lambda o: o.outcome,
                )
            to_ack = [r.ack_id for r, o in zip(fresh, outcomes, strict=True) if o.acked]
            acked = _acknowledge(subscriber, subscription, to_ack)
            for received, outcome in zip(fresh, outcomes, strict=True):
                if outcome.acked and received.ack_id not in acked:
                    outcome = replace(outcome, acked=False, detail="ack failed: may come back")
                if not outcome.acked:
                    held[received.message.message_id] = received.ack_id
                results.append(outcome)
                counts[outcome.outcome] += 1
                if on_progress is not None:
                    on_progress(len(results), dict(counts))
    finally:
        _modify(subscriber, subscription, list(held.values()), 0)  # back for the next run
    return results


def _pull(subscriber: Any, subscription: str, room: int, wait: float) -> list[Any]:
    try:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": room},
            timeout=wait,
            retry=None,
        )
    except gexc.DeadlineExceeded:
        return []
    return list(response.received_messages)


def _modify(subscriber: Any, subscription: str, ack_ids: list[str], seconds: int) -> None:
    for chunk in _chunks(ack_ids):
        try:
            subscriber.modify_ack_deadline(
                request={
                    "subscription": subscription,
                    "ack_ids": chunk,
                    "ack_deadline_seconds": seconds,
                },
                timeout=_TIMEOUT,
            )
        except gexc.InvalidArgument:  # a stale ack id: its lease is gone anyway
            continue


def _acknowledge(subscriber: Any, subscription: str, ack_ids: list[str]) -> set[str]:
    """The ack ids accepted; one stale id can fail a whole request, so then one at a time."""
    accepted: set[str] = set()
    for chunk in _chunks(ack_ids):
        try:
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": chunk}, timeout=_TIMEOUT
            )
            accepted.update(chunk)
        except gexc.GoogleAPICallError:
            for ack_id in chunk:
                try:
                    subscriber.acknowledge(
                        request={"subscription": subscription, "ack_ids": [ack_id]},
                        timeout=_TIMEOUT,
                    )
                    accepted.add(ack_id)
                except gexc.GoogleAPICallError:
                    continue
    return accepted


def _chunks(items: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _described(received: Any, outcome: str, max_bytes: int, **more: Any) -> Redriven:
    """What the message is, as the function would see it; ids only when they are safe ones."""
    message = received.message
    attempts = message.attributes.get(f"{_DEAD_LETTER_ATTRIBUTES}SourceDeliveryCount", "")
    fields: dict[str, Any] = {
        "source_attempts": int(attempts) if attempts.isdigit() else None,
    }
    try:
        event = parse_event(bytes(message.data), max_bytes=max_bytes)
        fields.update(event_id=event.id, project=event.project, event_type=event.type)
    except Rejected as rejection:
        fields["detail"] = f"invalid: {rejection.code}"
    fields.update(more)
    return Redriven(message_id=_safe(message.message_id), outcome=outcome, **fields)


def _republish(publisher: Any, topic: str, fresh: list[Any], max_bytes: int) -> list[Redriven]:
    """Back to the topic with the publisher's attributes (Pub/Sub's dead-letter ones dropped)."""
    futures = []
    for received in fresh:
        message = received.message
        attributes = {
            key: value
            for key, value in message.attributes.items()
            if not key.startswith((_DEAD_LETTER_ATTRIBUTES, "goog"))
        }
        attributes[REDRIVEN_FROM] = message.message_id
        futures.append(publisher.publish(topic, bytes(message.data), **attributes))
    outcomes = []
    for received, future in zip(fresh, futures, strict=True):
        try:
            new_id = future.result(timeout=_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - any failure: leave it in the dead letters
            outcomes.append(_described(received, "retried", max_bytes, detail=type(exc).__name__))
            continue
        outcomes.append(
            _described(received, "republished", max_bytes, acked=True, detail=str(new_id))
        )
    return outcomes


def _handled(received: Any, subscription: str, process: Callable, max_bytes: int) -> Redriven:
    """Through the function's own entry; acknowledged only when the outcome is final."""
    described = _described(received, "retried", max_bytes)
    try:
        outcome = process(push_envelope(received.message, subscription))
    except NotifierError as exc:
        return replace(described, detail=exc.summary())
    if outcome is None:
        return replace(described, outcome="rejected", acked=True)
    if outcome.must_retry:  # what the Eventarc entry would answer with a 503
        return replace(described, detail=outcome.error.code if outcome.error else "redeliver")
    error = outcome.error.summary() if outcome.error else None
    return replace(
        described,
        outcome=outcome.kind.value,
        acked=outcome.kind.value in _FINAL,
        detail=error or outcome.svix_message_id,
    )


def push_envelope(message: Any, subscription: str) -> dict[str, Any]:
    """The push body Eventarc would have delivered for this message (the function's input)."""
    body: dict[str, Any] = {
        "attributes": dict(message.attributes),
        "messageId": message.message_id,
        "publishTime": message.publish_time.rfc3339() if message.publish_time else "",
    }
    if message.data:
        body["data"] = base64.b64encode(bytes(message.data)).decode("ascii")
    return {"message": body, "subscription": subscription}


def _safe(value: str) -> str:
    return value if SAFE_ID.fullmatch(value or "") else "?"
