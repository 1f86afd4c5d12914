"""Drift, served: events off the catalog are sent all the same, and each type and cause is warned
about once, by the function as Cloud Functions runs it (functions-framework, the Firestore
emulator, the Svix twin). Each test runs its own instance: the warnings are once per instance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.function_server import FunctionServer
from tests.e2e.conftest import Deliverer, function_env, log_lines

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "platform-events"


def sample(event_id: str, **overrides: Any) -> dict[str, Any]:
    document = json.loads((SAMPLES / "event-13-addon.created.json").read_text())
    document.update(id=event_id, **overrides)
    return document


def drifted(event_id: str) -> dict[str, Any]:
    document = sample(event_id)
    del document["data"]["id"]  # required
    document["data"]["createdAt"] = 1679662241  # a number where a date-time belongs
    return document


def warnings(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["message"].startswith("event off catalog")]


def outcome_causes(lines: list[dict[str, Any]]) -> dict[str, str | None]:
    return {line["event_id"]: line.get("catalog_drift") for line in lines if "outcome" in line}


def check(log: Path, svix, sent_ids: list[str]) -> None:
    assert sorted(m["eventId"] for m in svix.messages()) == sorted(sent_ids)  # all sent
    lines = log_lines(log)
    found = sorted((w["severity"], w["event_type"], w["catalog_drift"]) for w in warnings(lines))
    assert found == [
        ("WARNING", "addon.created", "schema_drift"),
        ("WARNING", "addon.retired", "unknown_type"),
    ]
    [schema] = [w for w in warnings(lines) if w["catalog_drift"] == "schema_drift"]
    assert "/required/1" in schema["schema_paths"]
    assert "/properties/createdAt/type" in schema["schema_paths"]
    assert "1679662241" not in log.read_text()
    assert outcome_causes(lines) == {
        "evt_e2e_unknown1": "unknown_type",
        "evt_e2e_unknown2": "unknown_type",
        "evt_e2e_drift1": "schema_drift",
        "evt_e2e_drift2": "schema_drift",
        "evt_e2e_fine": None,
    }


EVENTS = [
    ("evt_e2e_unknown1", lambda i: sample(i, type="addon.retired")),
    ("evt_e2e_drift1", drifted),
    ("evt_e2e_unknown2", lambda i: sample(i, type="addon.retired")),
    ("evt_e2e_drift2", drifted),
    ("evt_e2e_fine", sample),
]


def test_pubsub_events_off_the_catalog_are_sent_and_warned_about_once(
    firestore_emulator, svix_server, db, logs_dir
):
    svix_server.reset()
    log = logs_dir / "function-drift-pubsub.log"
    with FunctionServer("on_event", function_env(firestore_emulator, svix_server), log) as server:
        deliver = Deliverer(server.url)
        for event_id, make in EVENTS:
            assert deliver(make(event_id)) == 200
        deliver.client.close()
    check(log, svix_server, [event_id for event_id, _ in EVENTS])
    for event_id, _ in EVENTS:  # by the event_id field: the document id may be a spread key
        query = db.collection("notifications").where(filter=FieldFilter("event_id", "==", event_id))
        assert [doc.get("status") for doc in query.get()] == ["sent"]


def test_http_events_off_the_catalog_are_sent_and_warned_about_once(
    firestore_emulator, svix_server, db, logs_dir
):
    svix_server.reset()
    log = logs_dir / "function-drift-http.log"
    env = function_env(firestore_emulator, svix_server)
    with FunctionServer("notifications", env, log) as server, httpx.Client(timeout=60) as http:
        for event_id, make in EVENTS:
            assert http.post(server.url, json=make(event_id)).status_code == 201
    check(log, svix_server, [event_id for event_id, _ in EVENTS])
