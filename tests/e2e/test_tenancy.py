"""Finding 5 (issue 10), end to end: the functions under functions-framework, on the Firestore
emulator and the Svix twin. acme's event id POSTed with ``project: globex`` is refused, not
answered as acme's duplicate; published to Pub/Sub, it is kept as rejected and acknowledged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from devstack.function_server import FunctionServer
from notifier.adapters.firestore.keys import document_key
from tests import factories
from tests.e2e.conftest import KEEPALIVE, function_env, log_lines


@pytest.fixture(scope="module")
def notifications(firestore_emulator, svix_server, logs_dir) -> Iterator[FunctionServer]:
    env = function_env(firestore_emulator, svix_server)
    log = logs_dir / "tenancy-notifications.log"
    with FunctionServer("notifications", env, log, signature_type="http") as server:
        yield server


@pytest.fixture
def api(notifications, db, svix) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=notifications.url, timeout=60, limits=KEEPALIVE) as client:
        yield client


def test_another_tenant_s_event_id_is_refused_and_leaks_nothing(api, notifications, db, svix):
    acme = factories.event(project="acme")
    sent = api.post("/notifications", content=json.dumps(acme))
    assert sent.status_code == 201
    acme_message = sent.json()["svix_message_id"]

    globex = {**factories.event(project="globex"), "id": acme["id"]}
    refused = api.post("/notifications", content=json.dumps(globex))

    assert refused.status_code == 409
    assert refused.json() == {
        "event_id": acme["id"],
        "error": "id_conflict",
        "detail": "the event id is already recorded for another project or event type",
    }
    assert acme_message not in refused.text
    assert [(m["eventId"], m["app_uid"]) for m in svix.messages()] == [(acme["id"], "acme")]
    record = db.collection("notifications").document(document_key(acme["id"])).get().to_dict()
    assert (record["project"], record["svix_message_id"]) == ("acme", acme_message)
    [line] = [e for e in log_lines(notifications.log_path) if e.get("reason") == "id_conflict"]
    assert (line["severity"], line["project"], line["recorded_project"]) == (
        "WARNING",
        "globex",
        "acme",
    )
    assert line["event_id"] == acme["id"] and "svix_message_id" not in line
    assert factories.PII["email"] not in json.dumps(line)


def test_published_it_is_kept_as_rejected_and_acknowledged(deliver, db, svix):
    acme = factories.event(project="acme")
    assert deliver(acme, message_id="7001") == 200
    globex = {**factories.event(project="globex"), "id": acme["id"]}

    assert deliver(globex, message_id="7002") == 200  # acknowledged: no retry can change it

    kept = db.collection("rejected").document(document_key("pubsub-7002")).get().to_dict()
    assert kept["reason"] == "id_conflict"
    assert json.loads(kept["raw"])["project"] == "globex"
    assert [m["eventId"] for m in svix.messages()] == [acme["id"]]
