"""``recover --project P [--endpoint E] [--since T] [--dry-run]``: Svix resends what a project's
failing, disabled or recovering endpoints missed, once the customer says "fixed it"."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from notifier import bootstrap
from notifier.cli import reach
from notifier.cli.command import Command, Context
from notifier.cli.commands.endpoints import health_json
from notifier.cli.output import plain
from notifier.cli.parser import moment
from notifier.config import Settings
from notifier.usecases.endpoint_health import Recovery, recover

EXIT = (
    "exit status: 0 when Svix started a recovery for every endpoint chosen (or, with --dry-run, "
    "would), 1 when one failed or none is failing or disabled, 2 a usage or configuration error"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--project``, ``--endpoint``, ``--since``, ``--dry-run``; the exit status in the epilog."""
    parser.epilog = EXIT
    parser.add_argument("--project", required=True, help="the project (its Svix app uid)")
    parser.add_argument(
        "--endpoint", metavar="ID", help="only this endpoint (its Svix id or uid) [all unhealthy]"
    )
    parser.add_argument(
        "--since",
        type=moment,
        metavar="TIME",
        help="resend what failed since TIME (ISO-8601, or a duration ago like 2d) "
        "[since its first failed attempt known; Svix goes back 14 days at most]",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be recovered; change nothing"
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Reads ``endpoint_health/``, then asks Svix (needs the token) unless --dry-run."""
    settings = Settings.from_env(context.env, svix=not args.dry_run)
    health = reach.endpoint_health(settings, context.env, args.timeout)
    client = bootstrap.build_svix_client(settings)
    now = datetime.now(UTC)
    try:
        done = recover(
            health,
            bootstrap.endpoint_admin(client),
            project=args.project,
            endpoint=args.endpoint,
            since=args.since,
            dry_run=args.dry_run,
            now=now,
        )
    finally:
        client.close()
    out = context.output
    if out.as_json:
        out.json(
            {
                "project": args.project,
                "dry_run": args.dry_run,
                "recoveries": [_json(r, now) for r in done],
            }
        )
    else:
        if not done:
            none = "no failing, disabled or recovering endpoint recorded"
            out.line(f"{none} for project {args.project}")
        for r in done:
            out.line(_line(r, args.dry_run))
    return 0 if done and all(r.error is None for r in done) else 1


def _line(r: Recovery, dry_run: bool) -> str:
    name = r.endpoint.endpoint_uid or r.endpoint.endpoint_id
    since = plain(r.since) + (" (Svix's 14-day limit)" if r.clamped else "")
    head = f"endpoint {name} ({r.endpoint.state.value}): "
    if r.error is not None:
        return head + f"failed: {r.error}"
    enable = "enable it, then " if r.enabled else ""
    if dry_run:
        return head + f"would {enable}recover what failed since {since}"
    assert r.task is not None
    enabled = "enabled; " if r.enabled else ""
    return head + f"{enabled}recovering what failed since {since}: task {r.task.id} {r.task.status}"


def _json(r: Recovery, now: datetime) -> dict[str, object]:
    return {
        "endpoint": health_json(r.endpoint, now),
        "since": plain(r.since),
        "clamped": r.clamped,
        "enabled": r.enabled,
        "task": plain(r.task),
        "recorded_state": None if r.recorded is None else r.recorded.state.value,
        "error": r.error,
    }


COMMAND = Command(
    name="recover",
    help="Svix resends what a project's failing or disabled endpoints missed",
    add_arguments=add_arguments,
    run=run,
)
