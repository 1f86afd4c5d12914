"""The keys the store really writes to the Firestore emulator spread time-ordered ids (issue 11.1).

2,000 consecutive platform-like event ids (10 per millisecond: 10,000 events/s) claimed through
:class:`notifier.adapters.firestore.store.FirestoreStore`; the document ids are read back from the
emulator, put in the events' time order (by their ``event_id`` field) and measured as in
tests/keyspace.py.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from benchmarks.counting import firestore_rpcs
from notifier.adapters.firestore.keys import document_key
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.decoding import event_from
from notifier.domain.errors import Rejected
from notifier.domain.events import Delivery
from notifier.usecases.replay import Criteria, replay, select
from tests import factories
from tests.integration.test_operations import Pipeline
from tests.keyspace import HEX, largest_window_share, platform_event_ids, spearman

WINDOWS = 64


def make_store(db):
    return FirestoreStore(db, lease_seconds=60, ttl_days=30, raw_limit=64)


def test_claims_written_to_firestore_land_apart_whatever_their_time_order(db):
    store, ids = make_store(db), platform_event_ids(2_000, seed=42)
    events = [
        event_from(json.loads(json.dumps(factories.event(id=event_id))), max_bytes=2**20)
        for event_id in ids
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda e: store.claim(e, Delivery(message_id=e.id)), events))

    written = {
        snap.get("event_id"): snap.id
        for snap in db.collection("notifications").select(["event_id"]).stream()
    }
    assert sorted(written) == ids  # every event, each under its own key, the event id a field
    keys = [written[event_id] for event_id in ids]  # in time order
    assert keys == [document_key(event_id) for event_id in ids]
    assert abs(spearman(keys)) < 0.05
    assert largest_window_share(keys, HEX, windows=WINDOWS) < 2.5 / WINDOWS


def test_rejections_of_consecutive_pubsub_messages_land_apart(db):
    store = make_store(db)
    message_ids = [str(n) for n in range(13_158_412_733_911_000, 13_158_412_733_911_500)]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda m: store.reject(Rejected("not_json"), Delivery(message_id=m), b"{"),
                message_ids,
            )
        )

    written = {
        snap.get("pubsub_message_id"): snap.id
        for snap in db.collection("rejected").select(["pubsub_message_id"]).stream()
    }
    keys = [written[m] for m in message_ids]  # in Pub/Sub's order
    assert keys == [document_key(f"pubsub-{m}") for m in message_ids]
    assert abs(spearman(keys)) < 0.15  # 500 keys: sampling noise alone is about 0.045
    assert largest_window_share(keys, HEX, windows=WINDOWS) < 3 / WINDOWS


def test_a_record_written_before_keys_spread_is_listed_by_its_event_id_but_not_replayed(db, svix):
    """Upgrading: an old record's document id is the event id itself. The tools list it under
    that id; replay, which opens records by their spread key, skips it ("now gone")."""
    pipeline = Pipeline(db, svix)
    event_id = pipeline.failed()
    spread = db.collection("notifications").document(document_key(event_id))
    db.collection("notifications").document(event_id).set(spread.get().to_dict())
    spread.delete()

    [listed] = select(pipeline.store, Criteria(), now=datetime.now(UTC))
    assert (listed.event_id, listed.status) == (event_id, "failed")
    messages = len(svix.messages())
    [replayed] = replay([listed], store=pipeline.store, notifier=pipeline.notifier, max_bytes=2**20)
    assert (replayed.outcome, replayed.error) == ("skipped", "now gone")
    assert len(svix.messages()) == messages


def test_the_key_costs_no_round_trip(db):
    """Counted on the client's RPCs (benchmarks/counting.py, as BENCHMARKS.md's table): a new
    event is claimed and recorded in 2 commits and no read; a redelivery of it, 1 read."""
    store = make_store(db)
    [event_id] = platform_event_ids(1, seed=5)
    event = event_from(json.loads(json.dumps(factories.event(id=event_id))), max_bytes=2**20)
    with firestore_rpcs() as rpcs:
        store.mark_sent(store.claim(event, Delivery(message_id="1")), "msg_1", 202)
        new, refused = rpcs.take()
        again = store.claim(event, Delivery(message_id="1", delivery_attempt=2))
        redelivered, _ = rpcs.take()
    assert (dict(new), dict(refused)) == ({"commit": 2}, {})
    assert dict(redelivered) == {"batch_get_documents": 1}
    assert again.event_id == event_id and again.svix_message_id == "msg_1"
