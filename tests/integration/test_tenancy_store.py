"""Finding 5 (issue 10) on the emulator: the Firestore store's claim decides that an event id
recorded for another project or type is a conflict, on the read it makes anyway, and leaves the
owner's record as it was."""

from __future__ import annotations

import json

import pytest

from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.claims import ClaimState
from notifier.domain.decoding import event_from
from notifier.domain.events import Delivery
from tests import factories


def make_store(db):
    return FirestoreStore(db, lease_seconds=60.0, ttl_days=30, raw_limit=64)


def an_event(**overrides):
    return event_from(json.loads(json.dumps(factories.event(**overrides))), max_bytes=2**20)


def the_same_id(event, **overrides):
    return an_event(**{**overrides, "id": event.id})


@pytest.mark.parametrize("attempt", [None, 2])  # a first delivery creates first; a redelivery reads
@pytest.mark.parametrize("other", [{"project": "globex"}, {"type": "payment.succeeded"}])
def test_an_id_recorded_for_another_project_or_type_is_a_conflict(db, attempt, other):
    store = make_store(db)
    acme = an_event(project="acme", type="user.created")
    claim = store.claim(acme, Delivery(message_id="1"))
    store.mark_sent(claim, "msg_acme", 202)
    ref = db.collection("notifications").document(acme.id)
    before = ref.get()

    conflict = store.claim(the_same_id(acme, **other), Delivery(delivery_attempt=attempt))

    assert conflict.state is ClaimState.CONFLICT
    assert conflict.recorded_as == ("acme", "user.created")
    assert conflict.svix_message_id is None  # nothing of acme's is handed to the claimant
    after = ref.get()
    assert (after.to_dict(), after.update_time) == (before.to_dict(), before.update_time)


def test_the_owner_still_finds_its_own_record(db):
    store = make_store(db)
    acme = an_event(project="acme")
    first = store.claim(acme, Delivery())
    store.mark_sent(first, "msg_acme", 202)
    assert store.claim(acme, Delivery()).state is ClaimState.SENT
    pending = an_event(project="acme")
    store.claim(pending, Delivery())
    assert store.claim(the_same_id(pending, project="globex"), Delivery()).state is (
        ClaimState.CONFLICT
    )  # a pending record (its lease live) is not the claimant's either
