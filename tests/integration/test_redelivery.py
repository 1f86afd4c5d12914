"""A Pub/Sub redelivery decided on its record before it is decoded (notifier.usecases.redelivery),
on the Firestore emulator and the Svix twin: the floor's single read for a message already done,
and for everything else the same decision as the full path, on the same read.

Round trips are counted on the client's RPCs (benchmarks/counting.py, as BENCHMARKS.md's table).
"""

from __future__ import annotations

import json
import logging

import pytest

from benchmarks.counting import firestore_rpcs
from notifier import bootstrap
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.outcomes import OutcomeKind
from notifier.handlers import pubsub
from tests import factories
from tests.integration.conftest import settings_on


@pytest.fixture
def deps(db, svix):
    store = FirestoreStore(db, lease_seconds=10.0, ttl_days=30, raw_limit=1024)
    settings = settings_on(
        svix, svix_timeout_seconds=2.0, svix_retry_schedule=(0.01,), retry_budget_seconds=0.0
    )
    return bootstrap.build(settings, store=store)


def deliver(deps, payload, message_id, attempt=None):
    extra = {} if attempt is None else {"deliveryAttempt": attempt}
    return pubsub.process(factories.envelope(payload, message_id, **extra), deps)


def counted(rpcs) -> tuple[dict[str, int], dict[str, int]]:
    calls, refused = rpcs.take()
    return dict(calls), dict(refused)


def redelivered(deps, payload, message_id):
    """Delivers again (``deliveryAttempt`` 2): the outcome and the Firestore RPCs it made."""
    with firestore_rpcs() as rpcs:
        outcome = deliver(deps, payload, message_id, attempt=2)
        return outcome, counted(rpcs)


def first_answered(deps, svix, event, status: int):
    """The event's first delivery, Svix answering ``status`` to its message."""
    svix.set_faults([{"op": "msg.create", "status": status}])
    try:
        return deliver(deps, event, "m-1")
    finally:
        svix.clear_faults()


def test_a_redelivery_of_a_sent_message_costs_one_read_and_no_decoding(deps, svix, monkeypatch):
    event = factories.event()
    assert deliver(deps, event, "m-1").kind is OutcomeKind.SENT
    messages = len(svix.messages())

    def not_decoded(*args, **kwargs):
        raise AssertionError("the redelivery was decoded")

    monkeypatch.setattr(pubsub, "decode", not_decoded)
    again, trips = redelivered(deps, event, "m-1")
    assert trips == ({"batch_get_documents": 1}, {})
    assert again.kind is OutcomeKind.DUPLICATE and again.svix_message_id
    assert len(svix.messages()) == messages


def test_its_log_line_is_the_duplicate_line_of_the_full_path(deps, caplog):
    event = factories.event()
    deliver(deps, event, "m-1")
    deliver(deps, event, "m-2")  # published again: the full path's duplicate
    caplog.clear()
    with caplog.at_level(logging.INFO):
        deliver(deps, event, "m-1", attempt=2)  # a redelivery: the shortcut
        deliver(deps, event, "m-2", attempt=2)  # m-2 did not create the record: the full path
    lines = [r.fields for r in caplog.records if r.fields.get("outcome") == "duplicate"]
    assert len(lines) == 2
    short, full = (dict(fields, duration_ms=None) for fields in lines)
    assert short == full and short["event_id"] == event["id"] and short["delivery_attempt"] == 2


def test_a_message_that_never_made_a_record_is_still_rejected_and_kept(deps, db):
    """An invalid message carrying a sent event's ids, redelivered: its bytes were never
    validated (another message created the record), so it is decoded, rejected and kept."""
    event = factories.event()
    deliver(deps, event, "m-1")
    broken = {**event, "time": 12}  # the same ids, not schema-valid
    outcome, trips = redelivered(deps, broken, "m-9")
    assert outcome is None  # rejected (recorded, to ack)
    assert trips[0].get("batch_get_documents") == 1 and trips[0].get("commit") == 1
    [kept] = [d.to_dict() for d in db.collection("rejected").stream()]
    assert kept["reason"] == "schema_invalid"


def test_another_projects_event_with_a_known_id_is_refused_on_the_same_read(deps, db, svix):
    event = factories.event(project="acme")
    deliver(deps, event, "m-1")
    messages = len(svix.messages())
    other = {**event, "project": "globex"}
    outcome, trips = redelivered(deps, other, "m-7")
    assert outcome is not None and outcome.kind is OutcomeKind.REJECTED
    assert trips[0].get("batch_get_documents") == 1  # the look, reused by the claim
    assert len(svix.messages()) == messages
    assert db.collection("rejected").get()  # kept for inspection, as before


def test_a_redelivery_of_a_pending_event_is_sent_deciding_on_the_same_read(deps, svix):
    event = factories.event()
    assert first_answered(deps, svix, event, 503).kind is OutcomeKind.RETRIED
    outcome, trips = redelivered(deps, event, "m-1")
    assert outcome.kind is OutcomeKind.SENT
    assert trips == ({"batch_get_documents": 1, "commit": 2}, {})  # read, take over, sent
    assert [m["eventId"] for m in svix.messages()].count(event["id"]) == 1


def test_a_redelivery_whose_first_delivery_left_no_record_creates_it_after_one_read(deps):
    deliver(deps, factories.event(), "m-0")  # the project's application is known from here on
    outcome, trips = redelivered(deps, factories.event(), "m-1")
    assert outcome.kind is OutcomeKind.SENT
    assert trips == ({"batch_get_documents": 1, "commit": 2}, {})


def test_a_redelivery_of_a_failed_message_is_a_duplicate_on_one_read(deps, svix):
    event = factories.event()
    assert first_answered(deps, svix, event, 422).kind is OutcomeKind.FAILED
    outcome, trips = redelivered(deps, event, "m-1")
    assert outcome.kind is OutcomeKind.DUPLICATE and outcome.error is not None
    assert trips == ({"batch_get_documents": 1}, {})


def test_json_the_shortcut_cannot_read_goes_the_full_way(deps):
    """Bytes the plain parse refuses, or ids that are not safe ones, are the decoder's to judge."""
    for raw in (b"\xff\xfe", b"[1]", json.dumps({"id": "a b", "project": "p"}).encode()):
        assert deliver(deps, raw, "m-bad", attempt=2) is None  # rejected and kept
