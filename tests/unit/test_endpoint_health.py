"""How each operational webhook (shaped by Svix's OpenAPI ``webhooks`` section) moves a customer
endpoint's recorded health: the state the on-call person reads in ``status``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from notifier.domain.endpoint_health import (
    EXHAUSTED_KEPT,
    RETRY_SPAN,
    RecoveryStarted,
    State,
    Unreadable,
    apply,
    read,
    settled,
    started,
)
from tests import factories

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def webhook(kind, **data):
    return read(json.loads(factories.operational_webhook(kind, **data)))


def run(*kinds, start=None):
    health, at = start, NOW
    for kind in kinds:
        health = apply(health, kind if not isinstance(kind, str) else webhook(kind), at)
        at += timedelta(minutes=1)
    return health


def test_the_webhook_is_read_for_ids_times_and_status_codes_only():
    hook = webhook("message.attempt.exhausted", event_id="evt_9", status=410)
    assert (hook.project, hook.app_id, hook.endpoint_id) == (
        "acme",
        factories.APP_ID,
        factories.ENDPOINT_ID,
    )
    assert (hook.event_id, hook.status_code) == ("evt_9", 410)
    assert hook.attempted_at == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def test_disabled_is_disabled_since_the_failures_began():
    health = run("endpoint.disabled")
    assert health.state == State.DISABLED
    assert health.since == datetime(2026, 11, 25, 15, 4, 5, tzinfo=UTC)
    assert (health.changed_by, health.trigger) == ("endpoint.disabled", "automatic")


def test_failing_then_exhausted_then_disabled_then_enabled():
    failing = run("message.attempt.failing")
    assert failing.state == State.FAILING
    assert failing.since == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # the failed attempt's time
    exhausted = run("message.attempt.exhausted", start=failing)
    assert exhausted.state == State.FAILING and exhausted.since == failing.since
    assert [x.event_id for x in exhausted.exhausted] == ["evt_test00000001"]
    disabled = run("endpoint.disabled", start=exhausted)
    assert disabled.state == State.DISABLED
    assert disabled.exhausted == exhausted.exhausted  # still shown: they are what recover resends
    assert run("message.attempt.failing", start=disabled).state == State.DISABLED
    enabled = run("endpoint.enabled", start=disabled)
    assert enabled.state == State.HEALTHY and enabled.trigger is None


def test_failures_began_at_the_first_failing_attempt_before_svix_s_fail_since():
    failing = run("message.attempt.failing")  # lastAttempt 2026-11-30T10:00Z
    disabled = run(webhook("endpoint.disabled", failSince="2026-11-30T11:00:00Z"), start=failing)
    assert disabled.since == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)  # Svix's failSince
    assert disabled.failures_began == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert run("endpoint.enabled", start=disabled).failing_since is None


def test_a_recovered_message_makes_a_failing_or_disabled_endpoint_healthy():
    # A message got through: the endpoint delivers, so it was enabled again (recover, or the
    # customer's App Portal), whether or not endpoint.enabled arrived first.
    assert run("message.attempt.failing", "message.attempt.recovered").state == State.HEALTHY
    after = run("endpoint.disabled", "message.attempt.recovered")
    assert (after.state, after.changed_by) == (State.HEALTHY, "message.attempt.recovered")


def test_news_about_an_unknown_healthy_endpoint_records_nothing():
    for kind in ("endpoint.created", "endpoint.updated", "endpoint.enabled", "endpoint.deleted"):
        assert run(kind) is None
    assert run("message.attempt.failing", "endpoint.deleted") is None


def test_only_the_latest_exhausted_events_are_kept():
    health = None
    for n in range(EXHAUSTED_KEPT + 5):
        health = apply(health, webhook("message.attempt.exhausted", event_id=f"evt_{n}"), NOW)
    assert len(health.exhausted) == EXHAUSTED_KEPT
    assert health.exhausted[0].event_id == f"evt_{EXHAUSTED_KEPT + 4}"


@pytest.mark.parametrize(
    "document",
    [[], {"data": {}}, {"type": "endpoint.disabled"}, {"type": "endpoint.disabled", "data": []}],
)
def test_what_is_not_an_operational_webhook_is_unreadable(document):
    with pytest.raises(Unreadable):
        read(document)


def test_a_webhook_without_the_ids_it_needs_is_unreadable():
    hook = webhook("endpoint.disabled", appUid=None)
    with pytest.raises(Unreadable):
        apply(None, hook, NOW)


def test_ids_that_are_not_plain_ids_are_left_out():
    hook = webhook("endpoint.disabled", endpointUid="https://user:pw@example.com/")
    assert hook.endpoint_uid is None


# Recovery: ``recover`` records the recovery it started; webhooks after it decide.

STARTED = RecoveryStarted(
    at=NOW + timedelta(hours=1), task_id="qtask_1", since=datetime(2026, 11, 29, tzinfo=UTC)
)


def test_retry_span_is_svix_server_s_default_schedule():
    # config.default.toml: retry_schedule = [5,300,1800,7200,18000,36000,36000]
    assert timedelta(hours=27, minutes=35, seconds=5) == RETRY_SPAN


def test_a_recovery_started_on_a_failing_endpoint_shows_it_recovering_with_its_task():
    failing = run("message.attempt.failing", "message.attempt.exhausted")
    health = started(failing, STARTED)
    assert (health.state, health.since, health.changed_by) == (
        State.RECOVERING,
        STARTED.at,
        "notifier.recover",
    )
    assert health.recovery == STARTED
    assert health.exhausted == failing.exhausted  # still shown until it is healthy
    assert started(run("endpoint.disabled"), STARTED).state == State.RECOVERING  # enabled first


def test_a_failure_webhook_after_the_recovery_started_puts_it_back_to_failing():
    recovering = started(run("message.attempt.failing"), STARTED)
    later = STARTED.at + timedelta(minutes=10)
    hook = webhook("message.attempt.failing", status=503)
    failing = apply(recovering, hook, later)
    assert failing.state == State.FAILING
    assert (failing.changed_by, failing.last_status_code, failing.recovery) == (
        "message.attempt.failing",
        503,
        None,
    )
    exhausted = apply(recovering, webhook("message.attempt.exhausted"), later)
    assert exhausted.state == State.FAILING and exhausted.changed_by == "message.attempt.exhausted"
    assert apply(recovering, webhook("endpoint.disabled"), later).state == State.DISABLED


def test_a_failure_webhook_that_arrived_after_the_recovery_started_wins_over_recording_it():
    # recover asked Svix at STARTED.at; a failure webhook was applied before recover recorded it
    failing = run("message.attempt.failing")
    again = apply(failing, webhook("message.attempt.failing"), STARTED.at + timedelta(seconds=1))
    assert started(again, STARTED) == again
    enabled = apply(failing, webhook("endpoint.enabled"), STARTED.at + timedelta(seconds=1))
    assert started(enabled, STARTED) == enabled  # enabled since: healthy stays healthy


def test_a_recovering_endpoint_is_healthy_at_a_recovered_or_enabled_webhook():
    recovering = started(run("message.attempt.failing"), STARTED)
    for kind in ("message.attempt.recovered", "endpoint.enabled"):
        health = apply(recovering, webhook(kind), STARTED.at + timedelta(minutes=5))
        assert (health.state, health.recovery, health.failing_since) == (State.HEALTHY, None, None)


def test_a_recovering_endpoint_is_healthy_once_svix_s_retry_schedule_passed_without_a_failure():
    recovering = started(run("message.attempt.failing"), STARTED)
    just_before = STARTED.at + RETRY_SPAN - timedelta(seconds=1)
    assert settled(recovering, just_before) == recovering
    health = settled(recovering, STARTED.at + RETRY_SPAN)
    assert (health.state, health.since, health.changed_by) == (
        State.HEALTHY,
        STARTED.at + RETRY_SPAN,
        "recovery.settled",
    )
    # a failure after that is a new outage: failing since its attempt, counted from there
    late = apply(recovering, webhook("message.attempt.failing"), STARTED.at + 2 * RETRY_SPAN)
    assert late.state == State.FAILING
    assert late.failing_since == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    failing = run("message.attempt.failing")
    assert settled(failing, NOW + 10 * RETRY_SPAN) == failing  # only a recovery settles
