"""Finding 5 (issue 10): an event id recorded for one project is not a duplicate for another.

Through the deployed entry points, in-process, on the in-memory fakes (the Firestore store's own
decision is proven on the emulator in tests/integration/test_tenancy_store.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from devstack.cloudevents import pubsub_request
from notifier import bootstrap
from notifier.domain.outcomes import OutcomeKind
from notifier.handlers.dependencies import Dependencies
from notifier.usecases.replay import Criteria, replay, select
from tests import factories, fakes

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")


class Lines(logging.Handler):
    """The notifier's log records, with their structured fields."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(
            {"severity": record.levelname, "message": record.getMessage(), **record.fields}
            if hasattr(record, "fields")
            else {"severity": record.levelname, "message": record.getMessage()}
        )


@pytest.fixture
def lines() -> Iterator[list[dict[str, Any]]]:
    root = logging.getLogger("notifier")
    handler, level = Lines(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def deps() -> Iterator[Dependencies]:
    built = fakes.dependencies()
    with bootstrap.provided(built):
        yield built


def http(deps: Dependencies) -> Any:
    return create_app(target="notifications", source=MAIN, signature_type="http").test_client()


def pubsub(deps: Dependencies) -> Any:
    return create_app(target="on_event", source=MAIN, signature_type="cloudevent").test_client()


def post_event(client: Any, event: dict[str, Any]) -> Any:
    return client.post("/notifications", data=json.dumps(event))


def publish(client: Any, event: dict[str, Any], message_id: str) -> Any:
    headers, body = pubsub_request(json.dumps(event).encode(), message_id)
    return client.post("/", headers=headers, data=body)


def the_same_id_in(event: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {**factories.event(**overrides), "id": event["id"]}


def test_another_projects_event_id_is_a_409_conflict_that_carries_nothing_of_theirs(deps, lines):
    client = http(deps)
    acme = factories.event(project="acme")
    sent = post_event(client, acme)
    assert sent.status_code == 201
    acme_message = sent.get_json()["svix_message_id"]
    assert acme_message

    globex = the_same_id_in(acme, project="globex")
    answer = post_event(client, globex)

    assert answer.status_code == 409
    body = answer.get_json()
    assert (body["event_id"], body["error"]) == (acme["id"], "id_conflict")
    assert acme_message not in answer.get_data(as_text=True)
    assert "acme" not in answer.get_data(as_text=True)  # the answer does not name the owner
    assert list(deps.sender.messages) == [acme["id"]]  # nothing sent for globex
    assert deps.store.notifications[acme["id"]]["project"] == "acme"  # the record is acme's still
    [line] = [x for x in lines if x.get("outcome") == "rejected"]
    assert line["severity"] == "WARNING"
    assert line["message"] == "event rejected: id_conflict"
    assert (line["event_id"], line["project"], line["recorded_project"]) == (
        acme["id"],
        "globex",
        "acme",
    )
    assert "svix_message_id" not in line and acme_message not in json.dumps(line)

    again = post_event(client, acme)  # the owner's own re-send is still a duplicate
    assert again.status_code == 200 and again.get_json()["svix_message_id"] == acme_message


def test_the_same_id_with_another_type_is_a_conflict_too(deps):
    client = http(deps)
    first = factories.event(type="user.created")
    assert post_event(client, first).status_code == 201
    answer = post_event(client, the_same_id_in(first, type="payment.succeeded"))
    assert (answer.status_code, answer.get_json()["error"]) == (409, "id_conflict")


def test_from_pubsub_a_conflicting_event_is_kept_as_rejected_and_acknowledged(deps, lines):
    client = pubsub(deps)
    acme = factories.event(project="acme")
    assert publish(client, acme, "5001").status_code == 200
    globex = the_same_id_in(acme, project="globex")

    answer = publish(client, globex, "5002")

    assert answer.status_code == 200  # acknowledged: no redelivery can change it
    kept = deps.store.rejected["pubsub-5002"]
    assert kept["reason"] == "id_conflict"
    assert json.loads(kept["raw"])["project"] == "globex"  # globex's own message, not acme's
    assert list(deps.sender.messages) == [acme["id"]]
    [line] = [x for x in lines if x.get("outcome") == "rejected"]
    assert (line["severity"], line["recorded_project"], line["rejected_id"]) == (
        "WARNING",
        "acme",
        "pubsub-5002",
    )
    assert "svix_message_id" not in line


def test_a_push_envelope_posted_with_a_conflicting_event_is_acknowledged_as_rejected(deps):
    client = http(deps)
    acme = factories.event(project="acme")
    assert post_event(client, acme).status_code == 201
    envelope = factories.envelope(the_same_id_in(acme, project="globex"), message_id="5003")
    answer = client.post("/notifications", data=json.dumps(envelope))
    assert (answer.status_code, answer.get_json()) == (200, {"status": "rejected"})
    assert deps.store.rejected["pubsub-5003"]["reason"] == "id_conflict"


def test_a_replay_meets_the_same_refusal(deps):
    """A record whose stored event is another's (written by an older version, or by hand) is
    refused by the replay as by the entries: nothing is sent, the exit is not clean."""
    acme = factories.event(project="acme")
    deps.store.notifications[acme["id"]] = {
        "status": "failed",
        "project": "globex",
        "event_type": acme["type"],
        "attempts": 1,
        "held": False,
        "payload": json.dumps(acme).encode(),
    }
    records = select(deps.store, Criteria(), now=datetime.now(UTC))
    [result] = replay(records, store=deps.store, notifier=deps.notifier, max_bytes=2**20)
    assert (result.outcome, result.done) == (OutcomeKind.REJECTED, False)
    assert result.error is not None and result.error.startswith("id_conflict")
    assert deps.sender.messages == {}
