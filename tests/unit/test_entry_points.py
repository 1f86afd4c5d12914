"""The deployed entry points, in-process: functions-framework's own app on main.py, as Cloud
Functions serves it, with in-memory fakes of the ports (no emulator, no Svix).

CloudEvents are sent the two ways functions-framework accepts them (as its own tests do): binary
(``ce-*`` headers, the Pub/Sub push body as the body; how Eventarc delivers) and structured (one
``application/cloudevents+json`` document, like the conformance fixtures).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from devstack.cloudevents import PUBLISHED, pubsub_request
from notifier import bootstrap
from notifier.domain.errors import (
    BadCredentials,
    Permanent,
    RateLimited,
    SvixConflict,
    SvixUnavailable,
)
from notifier.handlers.dependencies import Dependencies
from tests import factories, fakes

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


def client(target: str, signature_type: str) -> Any:
    return create_app(target=target, source=MAIN, signature_type=signature_type).test_client()


@pytest.fixture
def deps() -> Iterator[Dependencies]:
    """The entry points serve with fakes for the test, and with nothing built afterwards."""
    built = fakes.dependencies()
    with bootstrap.provided(built):
        yield built
    assert bootstrap.built() is None


@pytest.fixture
def on_event(deps) -> Any:
    return client("on_event", "cloudevent")


@pytest.fixture
def notifications(deps) -> Any:
    return client("notifications", "http")


@pytest.fixture
def app_portal(deps) -> Any:
    return client("app_portal", "http")


def binary(test_client: Any, data: bytes | None, message_id: str = "1001", **kw: Any) -> Any:
    headers, body = pubsub_request(data, message_id, **kw)
    return test_client.post("/", headers=headers, data=body)


def structured(test_client: Any, data: bytes, message_id: str = "2002") -> Any:
    """The shape of the conformance suite's pubsub_text-cloudevent-input.json."""
    _, body = pubsub_request(data, message_id)
    push = json.loads(body)
    push["message"]["@type"] = "type.googleapis.com/google.pubsub.v1.PubsubMessage"
    document = {
        "specversion": "1.0",
        "type": PUBLISHED,
        "source": "//pubsub.googleapis.com/projects/local/topics/platform-events",
        "id": message_id,
        "time": "2026-11-28T10:00:00.123Z",
        "datacontenttype": "application/json",
        "data": push,
    }
    return test_client.post(
        "/", headers={"Content-Type": "application/cloudevents+json"}, data=json.dumps(document)
    )


def as_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# -- on_event -------------------------------------------------------------------------------------


def test_importing_the_entry_points_builds_no_clients():
    """Cold start: the app is made and main.py imported, yet no dependency is built."""
    bootstrap.reset()
    client("on_event", "cloudevent")
    client("notifications", "http")
    assert bootstrap.built() is None


def test_a_binary_cloudevent_is_sent_once_and_acknowledged(on_event, deps):
    event = factories.event()
    assert binary(on_event, as_bytes(event)).status_code == 200
    assert binary(on_event, as_bytes(event), message_id="1002").status_code == 200  # a copy
    assert list(deps.sender.messages) == [event["id"]]
    assert deps.store.notifications[event["id"]]["status"] == "sent"
    assert deps.sender.apps == ["acme"]  # the project's application, made on first use


def test_a_structured_cloudevent_is_handled_the_same_way(on_event, deps):
    event = factories.event()
    assert structured(on_event, as_bytes(event)).status_code == 200
    assert deps.sender.messages[event["id"]]["payload"] == event


def test_a_bad_message_is_kept_and_acknowledged_never_sent(on_event, deps):
    response = binary(on_event, b"{not json", message_id="3003")
    assert response.status_code == 200
    assert deps.store.rejected["pubsub-3003"]["reason"] == "not_json"
    assert deps.sender.messages == {}


def test_an_attribute_only_message_is_rejected_as_having_no_data(on_event, deps):
    assert binary(on_event, None, message_id="3004").status_code == 200
    assert "pubsub-3004" in deps.store.rejected


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (SvixUnavailable("down", status=503), None),
        (RateLimited("slow down", retry_after=7.2), "7"),
        (BadCredentials("revoked", status=401), None),
    ],
)
def test_transient_trouble_is_a_503_so_that_pubsub_delivers_again(
    on_event, deps, error, retry_after
):
    event = factories.event()
    deps.sender.script.append(error)
    response = binary(on_event, as_bytes(event))
    assert response.status_code == 503
    assert response.headers.get("Retry-After") == retry_after
    assert deps.store.notifications[event["id"]]["status"] == "pending"
    assert binary(on_event, as_bytes(event), delivery_attempt=2).status_code == 200  # redelivery
    assert deps.store.notifications[event["id"]]["status"] == "sent"


def test_a_refusal_for_good_is_recorded_failed_and_acknowledged(on_event, deps):
    event = factories.event()
    deps.sender.script.append(Permanent("bad payload", status=422))
    assert binary(on_event, as_bytes(event)).status_code == 200
    assert deps.store.notifications[event["id"]]["status"] == "failed"


# -- notifications --------------------------------------------------------------------------------


def test_a_posted_event_is_201_then_200_duplicate(notifications, deps):
    event = factories.event()
    first = notifications.post("/notifications", data=as_bytes(event))
    again = notifications.post("/notifications", data=as_bytes(event))
    assert (first.status_code, first.json) == (
        201,
        {"event_id": event["id"], "status": "sent", "svix_message_id": f"msg_{event['id']}"},
    )
    assert (again.status_code, again.json["status"]) == (200, "duplicate")
    assert first.headers["Cache-Control"] == "no-store"
    assert len(deps.sender.messages) == 1


def test_an_invalid_event_is_a_400_that_names_paths_not_values(notifications, deps):
    event = factories.event(time="yesterday")
    response = notifications.post("/", data=as_bytes(event))
    assert response.status_code == 400
    assert response.json["error"] == "schema_invalid"
    assert response.json["errors"] == ["/time: must be a valid date-time"]
    assert response.json["rejected_id"] in deps.store.rejected
    assert factories.PII["email"] not in response.get_data(as_text=True)


def test_a_refused_event_is_a_202_failed_and_svix_trouble_a_503(notifications, deps):
    deps.sender.script.extend([Permanent("no", status=422), SvixUnavailable("x", status=502)])
    refused = notifications.post("/", data=as_bytes(factories.event()))
    assert (refused.status_code, refused.json["status"]) == (202, "failed")
    down = notifications.post("/", data=as_bytes(factories.event()))
    assert (down.status_code, down.json["error"], down.headers["Retry-After"]) == (
        503,
        "svix_unavailable",
        "5",
    )


def test_a_push_envelope_is_handled_as_pubsub_would(notifications, deps):
    event = factories.event()
    response = notifications.post("/", json=factories.envelope(event, message_id="4004"))
    assert (response.status_code, response.json["status"]) == (201, "sent")
    bad = notifications.post("/", json=factories.envelope(b"[1]", message_id="4005"))
    assert (bad.status_code, bad.json) == (200, {"status": "rejected"})
    assert "pubsub-4005" in deps.store.rejected


def test_other_paths_and_methods(notifications):
    assert notifications.get("/notifications").status_code == 405
    assert notifications.get("/notifications").headers["Allow"] == "POST"
    assert notifications.post("/elsewhere", data=b"{}").json == {"error": "not_found"}


# -- app_portal -----------------------------------------------------------------------------------


def test_a_known_project_gets_a_portal_link(app_portal, deps):
    deps.store.applications["acme"] = "app_acme"
    response = app_portal.get("/app-portal?project=acme")
    assert response.status_code == 200
    assert response.json["url"].startswith("https://app.svix.test/")
    assert response.json["project"] == "acme"
    assert response.headers["Cache-Control"] == "no-store"
    assert deps.sender.links == [("acme", deps.settings.portal_expiry_seconds)]


def test_an_unknown_or_invalid_project_gets_no_link(app_portal, deps):
    assert app_portal.get("/?project=nobody").status_code == 404
    bad = app_portal.post("/", json={"project": "../etc"})
    assert (bad.status_code, bad.json["error"]) == (400, "invalid_project")
    assert deps.sender.links == []


def test_bad_credentials_are_a_503_asking_for_a_minute(app_portal, deps):
    deps.store.applications["acme"] = "app_acme"
    deps.sender.script.append(BadCredentials("revoked", status=401))
    response = app_portal.get("/?project=acme")
    assert (response.status_code, response.headers["Retry-After"]) == (503, "60")
    assert "secret" not in response.get_data(as_text=True)


def test_a_portal_link_conflict_while_svix_creates_the_application_is_tried_again_at_once(
    app_portal, deps
):
    deps.store.applications["acme"] = "app_acme"  # recorded, but deleted in Svix meanwhile
    deps.sender.script.append(SvixConflict("409 while creating", status=409))
    response = app_portal.get("/?project=acme")
    assert response.status_code == 200
    assert deps.sender.links == [("acme", deps.settings.portal_expiry_seconds)]


def test_a_portal_link_conflict_twice_is_a_503_never_a_502(app_portal, deps):
    deps.store.applications["acme"] = "app_acme"
    deps.sender.script += [SvixConflict("409", status=409), SvixConflict("409", status=409)]
    response = app_portal.get("/?project=acme")
    assert (response.status_code, response.json["error"]) == (503, "svix_conflict")
    assert response.headers["Retry-After"] == "1"
