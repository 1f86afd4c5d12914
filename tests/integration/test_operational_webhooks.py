"""The operational_webhooks entry point as functions-framework serves it and bootstrap builds it,
on the Firestore emulator, fed webhooks shaped by Svix's OpenAPI ``webhooks`` section and signed
by the svix SDK: what it records, what it answers, what it never keeps."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest

from notifier import bootstrap
from notifier.adapters.firestore.endpoint_health import (
    ENDPOINT_HEALTH,
    OPERATIONAL_WEBHOOKS,
    FirestoreEndpointHealth,
)
from notifier.adapters.firestore.keys import document_key
from notifier.adapters.firestore.store import NOTIFICATIONS, FirestoreStore
from notifier.domain.decoding import event_from
from notifier.domain.endpoint_health import RETRY_SPAN, RecoveryStarted
from notifier.domain.events import Delivery
from notifier.usecases.endpoint_health import report as endpoint_report
from tests import factories
from tests.support import logged_lines

MAIN = Path(__file__).resolve().parents[2] / "main.py"
SECRET = "whsec_" + base64.b64encode(b"operational-webhook-key-01234567").decode()
OTHER = "whsec_" + base64.b64encode(b"somebody-else-s-key-0123456789ab").decode()
HEALTH_KEY = f"{factories.APP_ID}.{factories.ENDPOINT_ID}"


@pytest.fixture
def client(db, monkeypatch):
    """As deployed: no Svix token, the secret as Secret Manager mounts it."""
    monkeypatch.setenv("SVIX_OPERATIONAL_WEBHOOK_SECRET", SECRET + "\n")
    monkeypatch.delenv("SVIX_API_KEY", raising=False)
    bootstrap.reset()
    app = functions_framework.create_app(
        target="operational_webhooks", source=str(MAIN), signature_type="http"
    )
    yield app.test_client()
    bootstrap.reset()


@pytest.fixture
def log_lines():
    with logged_lines() as lines:
        yield lines


def post(client, body, *, secret=SECRET, msg_id="msg_2op1", at=None):
    headers = factories.svix_signed(body, secret, msg_id=msg_id, at=at)
    return client.post("/", data=body, headers=headers)


def health(db):
    snapshot = db.collection(ENDPOINT_HEALTH).document(HEALTH_KEY).get()
    return snapshot.to_dict() if snapshot.exists else None


def sent_event(db, project="acme"):
    """An event the function sent: its ``notifications/`` record, made by the real store."""
    event = event_from(factories.event(project=project), max_bytes=2**20)
    store = FirestoreStore(db, lease_seconds=60.0, ttl_days=30, raw_limit=64)
    claim = store.claim(event, Delivery(message_id="m-1"))
    store.mark_sent(claim, "msg_x", 202)
    return event


def raw_record(db, event):
    return db.collection(NOTIFICATIONS).document(document_key(event.id)).get().to_dict()


def test_a_signed_disabled_webhook_records_the_endpoint_disabled_since_its_first_failure(
    client, db, log_lines
):
    answer = post(client, factories.operational_webhook("endpoint.disabled"))
    assert answer.status_code == 200
    saved = health(db)
    assert saved["project"] == "acme"
    assert saved["state"] == "disabled"
    assert saved["since"] == datetime(2026, 11, 25, 15, 4, 5, tzinfo=UTC)
    assert saved["changed_by"] == "endpoint.disabled"
    assert saved["trigger"] == "automatic"
    assert saved["endpoint_uid"] == "orders-hook"
    assert "expires_at" not in saved  # a disabled endpoint stays until Svix says otherwise
    [line] = [x for x in log_lines() if x.get("webhook_type") == "endpoint.disabled"]
    assert line["severity"] == "WARNING"
    assert line["project"] == "acme" and line["endpoint_state"] == "disabled"
    unhealthy = FirestoreEndpointHealth(db, ttl_days=30).unhealthy()
    assert [(h.project, h.state.value) for h in unhealthy] == [("acme", "disabled")]


def test_enabled_clears_the_disabled_state(client, db):
    assert post(client, factories.operational_webhook("endpoint.disabled")).status_code == 200
    enabled = factories.operational_webhook("endpoint.enabled")
    assert post(client, enabled, msg_id="msg_2op2").status_code == 200
    saved = health(db)
    assert saved["state"] == "healthy"
    assert saved["changed_by"] == "endpoint.enabled"
    assert saved["expires_at"] > saved["changed_at"] + timedelta(days=29)
    assert FirestoreEndpointHealth(db, ttl_days=30).unhealthy() == []


def test_failing_then_exhausted_marks_the_endpoint_failing_and_the_event_exhausted(client, db):
    event = sent_event(db)
    failing = factories.operational_webhook(
        "message.attempt.failing", event_id=event.id, status=503
    )
    assert post(client, failing, msg_id="msg_2op3").status_code == 200
    assert health(db)["state"] == "failing"
    assert health(db)["last_status_code"] == 503
    exhausted = factories.operational_webhook(
        "message.attempt.exhausted", event_id=event.id, status=410
    )
    assert post(client, exhausted, msg_id="msg_2op4").status_code == 200
    saved = health(db)
    assert saved["state"] == "failing"
    assert saved["last_status_code"] == 410
    assert [e["event_id"] for e in saved["exhausted"]] == [event.id]
    fact = raw_record(db, event)["svix_exhausted"][factories.ENDPOINT_ID]
    assert fact["status_code"] == 410
    assert fact["at"] == datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    assert raw_record(db, event)["status"] == "sent"  # still sent: Svix has it


def test_another_tenants_webhook_never_touches_a_record(client, db):
    event = sent_event(db, project="acme")
    exhausted = factories.operational_webhook(
        "message.attempt.exhausted", project="globex", event_id=event.id
    )
    assert post(client, exhausted).status_code == 200
    assert "svix_exhausted" not in raw_record(db, event)
    assert health(db)["project"] == "globex"  # globex's own endpoint is what failed


def test_a_repeated_delivery_changes_nothing(client, db, log_lines):
    event = sent_event(db)
    exhausted = factories.operational_webhook("message.attempt.exhausted", event_id=event.id)
    assert post(client, exhausted, msg_id="msg_2op5").status_code == 200
    first, record = health(db), raw_record(db, event)
    # Svix's retry: the same svix-id, signed afresh a minute later
    later = datetime.now(UTC) + timedelta(seconds=60)
    again = post(client, exhausted, msg_id="msg_2op5", at=later)
    assert again.status_code == 200
    assert again.get_json() == {"result": "already recorded"}
    assert health(db) == first
    assert raw_record(db, event) == record
    assert len(list(db.collection(OPERATIONAL_WEBHOOKS).stream())) == 1
    assert [x["message"] for x in log_lines()][-1] == "operational webhook already recorded"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "unsigned"),
        ({"secret": OTHER}, "bad_signature"),
        ({"minutes_ahead": -10}, "stale"),
        ({"minutes_ahead": 10}, "from_the_future"),
    ],
)
def test_forged_unsigned_stale_and_future_ones_are_refused_and_recorded_nowhere(
    client, db, log_lines, headers, reason
):
    event = sent_event(db)
    body = factories.operational_webhook("message.attempt.exhausted", event_id=event.id)
    before = raw_record(db, event)
    if reason == "unsigned":
        answer = client.post("/", data=body, headers={"content-type": "application/json"})
    elif "minutes_ahead" in headers:  # the clock is read as the test runs, not at collection
        at = datetime.now(UTC) + timedelta(minutes=headers["minutes_ahead"])
        answer = post(client, body, at=at)
    else:
        answer = post(client, body, **headers)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Svix-Signature"
    assert health(db) is None
    assert list(db.collection(OPERATIONAL_WEBHOOKS).stream()) == []
    assert raw_record(db, event) == before
    [line] = [x for x in log_lines() if x.get("reason") == reason]
    assert line["severity"] == "WARNING"
    assert factories.ENDPOINT_ID not in json.dumps(log_lines())  # nothing of the body is logged


def test_unknown_types_are_acknowledged_and_logged(client, db, log_lines):
    body = factories.operational_webhook("background_task.finished")
    answer = post(client, body)
    assert answer.status_code == 200
    assert answer.get_json() == {"result": "ignored"}
    assert health(db) is None
    [line] = [x for x in log_lines() if x.get("reason") == "unknown_type"]
    assert line["webhook_type"] == "background_task.finished"


def test_a_body_larger_than_any_webhook_is_refused_before_the_signature(client, db):
    body = factories.operational_webhook("endpoint.disabled", padding="x" * 20_000)
    answer = post(client, body)
    assert answer.status_code == 413
    assert health(db) is None


def test_deleted_forgets_the_endpoint(client, db):
    assert post(client, factories.operational_webhook("endpoint.disabled")).status_code == 200
    deleted = factories.operational_webhook("endpoint.deleted")
    assert post(client, deleted, msg_id="msg_2op6").status_code == 200
    assert health(db) is None


def test_no_url_or_payload_is_kept(client, db):
    # Svix's webhooks name no URL; a body that did (a future field) is still not stored
    body = factories.operational_webhook(
        "endpoint.disabled", url="https://user:pw@customer.example/hook"
    )
    assert post(client, body).status_code == 200
    stored = [
        s.to_dict()
        for c in (ENDPOINT_HEALTH, OPERATIONAL_WEBHOOKS)
        for s in db.collection(c).stream()
    ]
    assert stored and "customer.example" not in repr(stored)


def test_without_a_secret_it_answers_503_so_svix_retries(db, monkeypatch):
    monkeypatch.delenv("SVIX_OPERATIONAL_WEBHOOK_SECRET", raising=False)
    bootstrap.reset()
    app = functions_framework.create_app(
        target="operational_webhooks", source=str(MAIN), signature_type="http"
    )
    try:
        answer = post(app.test_client(), factories.operational_webhook("endpoint.disabled"))
    finally:
        bootstrap.reset()
    assert answer.status_code == 503
    assert health(db) is None


def test_a_recovery_started_is_recorded_and_a_failure_webhook_after_it_wins(client, db):
    """``recover`` records the recovery on the endpoint (recovering, its task, since); a
    failure webhook Svix sends after it puts the endpoint back to failing, with that cause."""
    failing = factories.operational_webhook("message.attempt.failing", status=503)
    assert post(client, failing).status_code == 200
    log = FirestoreEndpointHealth(db, ttl_days=30)
    now = datetime.now(UTC)
    since = now - timedelta(days=2)
    recovery = RecoveryStarted(at=now, task_id="qtask_31", since=since)
    recorded = log.started(factories.APP_ID, factories.ENDPOINT_ID, recovery)
    assert recorded is not None and recorded.state.value == "recovering"
    saved = health(db)
    assert (saved["state"], saved["since"], saved["changed_by"]) == (
        "recovering",
        now,
        "notifier.recover",
    )
    assert saved["recovery"] == {"at": now, "task_id": "qtask_31", "since": since}
    assert saved["expires_at"] == now + RETRY_SPAN + timedelta(days=30)
    [shown] = endpoint_report(log, now=now).endpoints
    assert shown.recovery == recovery
    assert endpoint_report(log, now=now + RETRY_SPAN).endpoints == []  # settled: healthy

    again = factories.operational_webhook("message.attempt.failing", status=502)
    assert post(client, again, msg_id="msg_2op2").status_code == 200
    saved = health(db)
    assert (saved["state"], saved["changed_by"], saved["last_status_code"]) == (
        "failing",
        "message.attempt.failing",
        502,
    )
    assert saved["recovery"] is None and "expires_at" not in saved
    assert [h.state.value for h in endpoint_report(log, now=now + RETRY_SPAN).endpoints] == [
        "failing"
    ]


def test_a_failure_webhook_applied_before_the_recovery_is_recorded_still_wins(client, db):
    """recover asked Svix, a failure webhook came in, then recover records: it stays failing."""
    assert post(client, factories.operational_webhook("message.attempt.failing")).status_code == 200
    asked_at = datetime.now(UTC)
    exhausted = factories.operational_webhook("message.attempt.exhausted", status=500)
    assert post(client, exhausted, msg_id="msg_2op2").status_code == 200
    log = FirestoreEndpointHealth(db, ttl_days=30)
    recovery = RecoveryStarted(at=asked_at, task_id="qtask_32", since=asked_at)
    recorded = log.started(factories.APP_ID, factories.ENDPOINT_ID, recovery)
    assert recorded is not None and recorded.state.value == "failing"
    assert health(db)["state"] == "failing" and health(db)["recovery"] is None
    assert log.started(factories.APP_ID, "ep_unknown", recovery) is None  # no record: none made
