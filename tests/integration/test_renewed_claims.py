"""Renewed claims on the Firestore emulator and the twin, in real time: two function instances
as bootstrap builds them (each with its lease keeper), one of them stalled or skewed.

A delivery that waits out a 429 longer than its lease keeps its claim (renewed); one whose
claim was taken meanwhile stops before its next Svix call and writes nothing, and the event is
still one message in Svix.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from notifier import bootstrap
from notifier.adapters.firestore.keys import document_key
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.events import Delivery
from tests.integration.conftest import settings_on
from tests.integration.test_exactly_once import an_event, assert_exactly_once

LEASE = 10.0


def instance(db, svix, *, ahead: float = 0.0):
    """One function instance on the emulator and the twin; its clock ``ahead`` seconds fast."""
    store = FirestoreStore(
        db,
        lease_seconds=LEASE,
        ttl_days=30,
        raw_limit=1024,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=ahead),
    )
    settings = settings_on(svix, retry_budget_seconds=20.0, lease_seconds=LEASE)
    return bootstrap.build(settings, store=store, stopping=threading.Event())


def record(db, event_id: str) -> dict:
    return db.collection("notifications").document(document_key(event_id)).get().to_dict()


def creates(svix) -> list:
    return [c["status"] for c in svix.calls() if c["op"] == "msg.create"]


def test_a_delivery_waiting_longer_than_its_lease_keeps_its_claim(db, svix):
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 13, "times": 1}])
    first, other = instance(db, svix), instance(db, svix)
    event = an_event()
    outcome: dict = {}
    waiting = threading.Thread(target=lambda: outcome.update(o=first.notifier.deliver(event)))
    waiting.start()
    try:
        for _ in range(3):  # at 3.6, 7.2 and 10.8 s, past the first lease: each finds it held
            waiting.join(3.6)
            assert other.notifier.deliver(event, Delivery(delivery_attempt=2)).error.code == (
                "claim_held"
            )
        waiting.join(15)
    finally:
        first.sender.close()
        other.sender.close()
    assert outcome["o"].kind == "sent"
    assert creates(svix) == [429, 202]
    assert_exactly_once(db, svix, [event])


def test_a_holder_whose_claim_was_taken_stops_before_its_next_svix_call(db, svix):
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 6, "times": 1}])
    stalled, skewed = instance(db, svix), instance(db, svix, ahead=LEASE + 1)
    event = an_event()
    outcome: dict = {}
    waiting = threading.Thread(target=lambda: outcome.update(o=stalled.notifier.deliver(event)))
    waiting.start()
    try:
        waiting.join(1.0)  # it waits out the 429's 6 s
        taken = skewed.notifier.deliver(event, Delivery(delivery_attempt=2))  # lease "run out"
        waiting.join(15)
    finally:
        stalled.sender.close()
        skewed.sender.close()
    assert taken.kind == "sent"
    assert (outcome["o"].kind, outcome["o"].error.code) == ("retried", "claim_lost")
    assert creates(svix) == [429, 202]  # the first holder did not call Svix again
    saved = record(db, event.id)
    assert (saved["status"], saved["attempts"]) == ("sent", 2)
    assert "last_error" not in saved  # the old holder wrote nothing over the new one's record
    assert_exactly_once(db, svix, [event])
