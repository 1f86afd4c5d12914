"""``python -m notifier``: the operator's commands, run from a checkout against a deployment.

``status`` shows where the records stand, ``replay`` sends failed and stuck notifications again,
``redrive`` brings dead letters back. The configuration is the function's own environment
(``GOOGLE_CLOUD_PROJECT``, ``FIRESTORE_DATABASE``, ``SVIX_API_KEY``...; ``FIRESTORE_EMULATOR_HOST``
and ``PUBSUB_EMULATOR_HOST`` for the emulators), and each command builds only what it needs: only
``replay`` and ``redrive --direct`` send, so only they need the Svix token.

Results go to stdout, as a table or, with ``--json``, as one JSON object; progress and the
function's own log lines (warnings and errors, everything with ``--verbose``) go to stderr.
Exit status: 0 done, 1 something is left to do (still failed, left pending, left in the dead
letters) or a cloud call failed, 2 a usage or configuration error.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from google.api_core import exceptions as gexc

from notifier import logs, operations, pubsub, wiring
from notifier.config import ConfigError, Settings

DEFAULT_TOPIC = "platform-events"
DEFAULT_OLDER_THAN = "10m"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_CELL_WIDTH = 60
_REDRIVE_COLUMNS = [
    *("message_id", "event_id", "project", "event_type", "attempts"),
    *("outcome", "acked", "detail"),
]


# -- arguments ------------------------------------------------------------------------------------


def duration(text: str) -> timedelta:
    """``90``, ``90s``, ``10m``, ``2h``, ``7d``."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 10m, 2h, 7d)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def moment(text: str) -> datetime:
    """ISO-8601 (a date, or a time; UTC unless it says otherwise), or a duration meaning "ago"."""
    if text.strip()[-1:] in _UNITS:
        with contextlib.suppress(argparse.ArgumentTypeError):
            return datetime.now(UTC) - duration(text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO-8601 like 2026-11-28T10:00:00Z, or a duration like 2h)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--gcp-project", help="Google Cloud project (default: $GOOGLE_CLOUD_PROJECT)"
    )
    common.add_argument("--database", help="Firestore database (default: $FIRESTORE_DATABASE)")
    common.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_argument(
        "-v", "--verbose", action="store_true", help="the function's INFO log lines on stderr"
    )

    top = argparse.ArgumentParser(
        prog="python -m notifier",
        description="Operator tools for the notifier: status, replay, redrive.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = commands.add_parser(
        "status",
        parents=[common],
        help="counts by status and project, the oldest pending, the latest failures",
    )
    status.add_argument(
        "--failures", type=int, default=10, metavar="N", help="latest failures to show [10]"
    )
    status.add_argument(
        "--older-than",
        type=duration,
        default=DEFAULT_OLDER_THAN,
        metavar="DURATION",
        help=f"pending this long without a lease counts as stuck [{DEFAULT_OLDER_THAN}]",
    )

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="send failed and stuck pending notifications again, exactly once",
    )
    replay.add_argument(
        "--status",
        dest="statuses",
        action="append",
        choices=operations.REPLAYABLE,
        help="failed and/or pending (repeatable) [both]",
    )
    replay.add_argument("--project", help="only this platform project (the event's project)")
    replay.add_argument("--event-type", help="only this event type, e.g. user.created")
    replay.add_argument("--since", type=moment, help="created at or after (ISO-8601, or e.g. 2h)")
    replay.add_argument("--until", type=moment, help="created before (ISO-8601, or e.g. 30m)")
    replay.add_argument(
        "--older-than",
        type=duration,
        default=DEFAULT_OLDER_THAN,
        metavar="DURATION",
        help=f"take a pending one once untouched this long, lease expired [{DEFAULT_OLDER_THAN}]",
    )
    replay.add_argument("--limit", type=positive, help="at most N notifications, oldest first")
    replay.add_argument("--dry-run", action="store_true", help="list them; change nothing")
    replay.add_argument("--workers", type=positive, default=4, help="sent in parallel [4]")
    replay.add_argument(
        "--progress-every", type=positive, default=100, metavar="N", help="progress line [100]"
    )

    redrive = commands.add_parser(
        "redrive",
        parents=[common],
        help="bring messages back from the dead-letter subscription",
    )
    mode = redrive.add_mutually_exclusive_group()
    mode.add_argument(
        "--to-topic",
        dest="mode",
        action="store_const",
        const=operations.TO_TOPIC,
        help="publish each one back to the topic (the function gets it as usual)",
    )
    mode.add_argument(
        "--direct",
        dest="mode",
        action="store_const",
        const=operations.DIRECT,
        help="process each one here, through the function's own code (needs SVIX_API_KEY)",
    )
    redrive.add_argument(
        "--topic",
        help=f"the events topic (default: $NOTIFIER_TOPIC, else {DEFAULT_TOPIC})",
    )
    redrive.add_argument(
        "--subscription", help="the dead-letter subscription [TOPIC-dead-letter-sub]"
    )
    redrive.add_argument("--limit", type=positive, help="at most N messages")
    redrive.add_argument(
        "--dry-run", action="store_true", help="show them; acknowledge nothing, send nothing"
    )
    redrive.add_argument(
        "--wait", type=float, default=5.0, metavar="SECONDS", help="empty-pull wait [5]"
    )
    redrive.add_argument("--workers", type=positive, default=4, help="--direct in parallel [4]")
    redrive.add_argument(
        "--progress-every", type=positive, default=100, metavar="N", help="progress line [100]"
    )
    return top


# -- entry ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    env = dict(os.environ)
    if args.gcp_project:
        env["GOOGLE_CLOUD_PROJECT"] = args.gcp_project
    if args.database:
        env["FIRESTORE_DATABASE"] = args.database
    command = {"status": _status, "replay": _replay, "redrive": _redrive}[args.command]
    try:
        with _logs_to_stderr(args.verbose):
            return command(args, env)
    except ConfigError as exc:
        print(f"notifier: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"python -m notifier {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except gexc.GoogleAPIError as exc:
        print(f"notifier: {type(exc).__name__}: {str(exc)[:300]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("notifier: interrupted", file=sys.stderr)
        return 130


class UsageError(Exception):
    pass


@contextlib.contextmanager
def _logs_to_stderr(verbose: bool) -> Iterator[None]:
    """The function's JSON lines go to stderr here: stdout carries the command's output.

    ``logs.setup`` keeps an existing JSON handler, so it adds no stdout one while this is in place.
    """
    root = logging.getLogger("notifier")
    saved = (root.handlers[:], root.propagate, root.level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.JsonFormatter())
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    root.handlers, root.propagate = [handler], False
    try:
        yield
    finally:
        root.handlers, root.propagate = saved[0], saved[1]
        root.setLevel(saved[2])


# -- status ---------------------------------------------------------------------------------------


def _status(args: argparse.Namespace, env: dict[str, str]) -> int:
    settings = Settings.from_env(env, svix=False)
    now = datetime.now(UTC)
    report = operations.status(
        wiring.firestore_client(settings),
        now=now,
        older_than=args.older_than,
        failures=args.failures,
    )
    if args.json:
        _print_json(
            {
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
                "latest_failures": [_plain(r) for r in report.latest_failures],
            }
        )
        return 0
    out = sys.stdout
    print(f"notifications in {settings.gcp_project}/{settings.firestore_database}", file=out)
    statuses = operations.STATUSES
    rows = [
        [project, *(counts[s] for s in statuses), sum(counts.values())]
        for project, counts in report.by_project.items()
    ]
    rows.append(["all", *(report.totals[s] for s in statuses), sum(report.totals.values())])
    print(table(["project", *statuses, "total"], rows), file=out)
    print(
        f"\nstuck pending (no lease, untouched for {_age(args.older_than)}): {report.stuck}"
        f"\nrejected messages: {report.rejected}",
        file=out,
    )
    oldest = report.oldest_pending
    if oldest is None:
        print("oldest pending: none", file=out)
    else:
        age = _age(now - oldest.created_at) if oldest.created_at else "?"
        print(
            f"oldest pending: {oldest.event_id}  project {oldest.project}  "
            f"type {oldest.event_type}  age {age}  attempts {oldest.attempts}  "
            f"last error: {_cell(oldest.last_error)}",
            file=out,
        )
    failures = report.latest_failures
    print(f"\nlatest failures ({len(failures)} of {report.totals['failed']}):", file=out)
    if failures:
        print(
            table(
                ["event_id", "project", "event_type", "failed_at", "attempts", "last_error"],
                [
                    [r.event_id, r.project, r.event_type, r.failed_at, r.attempts, r.last_error]
                    for r in failures
                ],
            ),
            file=out,
        )
    return 0


# -- replay ---------------------------------------------------------------------------------------


def _replay(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.since and args.until and args.since >= args.until:
        raise UsageError("--since must be before --until")
    settings = Settings.from_env(env, svix=not args.dry_run)  # a dry run needs no Svix token
    criteria = operations.Criteria(
        statuses=tuple(args.statuses or operations.REPLAYABLE),
        project=args.project,
        event_type=args.event_type,
        since=args.since,
        until=args.until,
        older_than=args.older_than,
        limit=args.limit,
    )
    client = wiring.firestore_client(settings)
    selected = operations.select(client, criteria, now=datetime.now(UTC))
    if args.dry_run:
        if args.json:
            _print_json(
                {"dry_run": True, "selected": len(selected), "records": list(map(_plain, selected))}
            )
        else:
            print(f"would replay {len(selected)} notification(s):")
            if selected:
                print(_records_table(selected))
        return 0
    deps = wiring.build(settings, client)
    try:
        results = operations.replay(
            selected,
            db=client,
            store=deps.store,
            notifier=deps.notifier,
            max_bytes=settings.max_payload_bytes,
            workers=args.workers,
            on_progress=ProgressLine("replay", len(selected), args.progress_every),
        )
    finally:
        deps.sender.close()
    summary = dict(Counter(r.outcome for r in results))
    if args.json:
        _print_json(
            {
                "dry_run": False,
                "selected": len(selected),
                "summary": summary,
                "results": list(map(_plain, results)),
            }
        )
    else:
        print(f"replayed {len(results)} notification(s): {_summary(summary)}")
        if results:
            print(
                table(
                    [
                        "event_id",
                        "project",
                        "event_type",
                        "was",
                        "outcome",
                        "replay",
                        "svix",
                        "error",
                    ],
                    [
                        [
                            r.event_id,
                            r.project,
                            r.event_type,
                            r.was,
                            r.outcome,
                            r.replays,
                            r.svix_status,
                            r.error,
                        ]
                        for r in results
                    ],
                )
            )
    return 0 if all(r.done for r in results) else 1


def _records_table(records: list[operations.Record]) -> str:
    return table(
        [
            "event_id",
            "project",
            "event_type",
            "status",
            "attempts",
            "replays",
            "created_at",
            "error",
        ],
        [
            [
                r.event_id,
                r.project,
                r.event_type,
                r.status,
                r.attempts,
                r.replays,
                r.created_at,
                r.last_error,
            ]
            for r in records
        ],
    )


# -- redrive --------------------------------------------------------------------------------------


def _redrive(args: argparse.Namespace, env: dict[str, str]) -> int:
    if args.mode is None and not args.dry_run:
        raise UsageError("choose --to-topic or --direct (or --dry-run to look first)")
    mode = args.mode or operations.TO_TOPIC
    direct = mode == operations.DIRECT and not args.dry_run
    settings = Settings.from_env(env, svix=direct)
    topic = args.topic or env.get("NOTIFIER_TOPIC") or DEFAULT_TOPIC
    subscription = args.subscription or f"{topic.rsplit('/', 1)[-1]}-dead-letter-sub"
    topic_path = operations.resource_path(settings.gcp_project, "topics", topic)
    subscription_path = operations.resource_path(
        settings.gcp_project, "subscriptions", subscription
    )
    pubsub_v1 = operations.pubsub_module()
    subscriber = pubsub_v1.SubscriberClient()
    republish = mode == operations.TO_TOPIC and not args.dry_run
    publisher = pubsub_v1.PublisherClient() if republish else None
    deps = wiring.build(settings) if direct else None
    # A direct redrive runs the function's own entry, with these settings (flags included).
    process = functools.partial(pubsub.process, deps=deps) if deps is not None else None
    try:
        results = operations.redrive(
            subscriber=subscriber,
            subscription=subscription_path,
            mode=mode,
            publisher=publisher,
            topic=topic_path,
            process=process,
            dry_run=args.dry_run,
            limit=args.limit,
            wait=args.wait,
            batch=2 * args.workers if direct else 100,  # pulled ones wait their turn leased
            workers=args.workers,
            max_bytes=settings.max_payload_bytes,
            on_progress=ProgressLine("redrive", None, args.progress_every),
        )
    finally:
        subscriber.close()
        if publisher is not None:
            publisher.stop()
        if deps is not None:
            deps.sender.close()
    summary = dict(Counter(r.outcome for r in results))
    acked = sum(1 for r in results if r.acked)
    if args.json:
        _print_json(
            {
                "subscription": subscription_path,
                "topic": topic_path,
                "mode": mode,
                "dry_run": args.dry_run,
                "summary": summary,
                "acked": acked,
                "left": len(results) - acked,
                "results": list(map(_plain, results)),
            }
        )
    else:
        verb = "would redrive" if args.dry_run else f"redrove ({mode})"
        print(
            f"{verb} {len(results)} message(s) from {subscription_path}: {_summary(summary)}; "
            f"acknowledged {acked}, left {len(results) - acked}"
        )
        if results:
            print(
                table(
                    _REDRIVE_COLUMNS,
                    [
                        [
                            r.message_id,
                            r.event_id,
                            r.project,
                            r.event_type,
                            r.source_attempts,
                            r.outcome,
                            "yes" if r.acked else "no",
                            r.detail,
                        ]
                        for r in results
                    ],
                )
            )
    return 0 if args.dry_run or acked == len(results) else 1


# -- output ---------------------------------------------------------------------------------------


class ProgressLine:
    """``replay: 200/1000 (sent 198, failed 2)`` on stderr every ``every`` items or 10 s."""

    def __init__(
        self, label: str, total: int | None, every: int, stream: TextIO | None = None
    ) -> None:
        self.label, self.total, self.every = label, total, every
        self.stream = stream
        self.last = time.monotonic()

    def __call__(self, done: int, counts: dict[str, int]) -> None:
        now = time.monotonic()
        if done % self.every and now - self.last < 10 and done != self.total:
            return
        if done == self.total and done < self.every:
            return  # a short run: the result says it all
        self.last = now
        of = f"/{self.total}" if self.total is not None else ""
        print(f"{self.label}: {done}{of} ({_summary(counts)})", file=self.stream or sys.stderr)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int) for row in rows) and rows for i in range(len(headers))]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if numeric[i] else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = " ".join(str(value).split())
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    return f"{seconds}s"


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "nothing"


def _plain(value: Any) -> Any:
    """Dataclasses and datetimes as JSON can carry them (times in ISO-8601, UTC)."""
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _with_age(record: operations.Record | None, now: datetime) -> dict[str, Any] | None:
    if record is None:
        return None
    age = (now - record.created_at).total_seconds() if record.created_at else None
    return {**_plain(record), "age_seconds": age}


def _print_json(document: dict[str, Any]) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
