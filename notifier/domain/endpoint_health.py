"""A customer endpoint's health, as Svix's operational webhooks tell it: what one webhook says
(:func:`read`) and how it changes the endpoint's recorded state (:func:`apply`).

Svix sends them to our operational-webhook endpoint (OpenAPI ``webhooks``, svix-server
``core/operational_webhooks.rs``): ``{"type": ..., "data": {...}}``, ``data`` holding the ids
(``appId``, ``appUid`` = our project, ``endpointId``, ``endpointUid``), for the message events the
message's ``msgEventId`` (our event id) and ``lastAttempt`` (its status code and time), for
``endpoint.disabled`` its ``failSince``. Only ids, times and status codes are read: a webhook names
no URL and no payload, and nothing else of it is kept.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from notifier.domain.events import SAFE_ID, safe_id
from notifier.domain.heartbeat import parse_time

DISABLED = "endpoint.disabled"
ENABLED = "endpoint.enabled"
CREATED = "endpoint.created"
UPDATED = "endpoint.updated"
DELETED = "endpoint.deleted"
FAILING = "message.attempt.failing"
EXHAUSTED = "message.attempt.exhausted"
RECOVERED = "message.attempt.recovered"
# What ``operational setup`` subscribes the operational endpoint to (OpenAPI ``webhooks``).
EVENT_TYPES = (DISABLED, ENABLED, CREATED, UPDATED, DELETED, FAILING, EXHAUSTED, RECOVERED)
MESSAGE_TYPES = frozenset({FAILING, EXHAUSTED, RECOVERED})
# How many of the events Svix gave up on an endpoint's record keeps (the latest).
EXHAUSTED_KEPT = 20
# Svix's whole retry schedule after the first attempt: svix-server config.default.toml
# ``retry_schedule = [5,300,1800,7200,18000,36000,36000]`` (seconds), 27 h 35 min 5 s. A message
# still failing when a recovery starts is exhausted (a webhook) within it, or got through.
RETRY_SPAN = timedelta(seconds=sum((5, 300, 1800, 7200, 18000, 36000, 36000)))
# ``changed_by`` of a record ``recover`` changed, and of one a recovery settled.
RECOVER = "notifier.recover"
SETTLED = "recovery.settled"


class State(enum.StrEnum):
    """An endpoint's health: delivering, failing (Svix retries), disabled (Svix stopped)."""

    HEALTHY = "healthy"
    FAILING = "failing"
    DISABLED = "disabled"
    RECOVERING = "recovering"  # recover started Svix's recovery; no failure webhook since


class Unreadable(ValueError):
    """A signed webhook we cannot read (not an object, no type, no ids): acknowledged, logged."""


@dataclass(frozen=True)
class Webhook:
    """What one operational webhook says, ids and times only."""

    type: str
    app_id: str | None = None
    project: str | None = None  # appUid
    endpoint_id: str | None = None
    endpoint_uid: str | None = None
    event_id: str | None = None  # msgEventId: our event id
    message_id: str | None = None  # msgId
    status_code: int | None = None  # lastAttempt.responseStatusCode
    attempted_at: datetime | None = None  # lastAttempt.timestamp
    fail_since: datetime | None = None  # endpoint.disabled's failSince
    trigger: str | None = None  # endpoint.disabled's trigger: automatic | manual

    @property
    def known(self) -> bool:
        """One of the types we act on (others are acknowledged and logged)."""
        return self.type in EVENT_TYPES


@dataclass(frozen=True)
class Exhausted:
    """One event Svix gave up delivering to an endpoint."""

    event_id: str | None
    message_id: str | None
    status_code: int | None
    at: datetime


@dataclass(frozen=True)
class RecoveryStarted:
    """A recovery ``recover`` started: when (before it asked Svix), Svix's task, from when."""

    at: datetime
    task_id: str
    since: datetime

    @property
    def settles_at(self) -> datetime:
        """When, with no failure webhook by then, the endpoint counts as healthy again."""
        return self.at + RETRY_SPAN


@dataclass(frozen=True)
class EndpointHealth:
    """A project's endpoint as recorded: its state since when, and what changed it last."""

    project: str
    app_id: str
    endpoint_id: str
    endpoint_uid: str | None
    state: State
    since: datetime
    changed_by: str  # the webhook type that set the state
    changed_at: datetime  # when that webhook arrived
    last_status_code: int | None = None
    trigger: str | None = None
    exhausted: tuple[Exhausted, ...] = field(default_factory=tuple)
    # The first failed attempt we know of since it last was healthy: where a recovery starts
    # (Svix's failSince is later: svix-server sets it at the first exhaustion).
    failing_since: datetime | None = None
    # When the latest failure webhook (failing, exhausted, disabled) arrived.
    failure_arrived_at: datetime | None = None
    recovery: RecoveryStarted | None = None  # while recovering

    @property
    def failures_began(self) -> datetime:
        """The earliest failure recorded: the first failing attempt, failSince, or a given-up
        event's last attempt, whichever came first."""
        known = [self.since, *(e.at for e in self.exhausted)]
        if self.failing_since is not None:
            known.append(self.failing_since)
        return min(known)


def read(document: Any) -> Webhook:
    """The webhook's ids and times; raises :class:`Unreadable` when it has no type or its data
    is not an object. Ids that are not plain ids are left out (they reach logs and keys)."""
    if not isinstance(document, dict) or not isinstance(document.get("type"), str):
        raise Unreadable("not an operational webhook (no type)")
    kind = document["type"]
    data = document.get("data")
    if not isinstance(data, dict):
        raise Unreadable("its data is not an object")
    last = data.get("lastAttempt")
    last = last if isinstance(last, dict) else {}
    code = last.get("responseStatusCode")
    return Webhook(
        type=kind if SAFE_ID.fullmatch(kind) else "(unsafe)",
        app_id=safe_id(data.get("appId")),
        project=safe_id(data.get("appUid")),
        endpoint_id=safe_id(data.get("endpointId")),
        endpoint_uid=safe_id(data.get("endpointUid")),
        event_id=safe_id(data.get("msgEventId")),
        message_id=safe_id(data.get("msgId")),
        status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
        attempted_at=_time(last.get("timestamp")),
        fail_since=_time(data.get("failSince")),
        trigger=data.get("trigger") if data.get("trigger") in ("automatic", "manual") else None,
    )


def apply(
    current: EndpointHealth | None, webhook: Webhook, arrived_at: datetime
) -> EndpointHealth | None:
    """The endpoint's record after ``webhook``; None when the endpoint has none any more
    (deleted) or never needed one (created, updated or enabled while unknown).

    - disabled: ``disabled`` since ``failSince`` (when the failures began), else now.
    - failing, exhausted: ``failing`` (a disabled endpoint stays disabled), since the first.
    - enabled, recovered (a message got through after failing: the endpoint delivers, so it was
      enabled again, by ``recover`` or the customer's App Portal): ``healthy`` again.
    """
    if webhook.project is None or webhook.app_id is None or webhook.endpoint_id is None:
        raise Unreadable("no appUid, appId or endpointId")
    if webhook.type == DELETED:
        return None
    if current is not None:
        current = settled(current, arrived_at)
    if current is None:
        if webhook.type in (CREATED, UPDATED, ENABLED, RECOVERED):
            return None
        current = EndpointHealth(
            project=webhook.project,
            app_id=webhook.app_id,
            endpoint_id=webhook.endpoint_id,
            endpoint_uid=webhook.endpoint_uid,
            state=State.HEALTHY,
            since=arrived_at,
            changed_by=webhook.type,
            changed_at=arrived_at,
        )
    uid = webhook.endpoint_uid or current.endpoint_uid
    base = replace(current, endpoint_uid=uid)
    if webhook.type in (DISABLED, FAILING, EXHAUSTED):
        base = replace(base, failure_arrived_at=arrived_at)
    if webhook.type == DISABLED:
        since = webhook.fail_since or arrived_at
        base = replace(base, failing_since=base.failing_since or since)
        return _changed(
            base, State.DISABLED, since, webhook, arrived_at, trigger=webhook.trigger, recovery=None
        )
    if webhook.type in (FAILING, EXHAUSTED):
        if base.failing_since is None:
            base = replace(base, failing_since=webhook.attempted_at or arrived_at)
        if webhook.status_code is not None:
            base = replace(base, last_status_code=webhook.status_code)
        if webhook.type == EXHAUSTED:
            gave_up = Exhausted(
                webhook.event_id,
                webhook.message_id,
                webhook.status_code,
                webhook.attempted_at or arrived_at,
            )
            base = replace(base, exhausted=(gave_up, *base.exhausted)[:EXHAUSTED_KEPT])
        if base.state in (State.FAILING, State.DISABLED):
            return base
        since = webhook.attempted_at or arrived_at
        return _changed(base, State.FAILING, since, webhook, arrived_at, recovery=None)
    if webhook.type in (ENABLED, RECOVERED):
        return _changed(
            base,
            State.HEALTHY,
            arrived_at,
            webhook,
            arrived_at,
            trigger=None,
            failing_since=None,
            recovery=None,
        )
    return base


def started(current: EndpointHealth, recovery: RecoveryStarted) -> EndpointHealth:
    """The record once ``recover`` started Svix's ``recovery``: ``recovering`` since then.

    What the webhooks said after the recovery started stands: a failure webhook that arrived
    since puts (keeps) it failing or disabled, an enabled or recovered one made it healthy.
    """
    current = settled(current, recovery.at)
    if current.state == State.HEALTHY or current.changed_at > recovery.at:
        return current
    if current.failure_arrived_at is not None and current.failure_arrived_at > recovery.at:
        return current
    return replace(
        current,
        state=State.RECOVERING,
        since=recovery.at,
        changed_by=RECOVER,
        changed_at=recovery.at,
        trigger=None,
        recovery=recovery,
    )


def settled(health: EndpointHealth, now: datetime) -> EndpointHealth:
    """``health`` as of ``now``: a recovery with no failure webhook through Svix's whole retry
    schedule (:data:`RETRY_SPAN`) after it started leaves the endpoint healthy.

    Recovery's resends are manual attempts, which send no operational webhook (svix-server
    worker.rs ``handle_failed_dispatch``, ``handle_successful_dispatch``), so the quiet is the
    only word Svix gives that they got through.
    """
    if health.state != State.RECOVERING or health.recovery is None:
        return health
    settles_at = health.recovery.settles_at
    if now < settles_at:
        return health
    return replace(
        health,
        state=State.HEALTHY,
        since=settles_at,
        changed_by=SETTLED,
        changed_at=settles_at,
        failing_since=None,
        recovery=None,
    )


def _changed(
    health: EndpointHealth,
    state: State,
    since: datetime,
    webhook: Webhook,
    arrived_at: datetime,
    **more: Any,
) -> EndpointHealth:
    return replace(
        health, state=state, since=since, changed_by=webhook.type, changed_at=arrived_at, **more
    )


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Applied:
    """What recording one webhook did: ``new`` False for a repeat (nothing changed); the
    endpoint's record after it; for an exhausted one, what became of its event's record
    (``recorded``, ``other_project``: another tenant's event, untouched, ``no_record``)."""

    new: bool
    health: EndpointHealth | None = None
    event_record: str | None = None


@dataclass(frozen=True)
class RecoveryTask:
    """The background task ``v1.endpoint.recover`` started (``RecoverOut``)."""

    id: str
    status: str  # running | finished | failed
