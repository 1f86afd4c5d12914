"""``operational setup`` and ``recover`` through their svix SDK adapter, over HTTP answers shaped
as Svix's OpenAPI spec gives them (codegen/lib-openapi.json: ``/api/v1/operational-webhook/
endpoint[/{endpoint_id}[/secret]]`` with ``OperationalWebhookEndpointIn/UpsertIn/Out``,
``PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}`` with ``EndpointPatch``, and
``POST .../recover`` with ``RecoverIn`` -> 202 ``RecoverOut``; svix-server
endpoint/recovery.rs refuses a ``since`` more than 14 days back with a 422).

This is not the Svix twin: only what the adapter reads and the statuses it must tell apart. The
twin's operational-webhook API is another branch's (i18-twin); these shapes are the spec's.
"""

from __future__ import annotations

import json
import re
import stat
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.endpoint_admin import SvixEndpointAdmin
from notifier.domain.endpoint_health import EVENT_TYPES, RecoveryStarted, State, read
from notifier.domain.errors import SetupError
from notifier.usecases.endpoint_health import recover
from notifier.usecases.operational_setup import ENDPOINT_UID, setup
from tests import factories, fakes

TOKEN = "testsk_operational-setup.secret-token-77"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://europe-west1-p.cloudfunctions.net/notifier-operational"
STAMP = "2026-11-30T10:00:00Z"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Server:
    """Keeps operational endpoints and customer endpoints' disabled flags; records recoveries."""

    def __init__(self) -> None:
        self.operational: dict[str, dict] = {}
        self.disabled: dict[tuple[str, str], bool] = {}
        self.recoveries: list[tuple[str, str, str]] = []
        self.calls: list[str] = []
        self.refuse: set[str] = set()  # endpoint ids whose recovery Svix refuses

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "authentication_failed", "Incorrect authentication credentials.")
        body = json.loads(request.content) if request.content else {}
        path, method = request.url.path, request.method
        if m := re.fullmatch(r"/api/v1/operational-webhook/endpoint/([^/]+)/secret", path):
            return httpx.Response(200, json={"key": SECRET}) if m[1] in self.operational else nf()
        if m := re.fullmatch(r"/api/v1/operational-webhook/endpoint/([^/]+)", path):
            if method == "GET":
                found = self.operational.get(m[1])
                return httpx.Response(200, json=found) if found else nf()
            if method == "PUT":
                self.operational[m[1]] = endpoint_out(m[1], body)
                return httpx.Response(200, json=self.operational[m[1]])
        if path == "/api/v1/operational-webhook/endpoint" and method == "POST":
            if body["uid"] in self.operational:
                return error(409, "conflict", "A conflict has occurred")
            self.operational[body["uid"]] = endpoint_out(body["uid"], body)
            return httpx.Response(201, json=self.operational[body["uid"]])
        if m := re.fullmatch(r"/api/v1/app/([^/]+)/endpoint/([^/]+)/recover", path):
            since = datetime.fromisoformat(body["since"])
            if m[2] in self.refuse or since < datetime.now(UTC) - timedelta(days=14, minutes=5):
                item = {
                    "loc": ["body", "since"],
                    "msg": "Cannot recover more than 14 days of messages",
                }
                return httpx.Response(422, json={"detail": [{**item, "type": "value_error"}]})
            self.recoveries.append((m[1], m[2], body["since"]))
            task = {
                "id": "qtask_1srOrx2ZWZBpBUvZwXKQmoEYga2",
                "status": "running",
                "task": "endpoint.recover",
                "updatedAt": STAMP,
            }
            return httpx.Response(202, json=task)
        if (m := re.fullmatch(r"/api/v1/app/([^/]+)/endpoint/([^/]+)", path)) and method == "PATCH":
            self.disabled[(m[1], m[2])] = body["disabled"]
            return httpx.Response(200, json=customer_endpoint_out(m[2], body["disabled"]))
        return nf()


def endpoint_out(uid: str, body: dict) -> dict:
    return {
        "id": "ep_2opXYZ000000000000000000000",
        "uid": uid,
        "url": body["url"],
        "description": body.get("description", ""),
        "disabled": body.get("disabled", False),
        "eventTypes": body.get("eventTypes"),
        "metadata": {},
        "createdAt": STAMP,
        "updatedAt": STAMP,
    }


def customer_endpoint_out(endpoint_id: str, disabled: bool) -> dict:
    return {
        "id": endpoint_id,
        "url": "https://customer.example/hook",
        "description": "",
        "disabled": disabled,
        "version": 1,
        "metadata": {},
        "createdAt": STAMP,
        "updatedAt": STAMP,
    }


def error(status, code, detail):
    return httpx.Response(status, json={"code": code, "detail": detail})


def nf():
    return error(404, "not_found", "Entity not found")


@pytest.fixture
def server():
    return Server()


def admin(server) -> SvixEndpointAdmin:
    client = SvixClient(
        TOKEN,
        server_url="http://svix.test",
        timeout=5.0,
        retry_schedule=(0.0,),
        transport=httpx.MockTransport(server),
    )
    return SvixEndpointAdmin(client)


# -- operational setup ---------------------------------------------------------------------------


def test_setup_registers_the_endpoint_for_every_type_and_writes_its_secret_once(server, tmp_path):
    secret_file = tmp_path / "operational-secret"
    report = setup(admin(server), url=URL, secret_file=secret_file)
    assert (report.endpoint, report.secret_file) == ("created", "written")
    registered = server.operational[ENDPOINT_UID]
    assert registered["url"] == URL
    assert set(registered["eventTypes"]) == set(EVENT_TYPES)
    assert "endpoint.disabled" in registered["eventTypes"]
    assert secret_file.read_text().strip() == SECRET
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert SECRET not in "\n".join(report.lines())

    again = setup(admin(server), url=URL, secret_file=secret_file)
    assert again.changed is False
    assert [c for c in server.calls if not c.startswith("GET")] == [
        "POST /api/v1/operational-webhook/endpoint"
    ]


@pytest.mark.parametrize(
    "drift", [{"url": "https://old.example/ops"}, {"disabled": True}, {"eventTypes": ["x.y"]}]
)
def test_setup_puts_right_an_endpoint_that_drifted(server, tmp_path, drift):
    setup(admin(server), url=URL, secret_file=tmp_path / "s")
    server.operational[ENDPOINT_UID].update(drift)
    report = setup(admin(server), url=URL, secret_file=tmp_path / "s")
    assert report.endpoint == "updated"
    fixed = server.operational[ENDPOINT_UID]
    assert (fixed["url"], fixed["disabled"], set(fixed["eventTypes"])) == (
        URL,
        False,
        set(EVENT_TYPES),
    )


def test_setup_refuses_a_url_svix_would_refuse(server, tmp_path):
    with pytest.raises(SetupError, match="--url must be an absolute http"):
        setup(admin(server), url="notifier-operational", secret_file=tmp_path / "s")
    assert server.calls == []


# -- recover -------------------------------------------------------------------------------------


def health_of(*webhooks, project="acme", endpoint_id=factories.ENDPOINT_ID):
    log = fakes.MemoryEndpointHealth()
    for n, (kind, data) in enumerate(webhooks):
        body = factories.operational_webhook(kind, project=project, endpointId=endpoint_id, **data)
        log.record(f"msg_{project}{endpoint_id}{n}", read(json.loads(body)), NOW)
    return log


def test_recover_enables_a_disabled_endpoint_then_recovers_since_its_failures_began(server):
    fail_since = (datetime.now(UTC) - timedelta(days=5)).isoformat()
    log = health_of(("endpoint.disabled", {"failSince": fail_since}))
    [done] = recover(log, admin(server), project="acme", now=datetime.now(UTC))
    assert done.error is None and done.enabled and done.task.status == "running"
    assert server.disabled == {("acme", factories.ENDPOINT_ID): False}
    [(app, endpoint, since)] = server.recoveries
    assert (app, endpoint) == ("acme", factories.ENDPOINT_ID)
    assert datetime.fromisoformat(since) == datetime.fromisoformat(fail_since)
    assert server.calls.index(f"PATCH /api/v1/app/acme/endpoint/{factories.ENDPOINT_ID}") < (
        server.calls.index(f"POST /api/v1/app/acme/endpoint/{factories.ENDPOINT_ID}/recover")
    )


def test_recover_goes_back_no_further_than_svix_allows(server):
    log = health_of(("endpoint.disabled", {"failSince": "2026-01-01T00:00:00Z"}))
    now = datetime.now(UTC)
    [done] = recover(log, admin(server), project="acme", now=now)
    assert done.clamped and done.error is None
    assert done.since == now - timedelta(days=14)


def test_recover_touches_only_the_project_asked_for_and_the_endpoint_named(server):
    log = health_of(("message.attempt.failing", {}), project="globex")
    assert recover(log, admin(server), project="acme", now=datetime.now(UTC)) == []
    log = health_of(("message.attempt.failing", {}))
    assert recover(log, admin(server), project="acme", endpoint="ep_other", now=NOW) == []
    assert server.calls == []


def test_a_failing_endpoint_is_recovered_without_enabling(server):
    log = health_of(("message.attempt.failing", {}))
    [done] = recover(log, admin(server), project="acme", now=datetime.now(UTC))
    assert not done.enabled and done.task is not None
    assert server.disabled == {}


def test_the_recovery_started_is_recorded_on_the_endpoint_recovering(server):
    log = health_of(("message.attempt.failing", {}))
    now = datetime.now(UTC)
    [done] = recover(log, admin(server), project="acme", now=now)
    assert done.task is not None and done.recorded is not None
    [health] = log.unhealthy()
    assert (health.state, health.since) == (State.RECOVERING, now)
    assert health.recovery == RecoveryStarted(at=now, task_id=done.task.id, since=done.since)
    # recover again (the customer's second "fixed it"): it goes on from the same failures
    [again] = recover(log, admin(server), project="acme", now=now + timedelta(minutes=5))
    assert again.since == done.since and again.endpoint.state == State.RECOVERING


def test_a_recovery_not_recorded_says_so(server):
    log = health_of(("message.attempt.failing", {}))
    log.unavailable = True  # Firestore down after the read: the record cannot be written
    [done] = recover(log, admin(server), project="acme", now=datetime.now(UTC))
    assert done.task is not None and done.recorded is None
    assert done.error is not None and "not recorded" in done.error


def test_a_dry_run_changes_nothing(server):
    log = health_of(("endpoint.disabled", {"failSince": datetime.now(UTC).isoformat()}))
    [done] = recover(log, admin(server), project="acme", now=datetime.now(UTC), dry_run=True)
    assert done.task is None and done.enabled  # it would enable it first
    assert server.calls == []
    assert [h.state for h in log.unhealthy()] == [State.DISABLED]  # nothing recorded


def test_one_endpoint_refused_does_not_stop_the_others(server):
    log = health_of(("message.attempt.failing", {}), endpoint_id="ep_a")
    for webhook in health_of(("message.attempt.failing", {}), endpoint_id="ep_b").unhealthy():
        log.endpoints[(webhook.app_id, webhook.endpoint_id)] = webhook
    server.refuse.add("ep_a")
    done = recover(log, admin(server), project="acme", now=datetime.now(UTC))
    assert {d.endpoint.endpoint_id: d.error is None for d in done} == {"ep_a": False, "ep_b": True}
    assert "Svix answered 422" in next(d.error for d in done if d.error)
    assert all(d.endpoint.state == State.FAILING for d in done)
