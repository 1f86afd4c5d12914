"""The Svix twin's operational side, driven by the real svix SDK: the operational-webhook endpoint
API, endpoint recovery, the retry schedule on the twin's clock, and the operational webhooks
svix-server sends (failing, exhausted, disabled, recovered, endpoint.*), signed."""

import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svix.api import (
    EndpointIn,
    EndpointPatch,
    MessageIn,
    OperationalWebhookEndpointHeadersIn,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointSecretIn,
    OperationalWebhookEndpointUpsertIn,
    RecoverIn,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from devstack.svix_twin.delivery import REAL_SCHEDULE
from tests.integration import test_svix_twin as base
from tests.integration.test_svix_twin import Receiver

# The twin's own fixtures: a fresh twin per test, the SDK, a raw client, the app 'acme'.
twin, sdk, http, app, receiver = base.twin, base.sdk, base.http, base.app, base.receiver

CONFLICT = base.CONFLICT


def send(sdk, event_id):
    return sdk.message.create(
        "acme", MessageIn(event_type="order.created", event_id=event_id, payload={"id": event_id})
    )


def iso(at):
    return at.isoformat().replace("+00:00", "Z")


# --- the operational-webhook endpoint API ----------------------------------------------------


def test_operational_webhook_endpoint_crud_as_the_spec_has_it(sdk, http):
    ops = sdk.operational_webhook.endpoint
    created = ops.create(
        OperationalWebhookEndpointIn(
            url="http://127.0.0.1:1/ops", uid="notifier-ops", event_types=["endpoint.disabled"]
        )
    )
    by_uid = ops.get("notifier-ops")
    moved = ops.upsert(
        "notifier-ops",
        OperationalWebhookEndpointUpsertIn(
            url="http://127.0.0.1:2/ops",
            uid="notifier-ops",
            event_types=["endpoint.disabled", "message.attempt.exhausted"],
        ),
    )
    upserted_new = http.put("/api/v1/operational-webhook/endpoint/other", json={"url": "http://x/"})
    listed = ops.list()
    duplicate = http.post(
        "/api/v1/operational-webhook/endpoint", json={"url": "http://x/", "uid": "notifier-ops"}
    )
    bad_scheme = http.post("/api/v1/operational-webhook/endpoint", json={"url": "ftp://x/"})
    no_types = http.post(
        "/api/v1/operational-webhook/endpoint", json={"url": "http://x/", "eventTypes": []}
    )

    assert created.id.startswith("ep_") and len(created.id) == 30
    assert (created.uid, created.event_types, created.disabled) == (
        "notifier-ops",
        ["endpoint.disabled"],
        False,
    )
    assert (created.description, created.metadata) == ("", {})
    assert by_uid.id == created.id
    assert (moved.id, moved.url) == (created.id, "http://127.0.0.1:2/ops")
    assert moved.event_types == ["endpoint.disabled", "message.attempt.exhausted"]
    assert upserted_new.status_code == 200  # the spec's upsert answers 200 for both
    assert sorted(e.id for e in listed.data) == sorted([created.id, upserted_new.json()["id"]])
    assert listed.done
    assert (duplicate.status_code, duplicate.json()) == (409, CONFLICT)
    assert bad_scheme.json()["detail"][0]["msg"] == "Endpoint URL schemes must be http or https"
    assert no_types.status_code == 422
    ops.delete(created.id)
    with pytest.raises(HttpError) as gone:
        ops.get(created.id)
    assert (gone.value.status_code, gone.value.code) == (404, "not_found")


def test_operational_webhook_endpoint_secret_is_kept_given_and_rotated(sdk, http):
    ops = sdk.operational_webhook.endpoint
    given = "whsec_" + "QUJD" * 8  # 24 bytes
    endpoint = ops.create(OperationalWebhookEndpointIn(url="http://127.0.0.1:1/", secret=given))
    kept = ops.upsert(endpoint.id, OperationalWebhookEndpointUpsertIn(url="http://127.0.0.1:3/"))
    first = ops.get_secret(endpoint.id).key
    ops.rotate_secret(endpoint.id, OperationalWebhookEndpointSecretIn())
    generated = ops.get_secret(endpoint.id).key
    chosen = "whsec_" + "WFla" * 8
    ops.rotate_secret(endpoint.id, OperationalWebhookEndpointSecretIn(key=chosen))
    bad_key = http.post(
        f"/api/v1/operational-webhook/endpoint/{endpoint.id}/secret/rotate", json={"key": "short"}
    )
    long_grace = http.post(
        f"/api/v1/operational-webhook/endpoint/{endpoint.id}/secret/rotate",
        json={"gracePeriodSeconds": 604_801},
    )

    assert kept.id == endpoint.id
    assert first == given
    assert generated.startswith("whsec_") and generated != given
    assert ops.get_secret(endpoint.id).key == chosen
    assert bad_key.status_code == 422 and bad_key.json()["detail"][0]["loc"] == ["body", "key"]
    assert long_grace.json()["detail"][0]["msg"] == "Duration must be between 0 and 7 days"


def test_operational_webhook_endpoint_headers_are_set_and_read(sdk):
    ops = sdk.operational_webhook.endpoint
    endpoint = ops.create(OperationalWebhookEndpointIn(url="http://127.0.0.1:1/"))
    ops.set_headers(endpoint.id, OperationalWebhookEndpointHeadersIn(headers={"X-Env": "local"}))
    out = ops.get_headers(endpoint.id)

    assert (out.headers, out.sensitive) == ({"X-Env": "local"}, [])


def test_operational_api_needs_the_token(twin):
    anonymous = httpx.get(f"{twin.url}/api/v1/operational-webhook/endpoint")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "authentication_failed")


# --- endpoint.recover --------------------------------------------------------------------------


def test_recover_answers_202_with_a_running_task(sdk, app, receiver):
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    out = sdk.endpoint.recover(
        "acme", endpoint.id, RecoverIn(since=datetime.now(UTC) - timedelta(hours=1))
    )

    assert out.id.startswith("qtask_") and len(out.id) == 33
    assert (out.status.value, out.task.value) == ("running", "endpoint.recover")


def test_recover_refuses_more_than_14_days_and_unknown_endpoints(sdk, http, app, receiver):
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    too_old = iso(datetime.now(UTC) - timedelta(days=14, minutes=6))
    with pytest.raises(HTTPValidationError) as refused:
        sdk.endpoint.recover("acme", endpoint.id, RecoverIn(since=too_old))
    naive = http.post(
        f"/api/v1/app/acme/endpoint/{endpoint.id}/recover", json={"since": "2026-01-01T00:00:00"}
    )
    unknown = http.post(
        "/api/v1/app/acme/endpoint/ep_nope/recover", json={"since": iso(datetime.now(UTC))}
    )
    no_app = http.post(
        f"/api/v1/app/nope/endpoint/{endpoint.id}/recover", json={"since": iso(datetime.now(UTC))}
    )

    [error] = refused.value.detail
    assert (error.loc, error.msg) == (
        ["body", "since"],
        "Cannot recover more than 14 days of messages",
    )
    assert naive.json()["detail"][0]["type"] == "value_error.jsondecode"
    assert (unknown.status_code, no_app.status_code) == (404, 404)


def deliveries(twin, endpoint_id):
    return [
        (a["event_id"], a["trigger"], a["status_code"])
        for a in twin.attempts()
        if a["endpoint_id"] == endpoint_id
    ]


def test_recover_resends_once_only_what_failed_since_and_never_succeeded(sdk, twin, app, receiver):
    """recovery.rs: messages with a failed attempt to this endpoint in [since, until) and no
    successful one there, each once, as a manual attempt; other endpoints untouched."""
    twin.configure(retry_schedule=[0.01])
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    other_receiver = Receiver()
    try:
        other = sdk.endpoint.create("acme", EndpointIn(url=other_receiver.url))
        twin.fail_endpoint("acme", endpoint.id, 503)
        send(sdk, "before")
        assert twin.wait_for_deliveries(5)
        twin.advance_clock(3600)
        since = twin.clock.utcnow()
        send(sdk, "lost-1")
        send(sdk, "lost-2")
        assert twin.wait_for_deliveries(5)
        twin.heal_endpoint("acme", endpoint.id)
        receiver.statuses = [500]
        send(sdk, "flaky")  # fails once, then the retry succeeds
        send(sdk, "fine")
        assert twin.wait_for_deliveries(5)

        sdk.endpoint.recover("acme", endpoint.id, RecoverIn(since=since))
        assert twin.wait_for_deliveries(5)
        recovered = [d for d in deliveries(twin, endpoint.id) if d[1] == "manual"]
        sdk.endpoint.recover("acme", endpoint.id, RecoverIn(since=since))
        assert twin.wait_for_deliveries(5)
        again = [d for d in deliveries(twin, endpoint.id) if d[1] == "manual"]
        earlier = RecoverIn(since=since - timedelta(hours=2), until=since)
        sdk.endpoint.recover("acme", endpoint.id, earlier)
        assert twin.wait_for_deliveries(5)
        until_since = [d for d in deliveries(twin, endpoint.id) if d[1] == "manual"][2:]
    finally:
        other_receiver.close()

    assert ("flaky", "scheduled", 500) in deliveries(twin, endpoint.id)
    assert sorted(recovered) == [("lost-1", "manual", 204), ("lost-2", "manual", 204)]
    assert all(d[1] == "scheduled" and d[2] == 204 for d in deliveries(twin, other.id))
    assert again == recovered  # both succeeded in the window since: nothing left to recover
    assert until_since == [("before", "manual", 204)]  # [since, until) bounds the window


def test_recover_skips_a_disabled_endpoint_until_it_is_enabled(sdk, twin, app, receiver):
    """filtered_endpoints: "No disabled or deleted endpoints ever", manual attempts included."""
    twin.configure(retry_schedule=[])
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    twin.fail_endpoint("acme", endpoint.id, 503)
    since = twin.clock.utcnow()
    send(sdk, "lost")
    assert twin.wait_for_deliveries(5)
    twin.heal_endpoint("acme", endpoint.id)
    sdk.endpoint.patch("acme", endpoint.id, EndpointPatch(disabled=True))

    sdk.endpoint.recover("acme", endpoint.id, RecoverIn(since=since))
    assert twin.wait_for_deliveries(5)
    while_disabled = deliveries(twin, endpoint.id)
    sdk.endpoint.patch("acme", endpoint.id, EndpointPatch(disabled=False))
    sdk.endpoint.recover("acme", endpoint.id, RecoverIn(since=since))
    assert twin.wait_for_deliveries(5)

    assert while_disabled == [("lost", "scheduled", 503)]
    assert deliveries(twin, endpoint.id)[1:] == [("lost", "manual", 204)]


def test_a_failed_manual_attempt_is_not_retried(sdk, twin, app, receiver):
    twin.configure(retry_schedule=[0.01, 0.01])
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    twin.fail_endpoint("acme", endpoint.id, 503)
    since = twin.clock.utcnow()
    send(sdk, "lost")
    assert twin.wait_for_deliveries(5)
    sdk.endpoint.recover("acme", endpoint.id, RecoverIn(since=since))
    assert twin.wait_for_deliveries(5)

    assert [d[1] for d in deliveries(twin, endpoint.id)] == [
        "scheduled",
        "scheduled",
        "scheduled",
        "manual",
    ]
    assert [w["type"] for w in twin.operational_webhooks()] == [
        "endpoint.created",
        "message.attempt.exhausted",  # the schedule's end; the manual failure sends none
    ]


# --- the retry schedule and the operational webhooks ---------------------------------------


@pytest.fixture
def ops(sdk, twin):
    """An operational-webhook endpoint on loopback, and Svix's real schedule on the twin."""
    twin.configure(retry_schedule=REAL_SCHEDULE)
    r = Receiver()
    endpoint = sdk.operational_webhook.endpoint.create(OperationalWebhookEndpointIn(url=r.url))
    r.secret = sdk.operational_webhook.endpoint.get_secret(endpoint.id).key
    r.endpoint = endpoint
    yield r
    r.close()


def received(ops):
    """The operational webhooks the endpoint got, each verified with the svix SDK's Webhook."""
    webhook = Webhook(ops.secret)
    for headers, body in ops.received:
        webhook.verify(body, headers)  # raises WebhookVerificationError
    return [json.loads(body) for _, body in ops.received]


def of_type(ops, event_type):
    return [w["data"] for w in received(ops) if w["type"] == event_type]


def at(record):
    return datetime.fromisoformat(record["at"])


def test_a_failing_message_is_retried_on_svix_schedule_failing_at_4_exhausted_at_8(
    sdk, twin, app, receiver, ops
):
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    twin.fail_endpoint("acme", endpoint.id, 503)
    out = send(sdk, "evt-1")
    moved = twin.run_schedule()
    assert twin.wait_for_deliveries(5)
    attempts = [a for a in twin.attempts() if a["msg_id"] == out.id]
    gaps = [(at(b) - at(a)).total_seconds() for a, b in itertools.pairwise(attempts)]
    [failing] = of_type(ops, "message.attempt.failing")
    [exhausted] = of_type(ops, "message.attempt.exhausted")

    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert all(a["status"] == "fail" and a["status_code"] == 503 for a in attempts)
    for gap, planned in zip(gaps, REAL_SCHEDULE, strict=True):
        assert planned * 0.8 - 0.5 <= gap <= planned * 1.2 + 0.5  # worker.rs JITTER_DELTA
    assert moved >= sum(REAL_SCHEDULE) * 0.8
    assert failing == {
        "appId": app.id,
        "appUid": "acme",
        "msgId": out.id,
        "msgEventId": "evt-1",
        "endpointId": endpoint.id,
        "lastAttempt": {
            "id": attempts[3]["id"],
            "responseStatusCode": 503,
            "timestamp": attempts[3]["at"],
        },
    }
    assert exhausted["lastAttempt"]["id"] == attempts[7]["id"]
    assert {k: exhausted[k] for k in ("appUid", "msgId", "msgEventId")} == {
        "appUid": "acme",
        "msgId": out.id,
        "msgEventId": "evt-1",
    }
    assert of_type(ops, "endpoint.disabled") == []  # one exhausted message starts the clock


def test_run_schedule_stops_at_its_horizon_and_leaves_later_retries_queued(
    sdk, twin, app, receiver, ops
):
    """Within the first hour: the attempts at 0, 5 s, 5 min and 35 min; the next waits 2 h."""
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    twin.fail_endpoint("acme", endpoint.id, 503)
    send(sdk, "evt-1")
    moved = twin.run_schedule(horizon=3600)

    assert twin.settle(5)
    assert not twin.wait_for_deliveries(0.2)  # the 5th attempt is still queued
    assert [a["attempt"] for a in twin.attempts()] == [1, 2, 3, 4]
    assert moved < 3600
    assert len(of_type(ops, "message.attempt.failing")) == 1
    assert of_type(ops, "message.attempt.exhausted") == []


@pytest.mark.parametrize(("failures", "recovered"), [(3, False), (4, True), (6, True)])
def test_recovered_is_sent_only_after_a_failing(sdk, twin, app, receiver, ops, failures, recovered):
    """handle_successful_dispatch: `recovered` when attempt_count >= 4, i.e. after `failing`."""
    sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    receiver.statuses = [500] * failures
    send(sdk, "evt-1")
    twin.run_schedule()
    assert twin.wait_for_deliveries(5)

    assert len(of_type(ops, "message.attempt.failing")) == (failures >= 4)
    assert len(of_type(ops, "message.attempt.recovered")) == recovered
    assert [a["status"] for a in twin.attempts()][-1] == "success"
    assert len(twin.attempts()) == failures + 1


def exhaust(sdk, twin, event_id):
    send(sdk, event_id)
    twin.run_schedule()
    assert twin.wait_for_deliveries(5)


def test_an_endpoint_failing_for_more_than_120_hours_is_disabled(sdk, twin, app, receiver, ops):
    """worker.rs process_endpoint_failure: first exhaustion starts the clock; an exhaustion more
    than endpoint_failure_disable_after (120 h) later disables the endpoint."""
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url, uid="shop"))
    twin.fail_endpoint("acme", endpoint.id, None)  # connection refused
    exhaust(sdk, twin, "evt-1")
    first = twin.clock.utcnow()
    exhaust(sdk, twin, "evt-2")  # about a day later: not yet
    still_enabled = sdk.endpoint.get("acme", endpoint.id).disabled
    twin.advance_clock(120 * 3600)
    exhaust(sdk, twin, "evt-3")
    [disabled] = of_type(ops, "endpoint.disabled")
    send(sdk, "evt-4")
    assert twin.wait_for_deliveries(5)

    assert still_enabled is False
    assert sdk.endpoint.get("acme", endpoint.id).disabled is True
    assert {
        k: disabled[k] for k in ("appId", "appUid", "endpointId", "endpointUid", "trigger")
    } == {
        "appId": app.id,
        "appUid": "acme",
        "endpointId": endpoint.id,
        "endpointUid": "shop",
        "trigger": "automatic",
    }
    assert abs((datetime.fromisoformat(disabled["failSince"]) - first).total_seconds()) < 5
    assert [
        w["lastAttempt"]["responseStatusCode"] for w in of_type(ops, "message.attempt.exhausted")
    ] == [0, 0, 0]
    assert "evt-4" not in {
        a["event_id"] for a in twin.attempts()
    }  # a disabled endpoint gets nothing


def test_a_successful_delivery_forgives_the_failures(sdk, twin, app, receiver, ops):
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    twin.fail_endpoint("acme", endpoint.id, 503)
    exhaust(sdk, twin, "evt-1")
    twin.heal_endpoint("acme", endpoint.id)
    exhaust(sdk, twin, "evt-ok")
    twin.fail_endpoint("acme", endpoint.id, 503)
    twin.advance_clock(120 * 3600)
    exhaust(sdk, twin, "evt-2")

    assert sdk.endpoint.get("acme", endpoint.id).disabled is False
    assert of_type(ops, "endpoint.disabled") == []
    assert len(of_type(ops, "message.attempt.exhausted")) == 2


def test_endpoint_changes_are_announced_and_enabling_is_endpoint_enabled(sdk, twin, app, ops):
    endpoint = sdk.endpoint.create("acme", EndpointIn(url="http://127.0.0.1:1/", uid="shop"))
    sdk.endpoint.patch("acme", "shop", EndpointPatch(disabled=True))
    sdk.endpoint.patch("acme", "shop", EndpointPatch(disabled=False))
    sdk.endpoint.patch("acme", "shop", EndpointPatch(description="same state"))
    sdk.endpoint.delete("acme", "shop")
    assert twin.wait_for_deliveries(5)
    sent = received(ops)
    common = {"appId": app.id, "appUid": "acme", "endpointId": endpoint.id, "endpointUid": "shop"}

    assert [w["type"] for w in sent] == [
        "endpoint.created",
        "endpoint.updated",
        "endpoint.disabled",
        "endpoint.updated",
        "endpoint.enabled",
        "endpoint.updated",
        "endpoint.deleted",
    ]
    assert sent[2]["data"] == {**common, "failSince": None, "trigger": "manual"}
    assert all(w["data"] == common for i, w in enumerate(sent) if i != 2)


def test_operational_webhooks_are_signed_with_the_operational_endpoint_secret(sdk, twin, app, ops):
    sdk.operational_webhook.endpoint.rotate_secret(
        ops.endpoint.id, OperationalWebhookEndpointSecretIn()
    )
    new_secret = sdk.operational_webhook.endpoint.get_secret(ops.endpoint.id).key
    sdk.endpoint.create("acme", EndpointIn(url="http://127.0.0.1:1/"))
    assert twin.wait_for_deliveries(5)
    [(headers, body)] = ops.received
    [sent] = twin.operational_webhooks()

    Webhook(new_secret).verify(body, headers)
    Webhook(ops.secret).verify(body, headers)  # the old one, within its 24 h grace
    assert json.loads(body)["type"] == "endpoint.created"
    assert headers["svix-id"] == sent["id"] and sent["id"].startswith("msg_")
    assert len(headers["svix-signature"].split(" ")) == 2
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret).verify(body.replace(b"created", b"deleted"), headers)


def test_operational_endpoints_get_only_their_event_types_and_are_retried(sdk, twin, app, ops):
    picky = Receiver([500])
    try:
        sdk.operational_webhook.endpoint.create(
            OperationalWebhookEndpointIn(url=picky.url, event_types=["endpoint.deleted"])
        )
        sdk.endpoint.create("acme", EndpointIn(url="http://127.0.0.1:1/", uid="shop"))
        sdk.endpoint.delete("acme", "shop")
        twin.run_schedule()
        assert twin.wait_for_deliveries(5)
        picky_types = [json.loads(body)["type"] for _, body in picky.received]
    finally:
        picky.close()
    to_picky = [a for a in twin.operational_attempts() if a["url"] == picky.url]

    assert picky_types == ["endpoint.deleted", "endpoint.deleted"]  # 500, then the retry
    assert [(a["attempt"], a["status_code"]) for a in to_picky] == [(1, 500), (2, 204)]
    assert [w["type"] for w in received(ops)] == ["endpoint.created", "endpoint.deleted"]
    assert not of_type(ops, "message.attempt.failing")  # their failures are not announced


def test_the_control_api_drives_the_schedule_and_endpoint_faults(
    sdk, twin, http, app, receiver, ops
):
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
    fault = {"app": "acme", "endpoint": endpoint.id, "status": 502}
    http.post("/_twin/endpoint-faults", json=fault).raise_for_status()
    http.post(
        "/_twin/config", json={"endpoint_disable_after_seconds": 20 * 3600}
    ).raise_for_status()
    send(sdk, "evt-1")
    run = http.post("/_twin/run-schedule", json={}).json()
    send(sdk, "evt-2")  # exhausted 22 to 33 h later: past 20 h, before the entry's 40 h expiry
    http.post("/_twin/run-schedule", json={}).raise_for_status()
    http.request("DELETE", "/_twin/endpoint-faults", json=fault).raise_for_status()
    assert twin.wait_for_deliveries(5)
    types = [w["type"] for w in http.get("/_twin/operational").json()]
    unknown = http.post("/_twin/endpoint-faults", json={"app": "acme", "endpoint": "ep_x"})

    assert run["advanced_seconds"] >= sum(REAL_SCHEDULE) * 0.8
    assert types.count("message.attempt.exhausted") == 2
    assert types[-1] == "endpoint.disabled"
    assert {a["status_code"] for a in http.get("/_twin/attempts").json()} == {502}
    assert len(http.get("/_twin/operational-attempts").json()) == len(types)
    assert unknown.status_code == 400


def test_an_endpoint_down_for_days_then_enabled_and_recovered_gets_each_lost_event_once(
    sdk, twin, app, receiver, ops
):
    """failing -> exhausted -> disabled -> enabled -> recover: the events whose attempts failed
    arrive once each; one sent while the endpoint was disabled had no attempt to recover."""
    endpoint = sdk.endpoint.create("acme", EndpointIn(url=receiver.url, uid="shop"))
    send(sdk, "evt-0")
    assert twin.wait_for_deliveries(5)
    twin.fail_endpoint("acme", "shop", None)
    since = twin.clock.utcnow()
    exhaust(sdk, twin, "evt-1")
    twin.advance_clock(120 * 3600)
    exhaust(sdk, twin, "evt-2")
    send(sdk, "evt-3")  # while disabled: no attempt at all (create_message_inner)
    assert twin.wait_for_deliveries(5)
    twin.heal_endpoint("acme", "shop")
    sdk.endpoint.patch("acme", "shop", EndpointPatch(disabled=False))
    sdk.endpoint.recover("acme", "shop", RecoverIn(since=since))
    assert twin.wait_for_deliveries(5)
    arrived = [json.loads(body)["id"] for _, body in receiver.received]
    types = [w["type"] for w in received(ops)]

    assert sorted(arrived) == ["evt-0", "evt-1", "evt-2"]
    assert types.count("message.attempt.failing") == 2
    assert types.count("message.attempt.exhausted") == 2
    assert types[-2:] == ["endpoint.updated", "endpoint.enabled"]
    assert types.index("endpoint.disabled") < types.index("endpoint.enabled")
    assert of_type(ops, "endpoint.enabled") == [
        {"appId": app.id, "appUid": "acme", "endpointId": endpoint.id, "endpointUid": "shop"}
    ]
