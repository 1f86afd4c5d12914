"""``heartbeat setup``: the heartbeat's Svix side made right, and the canary's signing secret.

Also what ``status`` opens with: the last heartbeat that reached the canary, judged healthy or
late (:func:`health`, :func:`health_line`, :func:`health_json`).
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

from notifier import bootstrap
from notifier.cli.command import Command, Context
from notifier.cli.output import plain
from notifier.cli.setups import add_setup_arguments, run_setup
from notifier.config import Settings
from notifier.domain import heartbeat, ports
from notifier.usecases.heartbeat_setup import SetupReport, setup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``setup --canary-url URL --secret-file PATH``."""
    what = "the Svix app, endpoint, secret"
    add_setup_arguments(parser, what, "--canary-url", "where Svix delivers heartbeats")


def run(args: argparse.Namespace, context: Context) -> int:
    """Makes the heartbeat app, event type and endpoint right; 0 done, 1 a Svix step failed."""

    def make(settings: Settings) -> SetupReport:
        client = bootstrap.build_svix_client(settings)
        try:
            return setup(
                bootstrap.heartbeat_admin(client),
                canary_url=args.canary_url,
                secret_file=args.secret_file,
                app_uid=settings.heartbeat_project,
            )
        finally:
            client.close()

    def document(report: SetupReport) -> dict[str, Any]:
        return {
            "application": report.application,
            "event_type": report.event_type,
            "endpoint": report.endpoint,
            "secret_file": report.secret_file,
            "app_uid": report.app_uid,
            "canary_url": report.canary_url,
            "secret_path": str(report.secret_path),
        }

    return run_setup(context, "heartbeat setup", make, document)


def health(
    heartbeats: ports.HeartbeatLog,
    now: datetime,
    *,
    every: timedelta,
    late_after: timedelta,
) -> heartbeat.Health:
    """The last heartbeat kept in ``heartbeats/``, judged at ``now`` against its schedule."""
    return heartbeat.judge(
        heartbeats.latest(),
        now,
        interval_seconds=every.total_seconds(),
        late_after_seconds=late_after.total_seconds(),
    )


def health_json(state: heartbeat.Health) -> dict[str, Any]:
    """The ``"heartbeat"`` object of ``status --json``."""
    last = state.last
    return {
        "state": state.label,
        "healthy": state.healthy,
        "last_event_id": last.event_id if last else None,
        "arrived_at": plain(last.arrived_at) if last else None,
        "published_at": plain(last.published_at) if last else None,
        "latency_ms": last.latency_ms if last else None,
        "age_seconds": state.age_seconds,
        "late_after_seconds": state.late_after_seconds,
        "summary": state.summary(),
    }


COMMAND = Command(
    name="heartbeat",
    help="heartbeat setup: the Svix app and canary endpoint, and its signing secret",
    add_arguments=add_arguments,
    run=run,
)
