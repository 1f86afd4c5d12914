"""The outcome table end to end: Eventarc-style deliveries -> functions-framework -> Firestore
emulator -> Svix twin. A 200 acknowledges; anything else makes Pub/Sub deliver again."""

from __future__ import annotations

import base64
import itertools
import json
import time

import httpx
import pytest
from svix.api import ApplicationIn, MessageIn, Svix, SvixOptions

from devstack.cloudevents import pubsub_request
from devstack.function_server import FunctionServer
from notifier.adapters.firestore.keys import document_key
from tests import factories
from tests.conftest import TOKEN
from tests.e2e.conftest import Deliverer, function_env, log_lines


def notification(db, event_id):
    return db.collection("notifications").document(document_key(event_id)).get().to_dict()


def test_a_new_event_is_sent_and_recorded(deliver, db, svix):
    event = factories.event(project="initech", type="subscription.created")
    assert deliver(event) == 200
    [message] = svix.messages()
    assert (message["app_uid"], message["eventType"], message["eventId"]) == (
        "initech",
        "subscription.created",
        event["id"],
    )
    assert message["payload"] == event
    saved = notification(db, event["id"])
    assert (saved["status"], saved["svix_message_id"], saved["attempts"]) == (
        "sent",
        message["id"],
        1,
    )
    app = db.collection("applications").document("initech").get().to_dict()
    assert app["svix_app_id"] == message["app_id"]


def test_redeliveries_are_acknowledged_without_calling_svix(deliver, db, svix):
    event = factories.event()
    statuses = [deliver(event, message_id="same") for _ in range(3)]
    statuses.append(deliver(event))  # the platform published it twice
    assert statuses == [200, 200, 200, 200]
    assert len(svix.messages()) == 1
    assert [c["op"] for c in svix.calls()].count("msg.create") == 1


def test_conflict_at_svix_is_recorded_as_sent(deliver, db, svix):
    event = factories.event()
    sdk = Svix(TOKEN, SvixOptions(server_url=svix.url))
    sdk.application.get_or_create(ApplicationIn(uid="acme", name="acme"))
    existing = sdk.message.create(
        "acme", MessageIn(event_type=event["type"], event_id=event["id"], payload=event)
    )
    assert deliver(event) == 200
    saved = notification(db, event["id"])
    assert (saved["status"], saved["svix_status"], saved["svix_message_id"]) == (
        "sent",
        409,
        existing.id,
    )
    assert len(svix.messages()) == 1


def test_rate_limit_is_waited_out_in_process(deliver, db, svix):
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 1, "times": 2}])
    event = factories.event()
    assert deliver(event) == 200
    creates = [c for c in svix.calls() if c["op"] == "msg.create"]
    assert [c["status"] for c in creates] == [429, 429, 202]
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(creates)]
    assert all(gap >= 0.95 for gap in gaps), gaps  # waited as told, did not hammer
    assert notification(db, event["id"])["status"] == "sent"


def test_rate_limit_beyond_the_budget_is_left_to_pubsub_then_sent(deliver, db, svix):
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 4}])  # budget: 3 s
    event = factories.event()
    assert deliver(event, message_id="m") == 503
    saved = notification(db, event["id"])
    assert (saved["status"], saved["last_error"][:16]) == ("pending", "rate_limited 429")
    svix.clear_faults()
    assert deliver(event, message_id="m") == 503  # too soon: Svix said to come back in 4 s
    assert [c["op"] for c in svix.calls()].count("msg.create") == 1
    time.sleep(4)
    assert deliver(event, message_id="m") == 200  # Pub/Sub's redelivery, after Retry-After
    saved = notification(db, event["id"])
    assert (saved["status"], saved["attempts"]) == ("sent", 2)
    assert len(svix.messages()) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 500}, "svix_unavailable 500"),
        ({"status": 503}, "svix_unavailable 503"),
        ({"delay": 2.5}, "svix_unavailable: timeout"),
        ({"status": 502, "body": "<html>Bad gateway</html>"}, "svix_unavailable 502"),
    ],
)
def test_svix_outages_stay_pending_and_are_redelivered(deliver, db, svix, fault, error):
    svix.set_faults([{"op": "msg.create", **fault}])
    event = factories.event()
    assert deliver(event) == 503
    saved = notification(db, event["id"])
    assert saved["status"] == "pending"
    assert saved["last_error"].startswith(error)
    svix.clear_faults()
    assert deliver(event) == 200
    assert notification(db, event["id"])["status"] == "sent"
    # A slow answer may still land after this test: count this event's messages only.
    assert [m["eventId"] for m in svix.messages()].count(event["id"]) == 1


def test_an_answer_lost_after_svix_accepted_is_not_sent_twice(deliver, db, svix):
    svix.set_faults([{"op": "msg.create", "lost": True, "times": 1}])
    event = factories.event()
    assert deliver(event) == 200
    assert len(svix.messages()) == 1
    assert notification(db, event["id"])["status"] == "sent"


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_permanent_refusals_are_recorded_failed_and_acknowledged(deliver, db, svix, status):
    svix.set_faults([{"op": "msg.create", "status": status, "times": 1}])
    event = factories.event()
    assert deliver(event) == 200
    saved = notification(db, event["id"])
    assert saved["status"] == "failed"
    assert saved["last_error"].startswith(f"svix_rejected {status}")
    assert "payload" in saved  # kept so that an operator can replay it
    assert deliver(event) == 200  # and a redelivery does not try again
    assert [c["op"] for c in svix.calls()].count("msg.create") == 1


def test_bad_credentials_stay_pending_and_are_logged_as_errors(
    firestore_emulator, svix_server, db, logs_dir
):
    svix_server.reset()
    env = function_env(firestore_emulator, svix_server, SVIX_API_KEY="testsk_revoked")
    log = logs_dir / "function-bad-token.log"
    with FunctionServer("on_event", env, log) as server:
        deliver = Deliverer(server.url)
        event = factories.event()
        assert deliver(event) == 503
    saved = notification(db, event["id"])
    assert (saved["status"], saved["last_error"][:19]) == ("pending", "bad_credentials 401")
    [line] = [e for e in log_lines(log) if e.get("event_id") == event["id"]]
    assert (line["severity"], line["outcome"], line["svix_status"]) == ("ERROR", "retried", 401)
    assert "testsk_revoked" not in log.read_text()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "no_data"),
        (b"", "no_data"),
        (b"\xff\xfe not utf-8", "not_utf8"),
        (b"{not json", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b"[" * 50_000, "too_deep"),
    ],
)
def test_undecodable_messages_are_kept_and_acknowledged(deliver, db, svix, data, reason):
    assert deliver(data, message_id=f"bad-{reason}") == 200
    saved = db.collection("rejected").document(document_key(f"pubsub-bad-{reason}")).get().to_dict()
    assert saved["reason"] == reason
    if data is None:  # nothing to keep but the envelope itself (attributes, ids)
        assert json.loads(saved["raw"])["message"]["messageId"] == "bad-no_data"
    else:
        assert saved["raw_size"] == len(data)
    assert svix.calls() == []


def test_schema_invalid_events_are_rejected_with_their_errors(deliver, db, svix):
    event = factories.event(time="not a time")
    del event["version"]
    assert deliver(event, message_id="invalid-1") == 200
    saved = db.collection("rejected").document(document_key("pubsub-invalid-1")).get().to_dict()
    assert saved["reason"] == "schema_invalid"
    assert [e.split(":")[0] for e in saved["errors"]] == ["/", "/time"]
    assert json.loads(saved["raw"]) == event
    assert svix.calls() == []
    assert not db.collection("notifications").document(document_key(event["id"])).get().exists


def test_not_base64_data_is_rejected(function, db, svix):
    headers, body = pubsub_request(b"x", "b64-1")
    envelope = json.loads(body)
    envelope["message"]["data"] = "%%% not base64 %%%"
    status = httpx.post(function.url, headers=headers, content=json.dumps(envelope)).status_code
    assert status == 200
    saved = db.collection("rejected").document(document_key("pubsub-b64-1")).get().to_dict()
    assert (saved["reason"], saved["raw"]) == ("not_base64", b"%%% not base64 %%%")


def test_logs_are_structured_and_carry_no_payload_or_secret(function, deliver, logs_dir):
    event = factories.event()
    assert deliver(event) == 200
    assert deliver(base64.b64encode(b"garbage")) == 200
    text = (logs_dir / "function.log").read_text()
    for secret in [TOKEN, *factories.PII.values()]:
        assert secret not in text
    [line] = [e for e in log_lines(logs_dir / "function.log") if e.get("event_id") == event["id"]]
    assert line["severity"] == "INFO" and line["outcome"] == "sent"
    for field in ("message", "project", "event_type", "attempts", "svix_status", "duration_ms"):
        assert field in line
