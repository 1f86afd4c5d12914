"""What the on-call person asks of the customers' endpoints: which are failing, disabled or
recovering and since when, which events Svix gave up on (:func:`report`), and Svix's recovery of
what an endpoint missed once the customer fixed it (:func:`recover`), recorded on the endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.domain.endpoint_health import (
    EndpointHealth,
    Exhausted,
    RecoveryStarted,
    RecoveryTask,
    State,
    settled,
)
from notifier.domain.errors import SetupError, StoreUnavailable
from notifier.domain.ports import EndpointHealthLog, EndpointRecovery

# Svix recovers at most 14 days back (svix-server endpoint/recovery.rs; +5 min for clocks).
RECOVER_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class EndpointReport:
    """The unhealthy endpoints, the longest unhealthy first, and the events Svix gave up on
    (the latest first) among them."""

    endpoints: list[EndpointHealth]
    exhausted: list[tuple[EndpointHealth, Exhausted]]

    @property
    def recovering(self) -> list[EndpointHealth]:
        """The endpoints ``recover`` started a recovery for, with no failure webhook since."""
        return [e for e in self.endpoints if e.state == State.RECOVERING]

    @property
    def disabled(self) -> list[EndpointHealth]:
        """The endpoints Svix no longer delivers to."""
        return [e for e in self.endpoints if e.state == State.DISABLED]


def report(log: EndpointHealthLog, *, now: datetime, exhausted: int = 20) -> EndpointReport:
    """The failing, disabled and recovering endpoints as of ``now`` (a recovery Svix's retry
    schedule passed quietly is healthy), and the latest ``exhausted`` events given up on."""
    endpoints = unhealthy(log, now)
    given_up = [(e, x) for e in endpoints for x in e.exhausted]
    given_up.sort(key=lambda pair: pair[1].at, reverse=True)
    return EndpointReport(endpoints=endpoints, exhausted=given_up[: max(0, exhausted)])


@dataclass(frozen=True)
class Recovery:
    """What ``recover`` did (or, dry, would do) for one endpoint."""

    endpoint: EndpointHealth
    since: datetime
    clamped: bool  # the recorded start was older than Svix recovers: since is 14 days back
    enabled: bool = False  # it was disabled and was enabled first
    task: RecoveryTask | None = None
    error: str | None = None
    recorded: EndpointHealth | None = None  # the endpoint's record after the recovery started


def unhealthy(log: EndpointHealthLog, now: datetime) -> list[EndpointHealth]:
    """The endpoints not healthy as of ``now``, the longest unhealthy first."""
    endpoints = [settled(h, now) for h in log.unhealthy()]
    return [h for h in endpoints if h.state != State.HEALTHY]


def recover(
    log: EndpointHealthLog,
    svix: EndpointRecovery,
    *,
    project: str,
    now: datetime,
    endpoint: str | None = None,
    since: datetime | None = None,
    dry_run: bool = False,
) -> list[Recovery]:
    """Asks Svix to resend what each of ``project``'s failing, disabled or recovering
    endpoints (or only ``endpoint``, by id or uid) missed since ``since`` (default: since its
    first failure we know of, which is before Svix's ``failSince``).

    A disabled endpoint is enabled first: Svix delivers nothing to a disabled one, recovered
    messages included. Svix resends only messages none of whose attempts succeeded, so nothing
    that arrived is sent twice. Each recovery started is recorded on the endpoint (recovering
    since ``now``, its task, its ``since``); a dry run records nothing. One endpoint's failure
    does not stop the others.
    """
    chosen = [
        e
        for e in unhealthy(log, now)
        if e.project == project
        and (endpoint is None or endpoint in (e.endpoint_id, e.endpoint_uid))
    ]
    done: list[Recovery] = []
    for health in chosen:
        start = since or health.failures_began
        clamped = start < now - RECOVER_WINDOW
        start = max(start, now - RECOVER_WINDOW)
        disabled = health.state == State.DISABLED
        if dry_run:
            done.append(Recovery(health, start, clamped, enabled=disabled))
            continue
        try:
            if disabled:
                svix.enable(project, health.endpoint_id)
            task = svix.recover(project, health.endpoint_id, start)
        except SetupError as exc:
            done.append(Recovery(health, start, clamped, error=str(exc)))
            continue
        started = RecoveryStarted(at=now, task_id=task.id, since=start)
        try:
            recorded = log.started(health.app_id, health.endpoint_id, started)
        except StoreUnavailable as exc:
            error = f"recovery started, not recorded ({exc}): status shows it as before"
            done.append(Recovery(health, start, clamped, disabled, task, error=error))
            continue
        done.append(Recovery(health, start, clamped, disabled, task, recorded=recorded))
    return done
