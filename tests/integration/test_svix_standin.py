"""The Svix stand-in, driven by the real svix SDK: if these pass, the notifier's integration
tests exercise the same status codes, shapes, retries and idempotency as against real Svix."""

import json
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from svix.api import (
    ApplicationIn,
    AppPortalAccessIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageOut,
    Svix,
    SvixOptions,
)
from svix.exceptions import HttpError, HTTPValidationError

from devstack.svix_standin import SvixStandin

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "testsk_standin"
FORBIDDEN_TOKEN = "testsk_forbidden"


@pytest.fixture
def standin():
    with SvixStandin(TOKEN, forbidden_tokens=[FORBIDDEN_TOKEN]) as server:
        yield server


def make_sdk(standin, token=TOKEN, **options):
    options = {"retry_schedule": [0.01, 0.01], "timeout": 2, **options}
    return Svix(token, SvixOptions(server_url=standin.url, **options))


@pytest.fixture
def http(standin):
    """A raw client, for what the SDK hides (headers) and for the control API."""
    with httpx.Client(base_url=standin.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


@pytest.fixture
def sdk(standin):
    return make_sdk(standin)


@pytest.fixture
def app(sdk):
    return sdk.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))


def message(event_id="evt-1", **payload):
    return MessageIn(event_type="order.created", event_id=event_id, payload=payload or {"n": 1})


def create(sdk, app, msg=None, key=None, **options):
    options = MessageCreateOptions(idempotency_key=key, **options)
    return sdk.message.create(app.id, msg or message(), options)


# --- applications ----------------------------------------------------------------------------


def test_get_or_create_twice_returns_the_same_app(sdk, standin):
    first = sdk.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))
    second = sdk.application.get_or_create(ApplicationIn(name="Other name", uid="acme"))

    assert second.id == first.id
    assert first.id.startswith("app_") and len(first.id) == 31
    assert (second.uid, second.name, second.metadata) == ("acme", "Acme", {})
    assert [c["status"] for c in standin.calls()] == [201, 200]
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


def test_message_create_returns_message_out(sdk, standin, app):
    out = create(sdk, app, message("evt-1", order=7))
    with_content = create(sdk, app, message("evt-2", order=8), with_content=True)

    assert isinstance(out, MessageOut)
    assert out.id.startswith("msg_") and len(out.id) == 31
    assert (out.event_id, out.event_type) == ("evt-1", "order.created")
    assert out.payload == {}  # the v2 SDK sends with_content=false by default
    assert with_content.payload == {"order": 8}
    stored = standin.messages()[0]
    assert (stored["id"], stored["app_uid"], stored["payload"]) == (out.id, "acme", {"order": 7})


def test_duplicate_event_id_conflicts(sdk, standin, app):
    create(sdk, app)
    with pytest.raises(HttpError) as err:
        create(sdk, app)

    assert (err.value.status_code, err.value.code) == (409, "conflict")
    assert len(standin.messages()) == 1


def test_same_idempotency_key_replays_and_stores_once(sdk, standin, app):
    first = create(sdk, app, key="key-1")
    second = create(sdk, app, key="key-1")

    assert second.id == first.id
    assert [m["idempotency_key"] for m in standin.messages()] == ["key-1"]
    assert [(c["status"], c["replayed"]) for c in standin.calls()[-2:]] == [
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


def test_payload_over_one_mib_is_413(sdk, standin, app):
    with pytest.raises(HttpError) as err:
        create(sdk, app, message(blob="x" * (1024 * 1024)))

    assert (err.value.status_code, err.value.code) == (413, "payload_too_large")
    assert standin.messages() == []


def test_bad_event_type_is_422(sdk, app):
    with pytest.raises(HTTPValidationError) as err:
        create(sdk, app, MessageIn(event_type="order created!", payload={}))

    assert err.value.status_code == 422
    # validator_derive names the Rust field; id types report under "__all__" (core/types/mod.rs)
    assert err.value.detail[0].loc == ["body", "event_type", "__all__"]


def test_concurrent_duplicates_store_exactly_once(sdk, standin, app):
    barrier = threading.Barrier(16)

    def send(_):
        barrier.wait()
        return create(sdk, app, key="same-key").id

    with ThreadPoolExecutor(16) as pool:
        ids = set(pool.map(send, range(16)))

    assert len(ids) == 1
    assert [m["id"] for m in standin.messages()] == list(ids)
    assert sum(not c["replayed"] for c in standin.calls() if c["op"] == "msg.create") == 1


# --- auth and portal -------------------------------------------------------------------------


@pytest.mark.parametrize(("token", "status"), [("testsk_wrong", 401), (FORBIDDEN_TOKEN, 403)])
def test_bad_tokens_are_rejected(standin, token, status):
    with pytest.raises(HttpError) as err:
        make_sdk(standin, token).application.get("acme")

    assert err.value.status_code == status


def test_app_portal_access(sdk, app):
    access = sdk.authentication.app_portal_access("acme", AppPortalAccessIn(expiry=3600))
    with pytest.raises(HttpError) as err:
        sdk.authentication.app_portal_access("nope", AppPortalAccessIn())

    assert access.token.startswith("appsk_")
    assert access.url.endswith(f"/portal/{app.id}#key={access.token}")
    assert err.value.status_code == 404


# --- faults ----------------------------------------------------------------------------------


def test_rate_limit_fault_is_not_retried_by_the_sdk(sdk, standin, app, http):
    standin.set_faults([{"op": "msg.create", "status": 429, "retry_after": 2}])
    with pytest.raises(HttpError) as err:
        create(sdk, app)
    raw = http.post("/api/v1/app/acme/msg", json={"eventType": "order.created", "payload": {}})

    assert (err.value.status_code, err.value.code) == (429, "rate_limited")
    assert (raw.status_code, raw.headers["Retry-After"]) == (429, "2")
    assert [c["status"] for c in standin.calls() if c["op"] == "msg.create"] == [429, 429]
    assert standin.messages() == []


def test_server_errors_are_retried_by_the_sdk(sdk, standin, app):
    standin.set_faults([{"op": "msg.create", "status": 500, "times": 2}])
    out = create(sdk, app)

    calls = [c for c in standin.calls() if c["op"] == "msg.create"]
    assert [(c["status"], c["retry_count"]) for c in calls] == [(500, 0), (500, 1), (202, 2)]
    assert len({c["idempotency_key"] for c in calls}) == 1  # the SDK's auto_ key, reused
    assert [m["id"] for m in standin.messages()] == [out.id]


def test_lost_answer_is_replayed_on_the_sdk_retry(sdk, standin, app):
    standin.set_faults([{"op": "msg.create", "lost": True, "times": 1}])
    out = create(sdk, app)

    calls = [c for c in standin.calls() if c["op"] == "msg.create"]
    assert [(c["status"], c["replayed"]) for c in calls] == [("lost", False), (202, True)]
    assert [m["id"] for m in standin.messages()] == [out.id]


def test_lost_answer_is_a_transport_error_without_retries(standin, app):
    standin.set_faults([{"op": "msg.create", "lost": True}])
    with pytest.raises(httpx.RemoteProtocolError):
        create(make_sdk(standin, retry_schedule=[]), app)

    assert len(standin.messages()) == 1  # stored, only the answer was lost


def test_delay_beyond_timeout_times_out_and_server_survives(sdk, standin, app):
    standin.set_faults([{"op": "msg.create", "delay": 0.5, "times": 1}])
    with pytest.raises(httpx.TimeoutException):
        create(make_sdk(standin, retry_schedule=[], timeout=0.1), app)

    assert sdk.application.get("acme").id == app.id


def test_non_json_error_body_surfaces_as_json_decode_error(sdk, standin, app):
    standin.set_faults([{"op": "*", "status": 502, "body": "<html>502 Bad Gateway</html>"}])
    with pytest.raises(json.JSONDecodeError):
        create(sdk, app)

    assert [c["retry_count"] for c in standin.calls() if c["op"] == "msg.create"] == [0, 1, 2]


def test_rate_rules_fire_with_a_seeded_probability(standin, http):
    standin.set_faults([{"op": "app.get", "status": 503, "rate": 0.5}])
    statuses = [http.get("/api/v1/app/x").status_code for _ in range(40)]

    assert set(statuses) == {503, 404}


# --- control API and CLI ---------------------------------------------------------------------


def test_control_api_over_http(standin, sdk, app, http):
    bad = http.post("/_standin/faults", json=[{"op": "msg.create", "stauts": 500}])
    ok = http.post("/_standin/faults", json=[{"op": "app.get", "status": 503}])
    faulted = http.get("/api/v1/app/acme")
    http.delete("/_standin/faults")
    create(sdk, app)

    assert (bad.status_code, ok.status_code, faulted.status_code) == (400, 200, 503)
    assert len(http.get("/_standin/messages").json()) == 1
    assert http.get("/_standin/apps").json()[0]["uid"] == "acme"
    http.post("/_standin/reset")
    assert http.get("/_standin/calls").json() == []
    assert standin.apps() == standin.messages() == []


def test_cli_serves_until_sigterm():
    env = {**os.environ, "SVIX_STANDIN_TOKEN": TOKEN}
    cmd = [sys.executable, "-m", "devstack.svix_standin", "--port", "0", "--latency", "0.01"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        url = line.removeprefix("svix-standin listening on ")
        status = httpx.get(f"{url}/api/v1/app/x", headers={"Authorization": f"Bearer {TOKEN}"})
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=5)
    finally:
        proc.kill()
        proc.communicate()

    assert line.startswith("svix-standin listening on http://127.0.0.1:")
    assert status.status_code == 404
    assert returncode == 0
