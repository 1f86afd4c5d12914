"""``redrive``: bring messages back from the dead-letter subscription."""

from __future__ import annotations

import argparse
import functools
from collections import Counter

from notifier import bootstrap
from notifier.cli import reach
from notifier.cli.command import Command, Context, UsageError
from notifier.cli.output import plain, summary
from notifier.cli.parser import positive
from notifier.config import Settings
from notifier.handlers import pubsub
from notifier.usecases.redrive import DIRECT, TO_TOPIC, redrive

DEFAULT_TOPIC = "platform-events"
_COLUMNS = [
    *("message_id", "event_id", "project", "event_type", "attempts"),
    *("outcome", "acked", "detail"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--to-topic`` or ``--direct``, where from, how many, how."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--to-topic",
        dest="mode",
        action="store_const",
        const=TO_TOPIC,
        help="publish each one back to the topic (the function gets it as usual)",
    )
    mode.add_argument(
        "--direct",
        dest="mode",
        action="store_const",
        const=DIRECT,
        help="process each one here, through the function's own code (needs SVIX_API_KEY)",
    )
    parser.add_argument(
        "--topic", help=f"the events topic (default: $NOTIFIER_TOPIC, else {DEFAULT_TOPIC})"
    )
    parser.add_argument(
        "--subscription", help="the dead-letter subscription [TOPIC-dead-letter-sub]"
    )
    parser.add_argument("--limit", type=positive, help="at most N messages")
    parser.add_argument(
        "--dry-run", action="store_true", help="show them; acknowledge nothing, send nothing"
    )
    parser.add_argument(
        "--wait", type=float, default=5.0, metavar="SECONDS", help="empty-pull wait [5]"
    )
    parser.add_argument("--workers", type=positive, default=4, help="--direct in parallel [4]")
    parser.add_argument(
        "--progress-every", type=positive, default=100, metavar="N", help="progress line [100]"
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Exit 1 while anything is left in the dead letters (but after a dry run)."""
    if args.mode is None and not args.dry_run:
        raise UsageError("choose --to-topic or --direct (or --dry-run to look first)")
    mode = args.mode or TO_TOPIC
    direct = mode == DIRECT and not args.dry_run
    settings = Settings.from_env(context.env, svix=direct)
    topic = args.topic or context.env.get("NOTIFIER_TOPIC") or DEFAULT_TOPIC
    subscription = args.subscription or f"{topic.rsplit('/', 1)[-1]}-dead-letter-sub"
    topic_path = _resource_path(settings.gcp_project, "topics", topic)
    subscription_path = _resource_path(settings.gcp_project, "subscriptions", subscription)
    dead_letters = reach.dead_letters(subscription_path, context.env, args.timeout)
    republish = mode == TO_TOPIC and not args.dry_run
    republisher = reach.topic(topic_path, context.env, args.timeout) if republish else None
    store = reach.store(settings, context.env, args.timeout) if direct else None
    deps = bootstrap.build_operator(settings, store) if store is not None else None
    # A direct redrive runs the function's own entry, with these settings (flags included).
    process = functools.partial(pubsub.process, deps=deps) if deps is not None else None
    out = context.output
    try:
        with out.progress("redrive", None, args.progress_every) as on_progress:
            results = redrive(
                dead_letters=dead_letters,
                mode=mode,
                republisher=republisher,
                process=process,
                dry_run=args.dry_run,
                limit=args.limit,
                wait=args.wait,
                batch=2 * args.workers if direct else 100,  # pulled ones wait their turn leased
                workers=args.workers,
                max_bytes=settings.max_payload_bytes,
                on_progress=on_progress,
            )
    finally:
        dead_letters.close()
        if republisher is not None:
            republisher.close()
        if deps is not None:
            deps.sender.close()
    counts = dict(Counter(r.outcome for r in results))
    acked = sum(1 for r in results if r.acked)
    if out.as_json:
        out.json(
            {
                "subscription": subscription_path,
                "topic": topic_path,
                "mode": mode,
                "dry_run": args.dry_run,
                "summary": counts,
                "acked": acked,
                "left": len(results) - acked,
                "results": list(map(plain, results)),
            }
        )
    else:
        verb = "would redrive" if args.dry_run else f"redrove ({mode})"
        out.line(
            f"{verb} {len(results)} message(s) from {subscription_path}: {summary(counts)}; "
            f"acknowledged {acked}, left {len(results) - acked}"
        )
        if results:
            out.table(
                _COLUMNS,
                [
                    [
                        *(r.message_id, r.event_id, r.project, r.event_type, r.source_attempts),
                        *(r.outcome, "yes" if r.acked else "no", r.detail),
                    ]
                    for r in results
                ],
            )
    return 0 if args.dry_run or acked == len(results) else 1


def _resource_path(project: str, kind: str, name: str) -> str:
    """``name``: a short id, or already a full path such as ``projects/P/topics/T``."""
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


COMMAND = Command(
    name="redrive",
    help="bring messages back from the dead-letter subscription",
    add_arguments=add_arguments,
    run=run,
)
