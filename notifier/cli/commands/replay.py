"""``replay``: send failed and stuck pending notifications again, exactly once."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from notifier import bootstrap, logs
from notifier.cli import reach
from notifier.cli.command import Command, Context, UsageError
from notifier.cli.output import plain, summary
from notifier.cli.parser import DEFAULT_OLDER_THAN, duration, moment, positive
from notifier.config import Settings
from notifier.domain.claims import REPLAYABLE
from notifier.domain.events import NO_PUBSUB_DELIVERY, Event
from notifier.domain.outcomes import Outcome
from notifier.domain.records import Record
from notifier.handlers import outcome_log
from notifier.usecases.replay import Criteria, Passed, choose, replay

log = logs.get("replay")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """What to take (status, project, type, time range, age, limit), and how."""
    parser.add_argument(
        "--status",
        dest="statuses",
        action="append",
        choices=[s.value for s in REPLAYABLE],
        help="failed and/or pending (repeatable) [both]",
    )
    parser.add_argument("--project", help="only this platform project (the event's project)")
    parser.add_argument("--event-type", help="only this event type, e.g. user.created")
    parser.add_argument("--since", type=moment, help="created at or after (ISO-8601, or e.g. 2h)")
    parser.add_argument("--until", type=moment, help="created before (ISO-8601, or e.g. 30m)")
    parser.add_argument(
        "--older-than",
        type=duration,
        default=DEFAULT_OLDER_THAN,
        metavar="DURATION",
        help=f"take a pending one once untouched this long, lease expired [{DEFAULT_OLDER_THAN}]",
    )
    parser.add_argument("--limit", type=positive, help="at most N notifications, oldest first")
    parser.add_argument("--dry-run", action="store_true", help="list them; change nothing")
    parser.add_argument("--workers", type=positive, default=4, help="sent in parallel [4]")
    parser.add_argument(
        "--progress-every", type=positive, default=100, metavar="N", help="progress line [100]"
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Selects, then (unless a dry run) replays; exit 1 if any is still not sent, or if pending
    ones in range were left alone (a live claim, or Pub/Sub still retrying them)."""
    if args.since and args.until and args.since >= args.until:
        raise UsageError("--since must be before --until")
    settings = Settings.from_env(context.env, svix=not args.dry_run)  # a dry run needs no token
    criteria = Criteria(
        statuses=tuple(args.statuses or [s.value for s in REPLAYABLE]),
        project=args.project,
        event_type=args.event_type,
        since=args.since,
        until=args.until,
        older_than=args.older_than,
        limit=args.limit,
    )
    store = reach.store(settings, context.env, args.timeout)
    selection = choose(store, criteria, now=datetime.now(UTC))
    selected, passed = selection.records, selection.passed_over
    out = context.output
    if args.dry_run:
        if out.as_json:
            out.json(
                {
                    "dry_run": True,
                    "selected": len(selected),
                    "records": list(map(plain, selected)),
                    "skipped": list(map(_passed_json, passed)),
                }
            )
        else:
            out.line(f"would replay {len(selected)} notification(s):")
            if selected:
                _records_table(context, selected)
            _passed_table(context, passed)
        return 0
    deps = bootstrap.build_operator(settings, store)
    try:
        with out.progress("replay", len(selected), args.progress_every) as on_progress:
            results = replay(
                selected,
                store=store,
                notifier=deps.notifier,
                max_bytes=settings.max_payload_bytes,
                workers=args.workers,
                on_progress=on_progress,
                on_outcome=_log_outcome,
            )
    finally:
        deps.sender.close()
    counts = dict(Counter(r.outcome for r in results))
    if out.as_json:
        out.json(
            {
                "dry_run": False,
                "selected": len(selected),
                "summary": counts,
                "results": list(map(plain, results)),
                "skipped": list(map(_passed_json, passed)),
            }
        )
    else:
        out.line(f"replayed {len(results)} notification(s): {summary(counts)}")
        if results:
            out.table(
                ["event_id", "project", "event_type", "was", "outcome", "replay", "svix", "error"],
                [
                    [
                        *(r.event_id, r.project, r.event_type, r.was, r.outcome),
                        *(r.replays, r.svix_status, r.error),
                    ]
                    for r in results
                ],
            )
        _passed_table(context, passed)
    return 0 if all(r.done for r in results) and not passed else 1


def _log_outcome(event: Event, outcome: Outcome, started: float) -> None:
    """Each delivery's outcome line, as the function's entries write it (ERRORs on stderr)."""
    outcome_log.log_outcome(event, NO_PUBSUB_DELIVERY, outcome, started, logger=log)


def _passed_json(passed: Passed) -> dict[str, Any]:
    record = passed.record
    return {
        "event_id": record.event_id,
        "project": record.project,
        "event_type": record.event_type,
        "reason": passed.reason,
        "held_until": plain(passed.held_until),
    }


def _passed_table(context: Context, passed: list[Passed]) -> None:
    """The pending ones left alone, and why: a replay that takes nothing says so."""
    if not passed:
        return
    context.output.line(f"\nleft {len(passed)} pending notification(s) alone:")
    context.output.table(
        ["event_id", "project", "event_type", "why"],
        [[p.record.event_id, p.record.project, p.record.event_type, p.reason] for p in passed],
    )


def _records_table(context: Context, records: list[Record]) -> None:
    context.output.table(
        [
            *("event_id", "project", "event_type", "status"),
            *("attempts", "replays", "created_at", "error"),
        ],
        [
            [
                *(r.event_id, r.project, r.event_type, r.status),
                *(r.attempts, r.replays, r.created_at, r.last_error),
            ]
            for r in records
        ],
    )


COMMAND = Command(
    name="replay",
    help="send failed and stuck pending notifications again, exactly once",
    add_arguments=add_arguments,
    run=run,
)
