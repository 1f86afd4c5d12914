"""The Svix twin's operational side, driven by the real svix SDK: the operational-webhook endpoint
API, endpoint recovery, the retry schedule on the twin's clock, and the operational webhooks
svix-server sends (failing, exhausted, disabled, recovered, endpoint.*), signed."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from svix.api import (
    ApplicationIn,
    EndpointIn,
    EndpointPatch,
    MessageIn,
    OperationalWebhookEndpointHeadersIn,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointSecretIn,
    OperationalWebhookEndpointUpsertIn,
    RecoverIn,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

from devstack.svix_twin.server import SvixTwin
from tests.integration.test_svix_twin import Receiver

TOKEN = "testsk_twin_ops"
CONFLICT = {"code": "conflict", "detail": "A conflict has occurred"}


@pytest.fixture
def twin():
    with SvixTwin(TOKEN) as server:
        yield server


@pytest.fixture
def sdk(twin):
    return Svix(TOKEN, SvixOptions(server_url=twin.url, retry_schedule=[], timeout=5))


@pytest.fixture
def http(twin):
    with httpx.Client(base_url=twin.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def app(sdk):
    return sdk.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


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
    finally:
        other_receiver.close()

    assert ("flaky", "scheduled", 500) in deliveries(twin, endpoint.id)
    assert sorted(recovered) == [("lost-1", "manual", 204), ("lost-2", "manual", 204)]
    assert all(d[1] == "scheduled" and d[2] == 204 for d in deliveries(twin, other.id))
    assert again == recovered  # both succeeded in the window since: nothing left to recover


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
