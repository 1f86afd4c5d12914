"""The HTTP functions as a client sees them: functions-framework serving ``notifications`` and
``app_portal`` on the Firestore emulator and the Svix twin.

The contract's promise is checked as a ``curl --fail`` client checks it: every valid event ends
in a 2xx, however often (and however concurrently) it is sent, and Svix holds one message."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.cloudevents import pubsub_request
from devstack.function_server import FunctionServer
from notifier.adapters.firestore.keys import document_key
from tests import factories
from tests.conftest import PROJECT, TOKEN
from tests.e2e.conftest import KEEPALIVE, function_env, log_lines

LIMIT = 100_000  # NOTIFIER_MAX_PAYLOAD_BYTES of these servers: small, so 413 is cheap to reach


@pytest.fixture(scope="module")
def servers(firestore_emulator, svix_server, logs_dir) -> Iterator[dict[str, FunctionServer]]:
    env = function_env(firestore_emulator, svix_server, NOTIFIER_MAX_PAYLOAD_BYTES=str(LIMIT))
    notifications = FunctionServer(
        "notifications", env, logs_dir / "http-notifications.log", signature_type="http"
    )
    portal = FunctionServer("app_portal", env, logs_dir / "http-portal.log", signature_type="http")
    with notifications, portal:
        yield {"notifications": notifications, "app_portal": portal}


@pytest.fixture
def api(servers, db, svix) -> Iterator[httpx.Client]:
    """A client of ``notifications``, with Firestore emptied and the twin reset."""
    url = servers["notifications"].url
    with httpx.Client(base_url=url, timeout=60, limits=KEEPALIVE) as client:
        yield client


@pytest.fixture
def portal(servers, db, svix) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=servers["app_portal"].url, timeout=60, limits=KEEPALIVE) as client:
        yield client


def post(api: httpx.Client, event, **kwargs) -> httpx.Response:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return api.post("/notifications", content=body, **kwargs)


def notification(db, event_id):
    return db.collection("notifications").document(document_key(event_id)).get().to_dict()


def lines(servers, name: str, **match) -> list[dict]:
    entries = log_lines(servers[name].log_path)
    return [e for e in entries if all(e.get(k) == v for k, v in match.items())]


def curl_fail(url: str, body: bytes) -> tuple[int, dict]:
    """``curl --fail``: any non-2xx answer is a failure (exit code 22)."""
    command = ["curl", "--fail", "--silent", "--show-error", "--data-binary", "@-"]
    command += ["-H", "Content-Type: application/json", "-w", "\n%{http_code}", url]
    done = subprocess.run(
        command,
        input=body,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    text, _, status = done.stdout.decode().rpartition("\n")
    return int(status), json.loads(text)


# -- notifications: the happy paths ----------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_a_client_resending_with_curl_fail_always_succeeds_and_svix_has_one_message(
    api, db, svix, servers
):
    event = factories.event(project="initech", type="subscription.created")
    body = json.dumps(event).encode()
    answers = [curl_fail(f"{servers['notifications'].url}/notifications", body) for _ in range(5)]
    [message] = svix.messages()
    assert [status for status, _ in answers] == [201, 200, 200, 200, 200]
    assert answers[0][1] == {
        "event_id": event["id"],
        "status": "sent",
        "svix_message_id": message["id"],
    }
    assert {json.dumps(a, sort_keys=True) for _, a in answers[1:]} == {
        json.dumps(
            {"event_id": event["id"], "status": "duplicate", "svix_message_id": message["id"]},
            sort_keys=True,
        )
    }
    assert (message["app_uid"], message["eventId"], message["payload"]) == (
        "initech",
        event["id"],
        event,
    )
    saved = notification(db, event["id"])
    assert (saved["status"], saved["svix_message_id"]) == ("sent", message["id"])
    assert [c["op"] for c in svix.calls()].count("msg.create") == 1


def test_concurrent_posts_of_one_event_all_succeed_with_one_message(api, db, svix):
    event = factories.event()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(api, event), range(8)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 200: 7}, statuses
    assert {a.json()["svix_message_id"] for a in answers} == {svix.messages()[0]["id"]}
    assert [m["eventId"] for m in svix.messages()] == [event["id"]]
    assert notification(db, event["id"])["status"] == "sent"


def test_the_root_path_is_the_same_endpoint_and_others_are_not_found(api, svix):
    event = factories.event()
    assert api.post("/", content=json.dumps(event)).status_code == 201
    assert post(api, event).status_code == 200
    missing = api.post("/notification", content=json.dumps(event))
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found"})


def test_any_content_type_and_a_chunked_body_are_read(api, svix):
    form, chunked = factories.event(), json.dumps(factories.event()).encode()
    # curl -d sends application/x-www-form-urlencoded: the body is still the event.
    as_form = {"content-type": "application/x-www-form-urlencoded"}
    assert post(api, form, headers=as_form).status_code == 201
    pieces = iter([chunked[:100], chunked[100:]])  # no Content-Length: Transfer-Encoding chunked
    assert api.post("/notifications", content=pieces).status_code == 201
    assert len(svix.messages()) == 2


def test_an_event_published_to_pubsub_and_posted_is_one_notification(api, db, svix, servers):
    event = factories.event()
    headers, body = pubsub_request(json.dumps(event).encode(), "push-1")
    assert post(api, event).status_code == 201
    pushed = api.post(
        "/notifications", content=body, headers={"content-type": headers["content-type"]}
    )
    assert (pushed.status_code, pushed.json()["status"]) == (200, "duplicate")
    assert len(svix.messages()) == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_not_allowed(api, method):
    answer = api.request(method, "/notifications")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


# -- notifications: bad input ----------------------------------------------------------------


def test_a_schema_invalid_event_is_a_400_with_value_free_errors_and_is_kept(api, db, svix):
    event = factories.event(time="last tuesday", data=factories.PII["email"])
    del event["version"]
    first, second = post(api, event), post(api, event)
    assert first.status_code == second.status_code == 400
    answer = first.json()
    assert answer["error"] == "schema_invalid"
    assert answer["errors"] == [
        "/: 'version' is a required property",
        "/data: must be of type object",
        "/time: must be a valid date-time",
    ]
    assert "last tuesday" not in first.text and factories.PII["email"] not in first.text
    assert second.json()["rejected_id"] == answer["rejected_id"]  # the same body, one record
    kept = db.collection("rejected").document(answer["rejected_id"]).get().to_dict()
    assert (kept["reason"], kept["deliveries"]) == ("schema_invalid", 2)
    assert json.loads(kept["raw"]) == event
    assert svix.calls() == []
    assert not db.collection("notifications").document(document_key(event["id"])).get().exists


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"this is not json {", "not_json"),
        (b"", "not_json"),
        (b"[1, 2, 3]", "not_object"),
        (b"\xff\xfe not utf-8", "not_utf8"),
        (json.dumps(factories.event(id="evt_1\n")).encode(), "unsafe_id"),
        (json.dumps(factories.event(project="../x")).encode(), "schema_invalid"),
    ],
)
def test_undecodable_or_unsafe_events_are_a_400_and_kept(api, db, svix, body, reason):
    answer = post(api, body)
    assert answer.status_code == 400
    assert answer.json()["error"] == reason
    kept = db.collection("rejected").document(answer.json()["rejected_id"]).get().to_dict()
    assert (kept["reason"], kept["raw_size"]) == (reason, len(body))
    assert svix.calls() == []


def test_a_body_over_the_limit_is_a_413(api, db, svix, servers):
    padded = factories.event(data={"object": "blob", "pad": "x" * LIMIT})
    answer = post(api, padded)
    assert (answer.status_code, answer.json()["error"]) == (413, "too_large")
    assert not db.collection("notifications").document(document_key(padded["id"])).get().exists
    # Far over: refused on its Content-Length, or by the bounded read when it has none (chunked).
    huge = b"{" + b" " * (5 * LIMIT) + b"}"
    assert post(api, huge).status_code == 413
    assert api.post("/notifications", content=iter([huge[:LIMIT], huge[LIMIT:]])).status_code == 413
    assert svix.calls() == []
    assert list(db.collection("rejected").stream()) == []  # a 413 keeps nothing
    assert lines(servers, "notifications", outcome="rejected", reason="too_large")


# -- notifications: Svix's answers -----------------------------------------------------------


def test_a_rate_limit_beyond_the_budget_is_a_429_with_retry_after(api, db, svix):
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 4}])  # budget: 3 s
    event = factories.event()
    answer = post(api, event)
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "4"
    assert answer.json() == {
        "event_id": event["id"],
        "svix_message_id": None,
        "status": "pending",
        "error": "rate_limited",
        "retry_after": 4,
    }
    assert notification(db, event["id"])["status"] == "pending"
    svix.clear_faults()
    too_soon = post(api, event)  # a client that ignores Retry-After is told to wait again
    assert too_soon.status_code == 503 and 0 < int(too_soon.headers["retry-after"]) <= 4
    assert [c["op"] for c in svix.calls()].count("msg.create") == 1
    time.sleep(float(too_soon.headers["retry-after"]))
    assert post(api, event).status_code == 201  # the client's retry, as told
    assert len(svix.messages()) == 1


def test_svix_down_is_a_503_with_retry_after_then_the_retry_sends(api, db, svix):
    svix.set_faults([{"op": "msg.create", "status": 503}])
    event = factories.event()
    answer = post(api, event)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
    assert answer.json()["error"] == "svix_unavailable"
    svix.clear_faults()
    assert post(api, event).status_code == 201
    assert notification(db, event["id"])["status"] == "sent"


def test_a_claim_held_by_a_stuck_delivery_is_a_503_until_its_lease_ends(api, db, svix):
    event = factories.event()
    lease_end = datetime.now(UTC) + timedelta(seconds=100)
    db.collection("notifications").document(document_key(event["id"])).set(
        {"status": "pending", "attempts": 1, "lease_expires_at": lease_end}
    )
    answer = post(api, event)  # waits the retry budget (3 s here) for the holder to finish
    assert answer.status_code == 503
    assert 90 <= int(answer.headers["retry-after"]) <= 100
    assert answer.json()["error"] == "claim_held"
    assert svix.calls() == []


@pytest.mark.parametrize("status", [400, 422])
def test_an_event_svix_refuses_is_accepted_as_failed_on_every_resend(api, db, svix, status):
    svix.set_faults([{"op": "msg.create", "status": status, "times": 1}])
    event = factories.event()
    answers = [post(api, event) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    assert {a.json()["status"] for a in answers} == {"failed"}
    assert answers[0].json()["error"] == "svix_rejected"
    assert notification(db, event["id"])["status"] == "failed"
    assert [c["op"] for c in svix.calls()].count("msg.create") == 1  # never tried again


def test_bad_credentials_are_a_503_and_an_error_report(
    firestore_emulator, svix_server, db, logs_dir
):
    svix_server.reset()
    env = function_env(firestore_emulator, svix_server, SVIX_API_KEY="testsk_revoked")
    log = logs_dir / "http-bad-token.log"
    event = factories.event()
    with FunctionServer("notifications", env, log, signature_type="http") as server:
        answer = httpx.post(f"{server.url}/notifications", content=json.dumps(event), timeout=60)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "60")
    assert answer.json()["error"] == "bad_credentials"
    [line] = [e for e in log_lines(log) if e.get("event_id") == event["id"]]
    assert (line["severity"], line["outcome"], line["reason"]) == (
        "ERROR",
        "retried",
        "bad_credentials",
    )
    assert line["@type"].endswith("ReportedErrorEvent")
    assert line["serviceContext"]["service"] == "notifier"
    assert line["context"]["reportLocation"]["filePath"] == "notifier/handlers/outcome_log.py"
    assert "testsk_revoked" not in log.read_text()


# -- notifications: a Pub/Sub push subscription pointed at it --------------------------------


def test_a_push_envelope_is_delivered_like_pubsub_does(api, db, svix):
    event = factories.event()
    headers, body = pubsub_request(json.dumps(event).encode(), "push-42")
    plain = {"content-type": headers["content-type"]}  # a push subscription: no ce- headers
    first = api.post("/notifications", content=body, headers=plain)
    again = api.post("/notifications", content=body, headers=plain)
    assert (first.status_code, first.json()["status"]) == (201, "sent")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert notification(db, event["id"])["pubsub_message_id"] == "push-42"
    assert len(svix.messages()) == 1


def test_a_bad_push_message_is_kept_and_acknowledged(api, db, svix):
    _, body = pubsub_request(b"{not json", "push-bad")
    answer = api.post("/notifications", content=body)
    assert (answer.status_code, answer.json()) == (200, {"status": "rejected"})
    kept = db.collection("rejected").document(document_key("pubsub-push-bad")).get().to_dict()
    assert kept["reason"] == "not_json"


def test_a_push_while_svix_is_down_is_a_503_so_pubsub_delivers_again(api, db, svix):
    svix.set_faults([{"op": "msg.create", "status": 500}])
    _, body = pubsub_request(json.dumps(factories.event()).encode(), "push-down")
    answer = api.post("/notifications", content=body)
    assert answer.status_code == 503 and "retry-after" in answer.headers


# -- app_portal ------------------------------------------------------------------------------


def test_a_portal_link_for_a_known_project(api, portal, db, svix, servers):
    assert post(api, factories.event(project="globex")).status_code == 201
    before = datetime.now(UTC)
    by_get = portal.get("/", params={"project": "globex"})
    by_post = portal.post("/", json={"project": "globex"})
    for answer in (by_get, by_post):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["project"] == "globex"
        [app] = [a for a in svix.apps() if a.get("uid") == "globex"]
        assert body["url"].startswith(f"{svix.url}/portal/{app['id']}#key=appsk_")
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        assert timedelta(minutes=59) < expires - before < timedelta(minutes=61)
        assert answer.headers["cache-control"] == "no-store"
    assert [c["status"] for c in svix.calls() if c["op"] == "portal"] == [200, 200]
    log = servers["app_portal"].log_path.read_text()
    assert by_get.json()["url"] not in log and "appsk_" not in log  # the link is a secret


def test_a_portal_link_for_an_unknown_project_is_a_404(portal, svix):
    answer = portal.get("/", params={"project": "nobody"})
    assert (answer.status_code, answer.json()["error"]) == (404, "unknown_project")
    assert svix.calls() == []


def test_portal_links_racing_svix_to_recreate_a_deleted_application_are_both_issued(
    api, portal, db, svix
):
    assert post(api, factories.event(project="reborn")).status_code == 201
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.delete(f"{svix.url}/api/v1/app/reborn", headers=headers).status_code == 204
    svix.configure(app_create_race_seconds=0.3)  # both requests miss the lookup; one loses

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: portal.get("/", params={"project": "reborn"}), "ab"))

    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted(c["status"] for c in svix.calls() if c["op"] == "portal") == [200, 200, 409]
    assert [a["uid"] for a in svix.apps()] == ["reborn"]


@pytest.mark.parametrize(
    ("request_kwargs"),
    [
        {"method": "GET", "url": "/", "params": {"project": "../x"}},
        {"method": "GET", "url": "/", "params": {"project": "a/b"}},
        {"method": "GET", "url": "/"},
        {"method": "POST", "url": "/", "json": {"project": 42}},
        {"method": "POST", "url": "/", "content": b"not json"},
    ],
)
def test_a_portal_request_without_a_valid_project_is_a_400(portal, svix, request_kwargs):
    answer = portal.request(**request_kwargs)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_project")
    assert svix.calls() == []


def test_portal_methods_and_paths(portal):
    answer = portal.put("/", json={"project": "acme"})
    assert (answer.status_code, answer.headers["allow"]) == (405, "GET, POST")
    assert portal.get("/elsewhere", params={"project": "acme"}).status_code == 404


@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [({"status": 503}, 503, "5"), ({"status": 429, "retry_after": 7}, 429, "7")],
)
def test_portal_while_svix_is_down_or_limiting(api, portal, svix, fault, status, retry_after):
    project = f"umbrella-{status}"  # each instance remembers the projects it has recorded
    assert post(api, factories.event(project=project)).status_code == 201
    svix.set_faults([{"op": "portal", **fault}])
    answer = portal.get("/", params={"project": project})
    assert (answer.status_code, answer.headers["retry-after"]) == (status, retry_after)
    assert "url" not in answer.json()


# -- observability ---------------------------------------------------------------------------

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("headers", "span"),
    [
        ({"X-Cloud-Trace-Context": f"{TRACE_ID}/12345;o=1"}, f"{12345:016x}"),
        ({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}, "00f067aa0ba902b7"),
    ],
)
def test_log_lines_carry_the_trace_of_their_request(api, servers, headers, span):
    event, bad = factories.event(), factories.event(time="not a time")
    assert post(api, event, headers=headers).status_code == 201
    assert post(api, bad, headers=headers).status_code == 400
    traced = [
        e
        for e in log_lines(servers["notifications"].log_path)
        if e.get("logging.googleapis.com/trace") == f"projects/{PROJECT}/traces/{TRACE_ID}"
        and e.get("logging.googleapis.com/spanId") == span
    ]
    assert {e.get("outcome") for e in traced} >= {"sent", "rejected"}
    assert [e for e in traced if e.get("outcome") == "sent"][-1]["event_id"] == event["id"]
    untraced = post(api, factories.event())
    assert untraced.status_code == 201
    [line] = lines(servers, "notifications", event_id=untraced.json()["event_id"])
    assert "logging.googleapis.com/trace" not in line


def test_the_event_function_logs_the_cloudevent_trace(function, logs_dir):
    event = factories.event()
    headers, body = pubsub_request(json.dumps(event).encode(), "traced-1")
    headers["ce-traceparent"] = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    assert httpx.post(function.url, headers=headers, content=body).status_code == 200
    # the outcome line (the instance's first drift warning may carry the event's id too)
    [line] = [
        e
        for e in log_lines(logs_dir / "function.log")
        if e.get("event_id") == event["id"] and "outcome" in e
    ]
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
    assert line["logging.googleapis.com/trace_sampled"] is True


def test_http_logs_hold_no_payload_or_secret(api, servers, svix):
    svix.set_faults([{"op": "msg.create", "status": 422, "times": 1}])
    assert post(api, factories.event()).status_code == 202
    assert post(api, factories.event(data=factories.PII["phone"])).status_code == 400
    time.sleep(0.2)  # let the server flush its last line
    text = servers["notifications"].log_path.read_text()
    for secret in [TOKEN, *factories.PII.values()]:
        assert secret not in text
    failed = lines(servers, "notifications", outcome="failed")[-1]
    assert failed["severity"] == "ERROR" and failed["@type"].endswith("ReportedErrorEvent")
    assert failed["message"] == "event failed: svix_rejected 422"
    assert failed["context"]["reportLocation"]["functionName"] == "log_outcome"
