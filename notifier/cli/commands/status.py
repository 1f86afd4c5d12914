"""``status``: counts by status and project, the stuck, the oldest pending, the latest failures."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.cli import reach
from notifier.cli.command import Command, Context, UsageError
from notifier.cli.commands.endpoints import endpoints_json, show_endpoints
from notifier.cli.commands.heartbeat import health, health_json
from notifier.cli.output import age, cell, plain
from notifier.cli.parser import DEFAULT_OLDER_THAN, duration
from notifier.config import Settings
from notifier.domain import heartbeat
from notifier.domain.claims import STATUSES, RecordStatus
from notifier.domain.records import Record
from notifier.usecases.endpoint_health import EndpointReport
from notifier.usecases.endpoint_health import report as endpoint_report
from notifier.usecases.status import Status, status

# deploy.sh's --heartbeat-minutes=5 and --heartbeat-absent-minutes=15 (its alert's threshold).
HEARTBEAT_EVERY = timedelta(seconds=heartbeat.DEFAULT_INTERVAL_SECONDS)
HEARTBEAT_LATE_AFTER = timedelta(seconds=heartbeat.DEFAULT_LATE_AFTER_SECONDS)

EXIT = (
    "exit status: 0 when no notification is failed or stuck pending and no customer endpoint is "
    "disabled, 1 when some are (or a cloud call failed), 2 a usage or configuration error; the "
    "same with --json"
)


def verdict(report: Status, endpoints: EndpointReport) -> int:
    """0 when nothing waits for an operator (no failed, no stuck pending, no disabled endpoint:
    Svix delivers nothing to it until someone acts), else 1: for scripts. A failing or
    recovering endpoint alone is 0: Svix is still retrying or resending, nothing is lost yet."""
    clear = report.totals[RecordStatus.FAILED.value] == 0 and report.stuck == 0
    return 0 if clear and not endpoints.disabled else 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--failures N``, ``--older-than DURATION``, the heartbeat's schedule; the exit status in
    the epilog."""
    parser.epilog = EXIT
    parser.add_argument(
        "--failures", type=int, default=10, metavar="N", help="latest failures to show [10]"
    )
    parser.add_argument(
        "--older-than",
        type=duration,
        default=DEFAULT_OLDER_THAN,
        metavar="DURATION",
        help=f"pending this long without a lease counts as stuck [{DEFAULT_OLDER_THAN}]",
    )
    parser.add_argument(
        "--heartbeat-every",
        type=duration,
        default=HEARTBEAT_EVERY,
        metavar="DURATION",
        help="how often the heartbeat is scheduled, as deployed with deploy.sh "
        "--heartbeat-minutes [5m]",
    )
    parser.add_argument(
        "--heartbeat-late-after",
        type=duration,
        default=HEARTBEAT_LATE_AFTER,
        metavar="DURATION",
        help="the heartbeat is late when none arrived for this long, as deployed with deploy.sh "
        "--heartbeat-absent-minutes (at least --heartbeat-every) [15m]",
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Reads only Firestore: needs no Svix token. Exit 0 only when all is well (see EXIT)."""
    every, late_after = args.heartbeat_every, args.heartbeat_late_after
    if every <= timedelta(0) or late_after < every:
        raise UsageError("--heartbeat-late-after must be at least --heartbeat-every, both above 0")
    settings = Settings.from_env(context.env, svix=False)
    now = datetime.now(UTC)
    report = status(
        reach.store(settings, context.env, args.timeout),
        now=now,
        older_than=args.older_than,
        failures=args.failures,
    )
    beat = health(
        reach.heartbeats(settings, context.env, args.timeout),
        now,
        every=every,
        late_after=late_after,
    )
    endpoints = endpoint_report(reach.endpoint_health(settings, context.env, args.timeout), now=now)
    out = context.output
    if out.as_json:
        out.json(
            {
                "heartbeat": health_json(beat),
                "gcp_project": settings.gcp_project,
                "database": settings.firestore_database,
                "totals": {**report.totals, "total": sum(report.totals.values())},
                "by_project": {
                    project: {**counts, "total": sum(counts.values())}
                    for project, counts in report.by_project.items()
                },
                "rejected": report.rejected,
                "stuck_pending": report.stuck,
                "stuck_after_seconds": args.older_than.total_seconds(),
                "oldest_pending": _with_age(report.oldest_pending, now),
                "latest_failures": [plain(r) for r in report.latest_failures],
                **endpoints_json(endpoints, now),
            }
        )
        return verdict(report, endpoints)
    out.line(beat.summary())
    out.line(f"notifications in {settings.gcp_project}/{settings.firestore_database}")
    statuses = [s.value for s in STATUSES]
    rows: list[list[Any]] = [
        [project, *(counts[s] for s in statuses), sum(counts.values())]
        for project, counts in report.by_project.items()
    ]
    rows.append(["all", *(report.totals[s] for s in statuses), sum(report.totals.values())])
    out.table(["project", *statuses, "total"], rows)
    out.line(f"\nstuck pending (no lease, untouched for {age(args.older_than)}): {report.stuck}")
    out.line(f"rejected messages: {report.rejected}")
    oldest = report.oldest_pending
    if oldest is None:
        out.line("oldest pending: none")
    else:
        oldest_age = age(now - oldest.created_at) if oldest.created_at else "?"
        out.line(
            f"oldest pending: {oldest.event_id}  project {oldest.project}  "
            f"type {oldest.event_type}  age {oldest_age}  attempts {oldest.attempts}  "
            f"last error: {cell(oldest.last_error)}"
        )
    failures = report.latest_failures
    out.line(f"\nlatest failures ({len(failures)} of {report.totals['failed']}):")
    if failures:
        out.table(
            ["event_id", "project", "event_type", "failed_at", "attempts", "last_error"],
            [
                [r.event_id, r.project, r.event_type, r.failed_at, r.attempts, r.last_error]
                for r in failures
            ],
        )
    show_endpoints(out, endpoints, now)
    return verdict(report, endpoints)


def _with_age(record: Record | None, now: datetime) -> dict[str, Any] | None:
    if record is None:
        return None
    seconds = (now - record.created_at).total_seconds() if record.created_at else None
    return {**plain(record), "age_seconds": seconds}


COMMAND = Command(
    name="status",
    help="counts by status and project, the oldest pending, the latest failures, the customer "
    "endpoints failing, disabled or recovering",
    add_arguments=add_arguments,
    run=run,
)
