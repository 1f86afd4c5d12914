"""Where the records stand: counts by status and project, the stuck, the oldest pending, the
latest failures.

Counts are exact: count aggregations for the totals and the ``sent`` per project (projects from
the application records, which every sent event's project has), the listing of the pending and
failed records for the rest. Only ``pending`` and ``failed`` records are ever listed, and they are
few; ``sent`` ones are only counted.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from notifier.domain.claims import STATUSES, RecordStatus
from notifier.domain.ports import NotificationQueries
from notifier.domain.records import Record

UNKNOWN_PROJECT = "(unknown)"


@dataclass(frozen=True)
class Status:
    """The report ``status`` prints."""

    totals: dict[str, int]  # status -> notifications
    by_project: dict[str, dict[str, int]]  # project -> status -> notifications
    rejected: int
    stuck: int  # pending ones a replay would pick up (see Record.stuck)
    oldest_pending: Record | None
    latest_failures: list[Record] = field(default_factory=list)


def status(
    store: NotificationQueries,
    *,
    now: datetime,
    older_than: timedelta,
    failures: int = 10,
    workers: int = 8,
) -> Status:
    """Counts by status and project, the stuck, the oldest pending and the latest failures."""
    totals = {s.value: store.count(s) for s in STATUSES}
    rejected = store.count_rejected()
    open_records = [
        r for s in (RecordStatus.PENDING, RecordStatus.FAILED) for r in store.listing(s)
    ]

    by_project: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys([s.value for s in STATUSES], 0)
    )
    for record in open_records:
        by_project[record.project or UNKNOWN_PROJECT][record.status] += 1
    projects = store.projects() | {r.project for r in open_records if r.project}

    def sent_in(project: str) -> int:
        return store.count(RecordStatus.SENT, project=project)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        sent = dict(zip(sorted(projects), pool.map(sent_in, sorted(projects)), strict=True))
    for project, count in sent.items():
        if count:
            by_project[project][RecordStatus.SENT.value] = count
    unaccounted = totals[RecordStatus.SENT.value] - sum(sent.values())
    if unaccounted > 0:  # a sent event whose applications/ record was deleted
        by_project[UNKNOWN_PROJECT][RecordStatus.SENT.value] += unaccounted

    pending = [r for r in open_records if r.status == RecordStatus.PENDING]
    failed = [r for r in open_records if r.status == RecordStatus.FAILED]
    oldest = min(pending, key=lambda r: (sortable(r.created_at), r.event_id), default=None)
    failed.sort(key=lambda r: (sortable(r.failed_at or r.updated_at), r.event_id), reverse=True)
    return Status(
        totals=totals,
        by_project=dict(sorted(by_project.items())),
        rejected=rejected,
        stuck=sum(1 for r in pending if r.stuck(now, older_than)),
        oldest_pending=oldest,
        latest_failures=failed[: max(0, failures)],
    )


def sortable(moment: datetime | None) -> float:
    """A time as a sort key; no time sorts first."""
    return moment.timestamp() if moment is not None else 0.0
