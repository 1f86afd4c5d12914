"""What ``status`` shows of the customers' endpoints: the failing, disabled and recovering ones
(since when; a recovery's task) and the events Svix gave up on (:func:`endpoints_json`,
:func:`show_endpoints`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notifier.cli.output import Output, age, plain
from notifier.domain.endpoint_health import EndpointHealth
from notifier.usecases.endpoint_health import EndpointReport


def health_json(health: EndpointHealth, now: datetime) -> dict[str, Any]:
    """One endpoint, as ``status --json`` and ``recover --json`` show it."""
    return {
        "project": health.project,
        "endpoint_id": health.endpoint_id,
        "endpoint_uid": health.endpoint_uid,
        "state": health.state.value,
        "since": plain(health.since),
        "for_seconds": (now - health.since).total_seconds(),
        "last_status_code": health.last_status_code,
        "changed_by": health.changed_by,
        "changed_at": plain(health.changed_at),
        "trigger": health.trigger,
        "recovery": None
        if health.recovery is None
        else {
            "started_at": plain(health.recovery.at),
            "task_id": health.recovery.task_id,
            "since": plain(health.recovery.since),
            "settles_at": plain(health.recovery.settles_at),
        },
    }


def _recovery(health: EndpointHealth) -> str:
    if health.recovery is None:
        return ""
    return f"task {health.recovery.task_id}, since {plain(health.recovery.since)}"


def endpoints_json(report: EndpointReport, now: datetime) -> dict[str, Any]:
    """The ``endpoints`` and ``exhausted_events`` of ``status --json``."""
    return {
        "endpoints": [health_json(h, now) for h in report.endpoints],
        "exhausted_events": [
            {
                "event_id": x.event_id,
                "project": h.project,
                "endpoint_id": h.endpoint_id,
                "svix_message_id": x.message_id,
                "status_code": x.status_code,
                "at": plain(x.at),
            }
            for h, x in report.exhausted
        ],
    }


def show_endpoints(out: Output, report: EndpointReport, now: datetime) -> None:
    """The plain report's section on endpoints."""
    out.line(f"\ncustomer endpoints failing, disabled or recovering: {len(report.endpoints)}")
    if report.endpoints:
        out.table(
            [
                "project",
                "endpoint",
                "state",
                "since",
                "for",
                "last_status",
                "changed_by",
                "recovery",
            ],
            [
                [
                    h.project,
                    h.endpoint_uid or h.endpoint_id,
                    h.state.value,
                    h.since,
                    age(now - h.since),
                    h.last_status_code,
                    h.changed_by,
                    _recovery(h),
                ]
                for h in report.endpoints
            ],
        )
    if report.disabled:
        out.line("a disabled endpoint gets nothing: `notifier recover --project P` once fixed")
    if report.recovering:
        out.line(
            "recovering: healthy at a recovered webhook, or with no failure webhook through "
            "Svix's retry schedule (27 h 35 min) after the recovery started"
        )
    out.line(f"\nevents Svix gave up on ({len(report.exhausted)} latest):")
    if report.exhausted:
        out.table(
            ["event_id", "project", "endpoint", "status", "at"],
            [
                [x.event_id, h.project, h.endpoint_uid or h.endpoint_id, x.status_code, x.at]
                for h, x in report.exhausted
            ],
        )
