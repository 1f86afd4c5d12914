"""The setup's svix SDK adapter, over HTTP answers shaped as svix-server gives them.

Shapes from the server's source (/work/.mirror/svix+svix-webhooks/repo): errors are
``{"code","detail"}`` (error.rs: not_found "Entity not found", conflict on a taken uid via
http_error_on_conflict, authentication_failed); EndpointOut carries ``eventTypes`` and its
deprecated twin ``filterTypes`` (v1/endpoints/endpoint/mod.rs EndpointOutCommon); PUT on an
endpoint replaces its settings (crud.rs update_endpoint). This is not the Svix twin: only what the
adapter reads and the statuses it must tell apart (the twin covers it end to end:
tests/integration/test_heartbeat_cli.py).
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.heartbeat_admin import SvixHeartbeatAdmin
from notifier.domain.errors import SetupError
from notifier.usecases.heartbeat_setup import setup

TOKEN = "testsk_heartbeat-setup.secret-token-55"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://canary.example.com/"
STAMP = "2026-11-30T10:00:00Z"


class Server:
    """Keeps apps, event types and endpoints; answers the few routes setup uses."""

    def __init__(self) -> None:
        self.apps: dict[str, dict] = {}
        self.types: dict[str, dict] = {}
        self.endpoints: dict[tuple[str, str], dict] = {}
        self.calls: list[str] = []
        self.override: httpx.Response | None = None
        self.apps_hidden_from_reads = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if self.override is not None:
            return self.override
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "authentication_failed", "Incorrect authentication credentials.")
        body = json.loads(request.content) if request.content else {}
        path, method = request.url.path, request.method
        if m := re.fullmatch(r"/api/v1/app/([^/]+)", path):
            app = None if self.apps_hidden_from_reads else self.apps.get(m[1])
            return httpx.Response(200, json=app) if app else not_found()
        if path == "/api/v1/app" and method == "POST":
            if body["uid"] in self.apps:
                return error(409, "conflict", "A conflict has occurred")
            self.apps[body["uid"]] = {
                "id": "app_1",
                "uid": body["uid"],
                "name": body["name"],
                "metadata": {},
                "createdAt": STAMP,
                "updatedAt": STAMP,
            }
            return httpx.Response(201, json=self.apps[body["uid"]])
        if m := re.fullmatch(r"/api/v1/event-type/([^/]+)", path):
            found = self.types.get(m[1])
            return httpx.Response(200, json=found) if found else not_found()
        if path == "/api/v1/event-type" and method == "POST":
            if body["name"] in self.types:
                return error(409, "conflict", "A conflict has occurred")
            self.types[body["name"]] = {
                "name": body["name"],
                "description": body["description"],
                "deprecated": False,
                "createdAt": STAMP,
                "updatedAt": STAMP,
            }
            return httpx.Response(201, json=self.types[body["name"]])
        if m := re.fullmatch(r"/api/v1/app/([^/]+)/endpoint/([^/]+)/secret", path):
            found = self.endpoints.get((m[1], m[2]))
            return httpx.Response(200, json={"key": SECRET}) if found else not_found()
        if m := re.fullmatch(r"/api/v1/app/([^/]+)/endpoint/([^/]+)", path):
            key = (m[1], m[2])
            if method == "GET":
                found = self.endpoints.get(key)
                return httpx.Response(200, json=found) if found else not_found()
            if method == "PUT":
                self.endpoints[key] = self.endpoint_out(m[2], body)
                return httpx.Response(200, json=self.endpoints[key])
        if m := re.fullmatch(r"/api/v1/app/([^/]+)/endpoint", path):
            if m[1] not in self.apps:
                return not_found()
            if not set(body.get("eventTypes") or []) <= set(self.types):
                return error(422, "validation", "The following event types don't exist")
            key = (m[1], body["uid"])
            if key in self.endpoints:
                return error(409, "conflict", "A conflict has occurred")
            self.endpoints[key] = self.endpoint_out(body["uid"], body)
            return httpx.Response(201, json=self.endpoints[key])
        return not_found()

    @staticmethod
    def endpoint_out(uid: str, body: dict) -> dict:
        return {
            "id": "ep_1",
            "uid": uid,
            "url": body["url"],
            "description": body.get("description", ""),
            "disabled": body.get("disabled", False),
            "eventTypes": body.get("eventTypes"),
            "filterTypes": body.get("eventTypes"),
            "metadata": {},
            "createdAt": STAMP,
            "updatedAt": STAMP,
        }


def error(status, code, detail):
    return httpx.Response(status, json={"code": code, "detail": detail})


def not_found():
    return error(404, "not_found", "Entity not found")


@pytest.fixture
def server():
    return Server()


def admin(server, token: str = TOKEN) -> SvixHeartbeatAdmin:
    """The adapter on a real client whose HTTP goes to ``server`` (any httpx handler)."""
    client = SvixClient(
        token,
        server_url="http://svix.test",
        timeout=5.0,
        retry_schedule=(0.0,),
        transport=httpx.MockTransport(server),
    )
    return SvixHeartbeatAdmin(client)


def test_setup_through_the_sdk_creates_in_order_then_only_reads(server, tmp_path):
    report = setup(admin(server), canary_url=URL, secret_file=tmp_path / "s")
    assert report.changed
    writes = [call for call in server.calls if not call.startswith("GET")]
    assert writes == [
        "POST /api/v1/app",
        "POST /api/v1/event-type",
        "POST /api/v1/app/notifier-heartbeat/endpoint",
    ]
    assert server.endpoints[("notifier-heartbeat", "canary")]["eventTypes"] == [
        "notifier.heartbeat"
    ]
    assert (tmp_path / "s").read_text().strip() == SECRET
    server.calls.clear()
    again = setup(admin(server), canary_url=URL, secret_file=tmp_path / "s")
    assert not again.changed
    assert all(call.startswith("GET") for call in server.calls)


def test_a_moved_canary_is_updated_with_put_and_reenabled(server, tmp_path):
    setup(admin(server), canary_url=URL, secret_file=tmp_path / "s")
    server.endpoints[("notifier-heartbeat", "canary")]["disabled"] = True
    server.calls.clear()
    report = setup(admin(server), canary_url="https://new.example.com/", secret_file=tmp_path / "s")
    assert report.endpoint == "updated"
    assert "PUT /api/v1/app/notifier-heartbeat/endpoint/canary" in server.calls
    endpoint = server.endpoints[("notifier-heartbeat", "canary")]
    assert (endpoint["url"], endpoint["disabled"]) == ("https://new.example.com/", False)


def test_a_create_that_lost_a_race_counts_as_existing(server, tmp_path):
    """Another setup created the app between our read (404) and our create (409)."""
    first = admin(server)
    setup(first, canary_url=URL, secret_file=tmp_path / "s")
    server.apps_hidden_from_reads = True
    report = setup(admin(server), canary_url=URL, secret_file=tmp_path / "s")
    assert "POST /api/v1/app" in server.calls[-8:]
    assert report.application == "unchanged"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (error(401, "authentication_failed", "Incorrect"), "answered 401 (check the Svix token)"),
        (error(403, "forbidden", "no"), "answered 403 (check the Svix token)"),
        (error(500, "server_error", "boom"), "answered 500; run it again in a minute"),
        (error(429, "rate_limited", "slow down"), "answered 429; run it again in a minute"),
        (httpx.Response(502, text="<html>bad gateway</html>"), "unreadable; run it again"),
    ],
)
def test_svix_failures_say_which_step_and_what_to_do_without_the_token(
    server, tmp_path, answer, expected
):
    server.override = answer
    with pytest.raises(SetupError) as caught:
        setup(admin(server), canary_url=URL, secret_file=tmp_path / "s")
    message = str(caught.value)
    assert message.startswith("read application notifier-heartbeat: ")
    assert expected in message
    assert TOKEN not in message
    assert not (tmp_path / "s").exists()


def test_a_wrong_token_is_refused_by_the_server_and_reported(server, tmp_path):
    with pytest.raises(SetupError, match="401"):
        setup(admin(server, token="testsk_wrong.token"), canary_url=URL, secret_file=tmp_path / "s")


def test_an_unreachable_svix_is_a_setup_error(tmp_path):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(SetupError, match="cannot reach Svix"):
        setup(admin(refuse), canary_url=URL, secret_file=tmp_path / "s")


def test_a_svix_that_does_not_answer_in_time_is_a_setup_error(tmp_path):
    def hang(request):
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(SetupError, match="did not answer in time; run it again"):
        setup(admin(hang), canary_url=URL, secret_file=tmp_path / "s")
