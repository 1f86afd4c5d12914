"""The Svix twin, driven by the real svix SDK: if these pass, the notifier's integration
tests exercise the same status codes, shapes, retries and idempotency as against real Svix."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from svix.api import (
    ApplicationIn,
    AppPortalAccessIn,
    EndpointIn,
    EventTypeIn,
    EventTypeListOptions,
    EventTypeUpsertIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageOut,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.webhooks import Webhook, WebhookVerificationError

from devstack.svix_twin.server import SvixTwin

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "testsk_twin"
FORBIDDEN_TOKEN = "testsk_forbidden"


@pytest.fixture
def twin():
    with SvixTwin(TOKEN, forbidden_tokens=[FORBIDDEN_TOKEN]) as server:
        yield server


def make_sdk(twin, token=TOKEN, **options):
    options = {"retry_schedule": [0.01, 0.01], "timeout": 2, **options}
    return Svix(token, SvixOptions(server_url=twin.url, **options))


@pytest.fixture
def http(twin):
    """A raw client, for what the SDK hides (headers) and for the control API."""
    with httpx.Client(base_url=twin.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def sdk(twin):
    return make_sdk(twin)


@pytest.fixture
def app(sdk):
    return sdk.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))


def message(event_id="evt-1", **payload):
    return MessageIn(event_type="order.created", event_id=event_id, payload=payload or {"n": 1})


def create(sdk, app, msg=None, key=None, **options):
    options = MessageCreateOptions(idempotency_key=key, **options)
    return sdk.message.create(app.id, msg or message(), options)


# --- applications ----------------------------------------------------------------------------


def test_get_or_create_twice_returns_the_same_app(sdk, twin):
    first = sdk.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))
    second = sdk.application.get_or_create(ApplicationIn(name="Other name", uid="acme"))

    assert second.id == first.id
    assert first.id.startswith("app_") and len(first.id) == 31
    assert (second.uid, second.name, second.metadata) == ("acme", "Acme", {})
    assert [c["status"] for c in twin.calls()] == [201, 200]
    assert sdk.application.get("acme").id == first.id


def test_create_on_existing_uid_conflicts(sdk, app):
    with pytest.raises(HttpError) as err:
        sdk.application.create(ApplicationIn(name="Acme", uid="acme"))

    assert (err.value.status_code, err.value.code) == (409, "conflict")


def test_app_validation_and_unknown_app(sdk):
    with pytest.raises(HTTPValidationError) as err:
        sdk.application.create(ApplicationIn(name="", uid="not a uid!"))
    with pytest.raises(HttpError) as missing:
        sdk.application.get("nope")

    assert err.value.status_code == 422
    assert sorted(e.loc[1] for e in err.value.detail) == ["name", "uid"]
    assert (missing.value.status_code, missing.value.code) == (404, "not_found")


# --- messages --------------------------------------------------------------------------------


def test_message_create_returns_message_out(sdk, twin, app):
    out = create(sdk, app, message("evt-1", order=7))
    with_content = create(sdk, app, message("evt-2", order=8), with_content=True)

    assert isinstance(out, MessageOut)
    assert out.id.startswith("msg_") and len(out.id) == 31
    assert (out.event_id, out.event_type) == ("evt-1", "order.created")
    assert out.payload == {}  # the v2 SDK sends with_content=false by default
    assert with_content.payload == {"order": 8}
    stored = twin.messages()[0]
    assert (stored["id"], stored["app_uid"], stored["payload"]) == (out.id, "acme", {"order": 7})


def test_duplicate_event_id_conflicts(sdk, twin, app):
    create(sdk, app)
    with pytest.raises(HttpError) as err:
        create(sdk, app)

    assert (err.value.status_code, err.value.code) == (409, "conflict")
    assert len(twin.messages()) == 1


def test_same_idempotency_key_replays_and_stores_once(sdk, twin, app):
    first = create(sdk, app, key="key-1")
    second = create(sdk, app, key="key-1")

    assert second.id == first.id
    assert [m["idempotency_key"] for m in twin.messages()] == ["key-1"]
    assert [(c["status"], c["replayed"]) for c in twin.calls()[-2:]] == [
        (202, False),
        (202, True),
    ]


def test_message_get_by_id_or_event_id(sdk, app):
    out = create(sdk, app, message("evt-9", order=9))
    by_event_id = sdk.message.get("acme", "evt-9", MessageGetOptions(with_content=True))
    with pytest.raises(HttpError) as err:
        sdk.message.get(app.id, "evt-unknown")

    assert by_event_id.id == out.id
    assert by_event_id.payload == {"order": 9}
    assert sdk.message.get(app.id, out.id).payload == {}  # with_content=false again
    assert err.value.status_code == 404


def test_message_for_unknown_app_is_404(sdk):
    with pytest.raises(HttpError) as err:
        sdk.message.create("nope", message())

    assert err.value.status_code == 404


def test_payload_over_one_mib_is_413(sdk, twin, app):
    with pytest.raises(HttpError) as err:
        create(sdk, app, message(blob="x" * (1024 * 1024)))

    assert (err.value.status_code, err.value.code) == (413, "payload_too_large")
    assert twin.messages() == []


def test_bad_event_type_is_422(sdk, app):
    with pytest.raises(HTTPValidationError) as err:
        create(sdk, app, MessageIn(event_type="order created!", payload={}))

    assert err.value.status_code == 422
    # validator_derive names the Rust field; id types report under "__all__" (core/types/mod.rs)
    assert err.value.detail[0].loc == ["body", "event_type", "__all__"]


def test_concurrent_duplicates_store_exactly_once(sdk, twin, app):
    barrier = threading.Barrier(16)

    def send(_):
        barrier.wait()
        return create(sdk, app, key="same-key").id

    with ThreadPoolExecutor(16) as pool:
        ids = set(pool.map(send, range(16)))

    assert len(ids) == 1
    assert [m["id"] for m in twin.messages()] == list(ids)
    assert sum(not c["replayed"] for c in twin.calls() if c["op"] == "msg.create") == 1


# --- auth and portal -------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "status"), [("testsk_wrong", 401), (FORBIDDEN_TOKEN, 403)])
def test_bad_tokens_are_rejected(twin, token, status):
    with pytest.raises(HttpError) as err:
        make_sdk(twin, token).application.get("acme")

    assert err.value.status_code == status


def test_app_portal_access(sdk, app):
    access = sdk.authentication.app_portal_access("acme", AppPortalAccessIn(expiry=3600))
    with pytest.raises(HttpError) as err:
        sdk.authentication.app_portal_access("nope", AppPortalAccessIn())

    assert access.token.startswith("appsk_")
    assert access.url.endswith(f"/portal/{app.id}#key={access.token}")
    assert err.value.status_code == 404


# --- faults ----------------------------------------------------------------------------------


def test_rate_limit_fault_is_not_retried_by_the_sdk(sdk, twin, app, http):
    twin.set_faults([{"op": "msg.create", "status": 429, "retry_after": 2}])
    with pytest.raises(HttpError) as err:
        create(sdk, app)
    raw = http.post("/api/v1/app/acme/msg", json={"eventType": "order.created", "payload": {}})

    assert (err.value.status_code, err.value.code) == (429, "rate_limited")
    assert (raw.status_code, raw.headers["Retry-After"]) == (429, "2")
    assert [c["status"] for c in twin.calls() if c["op"] == "msg.create"] == [429, 429]
    assert twin.messages() == []


def test_server_errors_are_retried_by_the_sdk(sdk, twin, app):
    twin.set_faults([{"op": "msg.create", "status": 500, "times": 2}])
    out = create(sdk, app)

    calls = [c for c in twin.calls() if c["op"] == "msg.create"]
    assert [(c["status"], c["retry_count"]) for c in calls] == [(500, 0), (500, 1), (202, 2)]
    assert len({c["idempotency_key"] for c in calls}) == 1  # the SDK's auto_ key, reused
    assert [m["id"] for m in twin.messages()] == [out.id]


def test_lost_answer_is_replayed_on_the_sdk_retry(sdk, twin, app):
    twin.set_faults([{"op": "msg.create", "lost": True, "times": 1}])
    out = create(sdk, app)

    calls = [c for c in twin.calls() if c["op"] == "msg.create"]
    assert [(c["status"], c["replayed"]) for c in calls] == [("lost", False), (202, True)]
    assert [m["id"] for m in twin.messages()] == [out.id]


def test_lost_answer_is_a_transport_error_without_retries(twin, app):
    twin.set_faults([{"op": "msg.create", "lost": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        create(make_sdk(twin, retry_schedule=[]), app)

    assert len(twin.messages()) == 1  # stored, only the answer was lost


def test_delay_beyond_timeout_times_out_and_server_survives(sdk, twin, app):
    twin.set_faults([{"op": "msg.create", "delay": 0.5, "times": 1}])
    with pytest.raises(httpx.TimeoutException):
        create(make_sdk(twin, retry_schedule=[], timeout=0.1), app)

    assert sdk.application.get("acme").id == app.id


def test_non_json_error_body_surfaces_as_json_decode_error(sdk, twin, app):
    twin.set_faults([{"op": "*", "status": 502, "body": "<html>502 Bad Gateway</html>"}])
    with pytest.raises(json.JSONDecodeError):
        create(sdk, app)

    assert [c["retry_count"] for c in twin.calls() if c["op"] == "msg.create"] == [0, 1, 2]


def test_rate_rules_fire_with_a_seeded_probability(twin, http):
    twin.set_faults([{"op": "app.get", "status": 503, "rate": 0.5}])
    statuses = [http.get("/api/v1/app/x").status_code for _ in range(40)]

    assert set(statuses) == {503, 404}


# --- control API and CLI ---------------------------------------------------------------------


def test_control_api_over_http(twin, sdk, app, http):
    bad = http.post("/_twin/faults", json=[{"op": "msg.create", "stauts": 500}])
    ok = http.post("/_twin/faults", json=[{"op": "app.get", "status": 503}])
    faulted = http.get("/api/v1/app/acme")
    http.delete("/_twin/faults")
    create(sdk, app)

    assert (bad.status_code, ok.status_code, faulted.status_code) == (400, 200, 503)
    assert len(http.get("/_twin/messages").json()) == 1
    assert http.get("/_twin/apps").json()[0]["uid"] == "acme"
    http.post("/_twin/reset")
    assert http.get("/_twin/calls").json() == []
    assert twin.apps() == twin.messages() == []


def test_cli_serves_until_sigterm():
    env = {**os.environ, "SVIX_TWIN_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "devstack.svix_twin.server", "--port", "0", "--latency", "0.01"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        url = line.removeprefix("svix-twin listening on ")
        status = httpx.get(f"{url}/api/v1/app/x", headers={"Authorization": f"Bearer {TOKEN}"})
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=5)
    finally:
        proc.kill()
        proc.communicate()

    assert line.startswith("svix-twin listening on http://127.0.0.1:")
    assert status.status_code == 404
    assert returncode == 0


# --- the twin: behaviours copied from svix-server (devstack/SVIX_TWIN.md) --------------------

CONFLICT = {"code": "conflict", "detail": "A conflict has occurred"}


def _concurrently(n, call):
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_concurrent_app_creates_race_and_the_loser_gets_the_generic_conflict(twin, http):
    twin.configure(app_create_race_seconds=0.2)
    answers = _concurrently(
        2,
        lambda _: http.post("/api/v1/app?get_if_exists=true", json={"name": "Acme", "uid": "acme"}),
    )

    assert sorted(a.status_code for a in answers) == [201, 409]
    assert [a.json() for a in answers if a.status_code == 409] == [CONFLICT]
    assert [a["uid"] for a in twin.apps()] == ["acme"]


def test_inline_app_creation_races_the_same_way_and_the_conflict_says_nothing_more(twin, http):
    http.post("/_twin/config", json={"app_create_race_seconds": 0.2}).raise_for_status()
    body = {
        "eventType": "order.created",
        "payload": {},
        "application": {"name": "A", "uid": "acme"},
    }
    answers = _concurrently(
        2, lambda i: http.post("/api/v1/app/acme/msg", json={**body, "eventId": f"evt-{i}"})
    )

    assert sorted(a.status_code for a in answers) == [202, 409]
    assert [a.json() for a in answers if a.status_code == 409] == [CONFLICT]
    assert len(twin.messages()) == 1  # the loser's event is not in Svix


def test_portal_inline_app_races_too(twin, http):
    twin.configure(app_create_race_seconds=0.2)
    body = {"application": {"name": "A", "uid": "acme"}}
    answers = _concurrently(
        2, lambda _: http.post("/api/v1/auth/app-portal-access/acme", json=body)
    )

    assert sorted(a.status_code for a in answers) == [200, 409]


def test_event_id_conflict_has_the_same_body_as_an_app_race(sdk, http, app):
    create(sdk, app)
    again = http.post(
        "/api/v1/app/acme/msg",
        json={"eventType": "order.created", "eventId": "evt-1", "payload": {}},
    )

    assert (again.status_code, again.json()) == (409, CONFLICT)


def test_plain_create_of_an_existing_uid_says_so(http, app):
    answer = http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})

    assert answer.json() == {
        "code": "conflict",
        "detail": "An application with that id or uid already exists",
    }


def test_deleted_app_takes_its_messages_and_frees_its_uid(sdk, twin, http, app):
    create(sdk, app)
    deleted = http.delete("/api/v1/app/acme")
    gone = http.get("/api/v1/app/acme/msg/evt-1")
    missing = http.post("/api/v1/app/acme/msg", json={"eventType": "t", "payload": {}})
    again = sdk.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))

    assert deleted.status_code == 204
    assert (gone.status_code, gone.json()) == (
        404,
        {"code": "not_found", "detail": "Entity not found"},
    )
    assert missing.json() == {"code": "not_found", "detail": "Application not found"}
    assert again.id != app.id
    assert twin.messages() == []


def test_idempotent_replay_within_12_hours_not_after(sdk, twin, app):
    first = create(sdk, app, key="k")
    twin.advance_clock(12 * 3600 - 60)
    replay = create(sdk, app, key="k")
    twin.advance_clock(120)
    with pytest.raises(HttpError) as err:  # the key expired: the request runs, eventId conflicts
        create(sdk, app, key="k")

    assert replay.id == first.id
    assert (err.value.status_code, err.value.code) == (409, "conflict")
    assert [c["replayed"] for c in twin.calls() if c["op"] == "msg.create"] == [
        False,
        True,
        False,
    ]


def test_errors_are_not_replayed_and_free_the_key(http, twin):
    headers = {"idempotency-key": "k"}
    body = {
        "eventType": "order.created",
        "payload": {},
        "application": {"name": "A", "uid": "acme"},
    }
    first = http.post(
        "/api/v1/app/acme/msg", json={"eventType": "order.created", "payload": {}}, headers=headers
    )
    second = http.post("/api/v1/app/acme/msg", json=body, headers=headers)
    third = http.post("/api/v1/app/acme/msg", json=body, headers=headers)

    assert first.status_code == 404
    assert second.status_code == 202  # ran: the 404 was not cached
    assert third.json()["id"] == second.json()["id"]  # the 2xx is


def test_key_is_per_token_key_and_uri(sdk, twin, http, app):
    headers = {"idempotency-key": "k"}
    one = http.post("/api/v1/app/acme/msg", json={"eventType": "t", "payload": {}}, headers=headers)
    other_uri = http.post(
        "/api/v1/app/acme/msg?with_content=false",
        json={"eventType": "t", "payload": {}},
        headers=headers,
    )

    assert one.json()["id"] != other_uri.json()["id"]


def test_in_progress_duplicate_polls_then_gets_the_first_answer(twin, http, app):
    twin.set_faults([{"op": "msg.create", "hold": 1.0, "times": 1}])
    body = {"eventType": "t", "eventId": "e", "payload": {}}
    headers = {"idempotency-key": "k"}
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(
            http.post, "/api/v1/app/acme/msg", json=body, headers=headers, timeout=10
        )
        time.sleep(0.3)
        waiting = pool.submit(
            http.post, "/api/v1/app/acme/msg", json=body, headers=headers, timeout=10
        )
        first, second = slow.result(), waiting.result()

    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert [c["replayed"] for c in twin.calls() if c["op"] == "msg.create"] == [False, True]
    assert len(twin.messages()) == 1


def test_in_progress_duplicate_runs_itself_once_the_5_second_lock_expires(twin, http, app):
    """idempotency.rs: the Start lock lives 5 s; a waiter that finds it gone runs the request."""
    started = threading.Event()

    def slow_first():
        twin.set_faults([{"op": "msg.create", "hold": 6.5, "times": 1}])
        started.set()
        return http.post(
            "/api/v1/app/acme/msg",
            json={"eventType": "t", "eventId": "a", "payload": {}},
            headers={"idempotency-key": "k"},
            timeout=20,
        )

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(slow_first)
        started.wait()
        time.sleep(0.5)
        second = http.post(
            "/api/v1/app/acme/msg",
            json={"eventType": "t", "eventId": "b", "payload": {}},
            headers={"idempotency-key": "k"},
            timeout=20,
        )
        first = slow.result()

    assert second.status_code == 202 and first.status_code == 202
    assert second.json()["id"] != first.json()["id"]  # executed twice: the key did not protect
    assert sorted(m["eventId"] for m in twin.messages()) == ["a", "b"]


def test_in_progress_duplicate_gets_an_empty_500_when_another_took_the_lock(twin):
    """idempotency.rs: after lock_loop, failing set_if_not_exists is a bare 500, empty body."""
    idem = twin._idempotency
    key = idem.key("Bearer x", "k", "/u")
    assert idem._set_if_not_exists(key)
    # the lock is held past the loop (re-taken by a third request each time it expires)
    holder_stop = threading.Event()

    def hold():
        while not holder_stop.is_set():
            idem._set_if_not_exists(key)
            time.sleep(0.01)

    holder = threading.Thread(target=hold)
    with patch_expiry(0.3):
        holder.start()
        try:
            answer, replayed = idem.run(key, lambda: pytest.fail("must not run"))
        finally:
            holder_stop.set()
            holder.join()

    assert (answer.status, answer.body, replayed) == (500, b"", False)


@contextlib.contextmanager
def patch_expiry(seconds):
    from devstack.svix_twin import idempotency

    old = idempotency.EXPIRY_STARTING
    idempotency.EXPIRY_STARTING = seconds
    try:
        yield
    finally:
        idempotency.EXPIRY_STARTING = old


def test_event_id_is_unique_for_24_hours_only(sdk, twin, app):
    first = create(sdk, app)
    twin.advance_clock(24 * 3600 - 60)
    with pytest.raises(HttpError) as err:
        create(sdk, app)
    twin.advance_clock(120)
    second = create(sdk, app)
    found = sdk.message.get("acme", "evt-1")

    assert err.value.status_code == 409
    assert second.id != first.id
    assert found.id == second.id
    assert [m["eventId"] for m in twin.messages()] == ["evt-1", "evt-1"]


def test_clock_over_the_control_api(twin, http):
    before = twin.clock.utcnow()
    answer = http.post("/_twin/clock", json={"advance_seconds": 3600})
    bad = http.post("/_twin/clock", json={"advance_seconds": -1})

    assert answer.status_code == 200
    assert (twin.clock.utcnow() - before).total_seconds() >= 3600
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"name": "A", "uid": "app_x"}, ["body", "uid", "__all__"], "value_error"),
        ({"name": "A", "uid": "a" * 257}, ["body", "uid", "__all__"], "value_error"),
        ({"name": "A", "uid": "a b"}, ["body", "uid", "__all__"], "value_error"),
        ({"name": ""}, ["body", "name"], "value_error"),
        ({"uid": "x"}, ["body", "", ""], "value_error.jsondecode"),
    ],
)
def test_app_identifier_rules(http, body, loc, type_):
    answer = http.post("/api/v1/app", json=body)

    assert answer.status_code == 422
    assert [(d["loc"], d["type"]) for d in answer.json()["detail"]] == [(loc, type_)]


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        (
            {"eventType": "t", "eventId": "msg_1", "payload": {}},
            ["body", "eventId", "__all__"],
            "value_error",
        ),
        ({"eventType": "t" * 257, "payload": {}}, ["body", "event_type", "__all__"], "value_error"),
        ({"eventType": "t", "payload": []}, ["body", "payload"], "value_error"),
        (
            {"eventType": "t", "payload": {}, "application": {"name": "A", "uid": "other"}},
            ["body", "application", "uid"],
            "application_uid_mismatch",
        ),
        (
            {"eventType": "t", "payload": {}, "application": {"name": "A"}},
            ["body", "application", "uid"],
            "application_uid_missing",
        ),
    ],
)
def test_message_identifier_rules(http, body, loc, type_):
    answer = http.post("/api/v1/app/acme/msg", json=body)

    assert answer.status_code == 422
    assert [(d["loc"], d["type"]) for d in answer.json()["detail"]] == [(loc, type_)]


def test_error_bodies_have_the_real_shapes(twin, http):
    unauthorized = http.get("/api/v1/app/acme", headers={"Authorization": "Bearer nope"})
    twin.set_faults(
        [
            {"op": "app.get", "status": 500, "times": 1},
            {"op": "app.get", "status": 429, "retry_after": 1, "times": 1},
            {"op": "app.get", "status": 422, "times": 1},
            {"op": "app.get", "status": 413, "times": 1},
        ]
    )
    injected = [http.get("/api/v1/app/acme") for _ in range(4)]

    assert unauthorized.json() == {"code": "authentication_failed", "detail": "Invalid token"}
    assert injected[0].json() == {}
    assert injected[1].json()["code"] == "rate_limited"
    assert set(injected[2].json()["detail"][0]) == {"loc", "msg", "type"}
    assert injected[3].json() == {
        "code": "payload_too_large",
        "detail": "Request payload is too large.",
    }


def test_sdk_reads_the_injected_422_reason(sdk, twin, app):
    twin.set_faults([{"op": "msg.create", "status": 422}])
    with pytest.raises(HTTPValidationError) as err:
        create(sdk, app)

    assert err.value.detail[0].msg


# --- endpoints and deliveries ----------------------------------------------------------------


class Receiver:
    """A customer's endpoint on loopback: answers the next statuses in order, then 204."""

    def __init__(self, statuses=()):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses)
        self.received = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_endpoint_crud_and_secret(sdk, http, app):
    sdk.event_type.create(EventTypeIn(name="order.created", description="An order"))
    created = sdk.endpoint.create(
        "acme", EndpointIn(url="http://127.0.0.1:1/h", uid="shop", event_types=["order.created"])
    )
    fetched = sdk.endpoint.get("acme", "shop")
    secret = sdk.endpoint.get_secret("acme", "shop")
    listed = sdk.endpoint.list("acme")
    unknown_type = http.post(
        "/api/v1/app/acme/endpoint", json={"url": "http://x/", "filterTypes": ["nope"]}
    )
    duplicate_uid = http.post("/api/v1/app/acme/endpoint", json={"url": "http://x/", "uid": "shop"})
    updated = http.put(
        f"/api/v1/app/acme/endpoint/{created.id}",
        json={"url": "http://127.0.0.1:2/h", "disabled": True},
    )
    uid_gone = http.get("/api/v1/app/acme/endpoint/shop")  # PUT replaces: no uid in the body
    deleted = http.delete(f"/api/v1/app/acme/endpoint/{created.id}")

    assert created.id.startswith("ep_") and fetched.id == created.id
    assert fetched.event_types == ["order.created"]
    assert secret.key.startswith("whsec_")
    assert [e.id for e in listed.data] == [created.id] and listed.done
    assert unknown_type.status_code == 422
    assert unknown_type.json()["detail"][0]["msg"] == "The following event types don't exist: nope"
    assert (duplicate_uid.status_code, duplicate_uid.json()) == (409, CONFLICT)
    assert (updated.status_code, updated.json()["disabled"]) == (200, True)
    assert uid_gone.status_code == 404
    assert deleted.status_code == 204
    assert http.get(f"/api/v1/app/acme/endpoint/{created.id}").status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "most"),
    [
        ("/api/v1/app/acme/msg", {"eventType": "order.created", "payload": {}}, 5),
        ("/api/v1/app/acme/endpoint", {"url": "http://127.0.0.1:1/h"}, 10),
    ],
)
def test_channels_lists_are_bounded_as_message_in_and_endpoint_in_say(http, app, path, body, most):
    """MessageIn takes 1 to 5 channels, EndpointIn 1 to 10; more is a 422 naming the bound."""
    too_many = http.post(path, json={**body, "channels": [f"c{i}" for i in range(most + 1)]})
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == [
        {
            "loc": ["body", "channels"],
            "msg": f"Channels must have at least 1 and at most {most} items, or be set to null.",
            "type": "value_error",
        }
    ]
    assert http.post(path, json={**body, "channels": ["c0"]}).status_code < 300


def test_messages_are_delivered_signed_to_matching_endpoints(sdk, twin, app, receiver):
    sdk.event_type.create(EventTypeIn(name="order.created", description="An order"))
    sdk.event_type.create(EventTypeIn(name="order.deleted", description="Gone"))
    subscribed = sdk.endpoint.create(
        "acme", EndpointIn(url=receiver.url, event_types=["order.created"])
    )
    other = Receiver()
    try:
        sdk.endpoint.create("acme", EndpointIn(url=other.url, event_types=["order.deleted"]))
        sdk.endpoint.create("acme", EndpointIn(url=other.url, disabled=True))
        out = create(sdk, app, message("evt-1", order=7))
        assert twin.wait_for_deliveries(5)
    finally:
        other.close()
    secret = sdk.endpoint.get_secret("acme", subscribed.id).key
    [(headers, body)] = receiver.received

    Webhook(secret).verify(body, headers)  # the SDK's own verifier
    assert json.loads(body) == {"order": 7}
    assert headers["svix-id"] == out.id
    assert headers["user-agent"].startswith("Svix-Webhooks/")
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)
    assert other.received == []
    assert [
        (a["endpoint_id"], a["msg_id"], a["status_code"], a["attempt"]) for a in twin.attempts()
    ] == [(subscribed.id, out.id, 204, 1)]


def test_failed_deliveries_are_retried_on_the_short_schedule(sdk, twin, http, app):
    receiver = Receiver([500, 503])
    try:
        http.post("/_twin/config", json={"retry_schedule": [0.05, 0.05, 0.05]}).raise_for_status()
        sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
        out = create(sdk, app)
        assert twin.wait_for_deliveries(5)
    finally:
        receiver.close()
    attempts = http.get("/_twin/attempts").json()

    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 503), (3, 204)]
    assert {a["msg_id"] for a in attempts} == {out.id}
    assert len({h["svix-id"] for h, _ in receiver.received}) == 1  # the same message each time


def test_deliveries_give_up_after_the_schedule_and_never_leave_loopback(sdk, twin, app):
    receiver = Receiver([500] * 10)
    try:
        twin.configure(retry_schedule=[0.01, 0.01])
        sdk.endpoint.create("acme", EndpointIn(url=receiver.url))
        sdk.endpoint.create("acme", EndpointIn(url="https://example.com/hook"))
        create(sdk, app)
        assert twin.wait_for_deliveries(5)
    finally:
        receiver.close()
    by_url = {}
    for a in twin.attempts():
        by_url.setdefault(a["url"], []).append((a["attempt"], a["status_code"], a["error"]))

    assert by_url[receiver.url] == [(1, 500, None), (2, 500, None), (3, 500, None)]
    assert by_url["https://example.com/hook"] == [(1, None, "blocked")]


# --- event types -----------------------------------------------------------------------------


def test_event_type_lifecycle(sdk, http):
    schemas = {"1": {"type": "object", "properties": {"id": {"type": "string"}}}}
    created = sdk.event_type.create(
        EventTypeIn(name="user.created", description="A user", schemas=schemas, group_name="user")
    )
    with pytest.raises(HttpError) as dup:
        sdk.event_type.create(EventTypeIn(name="user.created", description="Again"))
    upserted = http.put("/api/v1/event-type/user.deleted", json={"description": "Gone"})
    updated = sdk.event_type.upsert(
        "user.created", EventTypeUpsertIn(description="A new user", schemas=schemas)
    )
    archived = http.delete("/api/v1/event-type/user.deleted")
    live = sdk.event_type.list()
    everything = sdk.event_type.list(EventTypeListOptions(include_archived=True, with_content=True))
    restored = sdk.event_type.create(EventTypeIn(name="user.deleted", description="Back"))
    expunged = http.delete("/api/v1/event-type/user.deleted?expunge=true")
    bad_name = http.post("/api/v1/event-type", json={"name": "user created", "description": "x"})

    assert (created.name, created.archived, created.schemas) == ("user.created", False, schemas)
    assert created.group_name == "user"
    assert (dup.value.status_code, dup.value.code) == (409, "event_type_exists")
    assert upserted.status_code == 201
    assert updated.description == "A new user"
    assert archived.status_code == 204
    assert [t.name for t in live.data] == ["user.created"] and live.data[0].schemas is None
    assert [(t.name, t.archived) for t in everything.data] == [
        ("user.created", False),
        ("user.deleted", True),
    ]
    assert everything.data[0].schemas == schemas
    assert (restored.archived, restored.description) == (False, "Back")
    assert expunged.status_code == 204
    assert http.get("/api/v1/event-type/user.deleted").status_code == 404
    assert bad_name.json()["detail"][0]["loc"] == ["body", "name", "__all__"]


def test_archived_event_type_still_accepts_messages_as_the_oss_server_does(sdk, http, app):
    """message.rs::create_message_inner never looks at event types (the spec's 'can not be sent'
    is hosted-only and names no status); an endpoint cannot filter on it (crud.rs)."""
    sdk.event_type.create(EventTypeIn(name="order.created", description="An order"))
    http.delete("/api/v1/event-type/order.created")
    out = create(sdk, app)
    filtered = http.post(
        "/api/v1/app/acme/endpoint", json={"url": "http://x/", "filterTypes": ["order.created"]}
    )

    assert out.event_type == "order.created"
    assert filtered.status_code == 422


def test_app_put_is_an_upsert_and_its_uid_replaces_the_old_one(http, app):
    created = http.put("/api/v1/app/beta", json={"name": "Beta", "uid": "beta"})
    renamed = http.put("/api/v1/app/acme", json={"name": "Acme 2", "uid": "acme-2"})
    taken = http.put("/api/v1/app/acme-2", json={"name": "Acme 3", "uid": "beta"})

    assert (created.status_code, created.json()["uid"]) == (201, "beta")
    assert (renamed.status_code, renamed.json()["id"]) == (200, app.id)
    assert http.get("/api/v1/app/acme").status_code == 404
    assert http.get("/api/v1/app/acme-2").json()["name"] == "Acme 2"
    assert (taken.status_code, taken.json()) == (409, CONFLICT)
