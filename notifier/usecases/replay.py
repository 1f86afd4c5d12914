"""Send failed and stuck notifications again, exactly once: a replay rebuilds the event from its
stored payload and hands it to :meth:`~notifier.usecases.exactly_once.Notifier.deliver` (taking
the same claim as any delivery); a failed one is reopened first, under a new idempotency key.

Which records are taken is decided on the listing (equality filters in the store; time ranges,
"stuck" and ordering here, in memory).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.domain.claims import REPLAYABLE, RecordStatus
from notifier.domain.decoding import event_from
from notifier.domain.errors import NotifierError, Rejected, StoreUnavailable
from notifier.domain.events import Event
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.domain.ports import NotificationQueries
from notifier.domain.records import Record, StoredNotification
from notifier.usecases.exactly_once import Notifier
from notifier.usecases.progress import Progress, run_in_parallel
from notifier.usecases.status import sortable

SKIPPED, UNREADABLE = "skipped", "unreadable"  # a replay's outcomes beyond a delivery's
OnOutcome = Callable[[Event, Outcome, float], None]  # (event, its outcome, monotonic start)


@dataclass(frozen=True)
class Criteria:
    """Which records a replay takes: ``pending`` ones only when stuck (see Record.stuck)."""

    statuses: tuple[str, ...] = tuple(s.value for s in REPLAYABLE)
    project: str | None = None
    event_type: str | None = None
    since: datetime | None = None  # on created_at, inclusive
    until: datetime | None = None  # on created_at, exclusive
    older_than: timedelta = timedelta(minutes=10)
    limit: int | None = None

    def admits(self, record: Record, now: datetime) -> bool:
        """True when the record is one this replay takes (stuck if pending, created in range)."""
        if record.status == RecordStatus.PENDING and not record.stuck(now, self.older_than):
            return False
        return self.in_range(record)

    def in_range(self, record: Record) -> bool:
        """True when the record was created within ``since`` .. ``until``."""
        created = record.created_at
        if self.since is not None and (created is None or created < self.since):
            return False
        return self.until is None or (created is not None and created < self.until)


@dataclass(frozen=True)
class Passed:
    """A pending record a replay leaves alone (a live claim, or Pub/Sub still retrying it), and
    why: the operator sees it was left, and until when."""

    record: Record
    reason: str
    held_until: datetime | None = None  # the claim's lease, while one is live


@dataclass(frozen=True)
class Selection:
    """What a replay takes (oldest first), and the pending ones in its range it leaves alone."""

    records: list[Record]
    passed_over: list[Passed]


def choose(store: NotificationQueries, criteria: Criteria, *, now: datetime) -> Selection:
    """The records a replay with ``criteria`` takes, and those of its range it must leave."""
    chosen, passed = [], []
    for status in dict.fromkeys(criteria.statuses):
        for record in store.listing(
            RecordStatus(status), project=criteria.project, event_type=criteria.event_type
        ):
            if criteria.admits(record, now):
                chosen.append(record)
            elif criteria.in_range(record):
                passed.append(_why_passed(record, now, criteria.older_than))
    chosen.sort(key=lambda r: (sortable(r.created_at), r.event_id))
    passed.sort(key=lambda p: (sortable(p.record.created_at), p.record.event_id))
    return Selection(chosen if criteria.limit is None else chosen[: criteria.limit], passed)


def select(store: NotificationQueries, criteria: Criteria, *, now: datetime) -> list[Record]:
    """The records a replay with ``criteria`` takes, oldest first."""
    return choose(store, criteria, now=now).records


def _why_passed(record: Record, now: datetime, older_than: timedelta) -> Passed:
    error = f" (last error: {record.last_error[:80]})" if record.last_error else ""
    lease = record.lease_expires_at
    if lease is not None and lease > now:
        until = lease.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Passed(record, f"claim held until {until}{error}", held_until=lease)
    return Passed(
        record,
        f"touched less than {_short(older_than)} ago: Pub/Sub may still deliver it "
        f"(--older-than){error}",
    )


def _short(delta: timedelta) -> str:
    """``90s``, ``10m``, ``2h``: as ``--older-than`` is written."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Replayed:
    """What a replay did with one record."""

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
        if self.outcome in (OutcomeKind.DUPLICATE, SKIPPED):
            return self.error in (None, "now sent")
        return self.outcome == OutcomeKind.SENT


def replay(
    records: Iterable[Record],
    *,
    store: NotificationQueries,
    notifier: Notifier,
    max_bytes: int,
    workers: int = 4,
    on_progress: Progress | None = None,
    on_outcome: OnOutcome | None = None,
) -> list[Replayed]:
    """Sends each record again through :meth:`Notifier.deliver`; failed ones are reopened first.

    ``on_outcome`` hears each delivery's outcome (the entry logs it, as the function's entries do).
    """

    def replay_record(record: Record) -> Replayed:
        return _replay_record(record, store, notifier, max_bytes, on_outcome)

    return run_in_parallel(replay_record, list(records), workers, on_progress, lambda r: r.outcome)


def _replay_record(
    record: Record,
    store: NotificationQueries,
    notifier: Notifier,
    max_bytes: int,
    on_outcome: OnOutcome | None = None,
) -> Replayed:
    def result(outcome: str, **more: Any) -> Replayed:
        return Replayed(
            record.event_id, record.project, record.event_type, record.status, outcome, **more
        )

    try:
        stored = store.notification(record.event_id)
    except StoreUnavailable as exc:
        return result(OutcomeKind.RETRIED.value, error=_unavailable(exc))
    now_status = stored.status if stored is not None else "gone"
    if stored is None or now_status != record.status:
        return result(SKIPPED, error=f"now {now_status}")
    if stored.unreadable is not None:
        return result(UNREADABLE, error=stored.unreadable)
    try:
        event = _stored_event(stored, max_bytes)
    except Rejected as exc:
        return result(UNREADABLE, error=exc.code)
    except (ValueError, TypeError) as exc:  # messages name no content
        return result(UNREADABLE, error=f"{type(exc).__name__}: {str(exc)[:100]}")
    replays = stored.replays
    try:
        if record.status == RecordStatus.FAILED:
            if not store.reopen(record.event_id):
                return result(SKIPPED, error="changed while reopening")
            replays += 1
    except NotifierError as exc:
        return result(OutcomeKind.RETRIED.value, replays=replays, error=exc.summary())
    started = time.monotonic()
    outcome = notifier.deliver(event)
    if on_outcome is not None:
        on_outcome(event, outcome, started)
    return result(
        outcome.kind.value,
        replays=replays,
        svix_status=outcome.svix_status,
        svix_message_id=outcome.svix_message_id,
        error=outcome.error.summary() if outcome.error else None,
    )


def _stored_event(stored: StoredNotification, max_bytes: int) -> Event:
    if stored.payload is None:
        raise ValueError("no stored payload")
    document = json.loads(stored.payload)
    if not isinstance(document, dict):
        raise ValueError("stored payload is not an event")
    return event_from(document, max_bytes=max_bytes)


def _unavailable(exc: StoreUnavailable) -> str:
    """As the record's reader names it: the store and the kind of failure, nothing more."""
    cause = exc.__cause__
    return f"{exc.code}: {type(cause).__name__ if cause is not None else exc.detail}"
