"""A rejection record keeps its first witness: later deliveries of the same Pub/Sub message only
count themselves, whoever sends them (issue 10, finding 3)."""

from __future__ import annotations

from notifier.adapters.firestore.keys import document_key
from notifier.domain.errors import Rejected
from notifier.domain.events import Delivery
from tests.integration.test_store import Clock, make_store

FIRST = Delivery(
    message_id="23",
    publish_time="2026-11-30T10:00:00Z",
    subscription="projects/p/subscriptions/notifier",
    delivery_attempt=1,
)
FORGED = Delivery(
    message_id="23",
    publish_time="2030-01-01T00:00:00Z",
    subscription="projects/evil/subscriptions/forged",
)


def test_a_later_delivery_counts_itself_but_never_rewrites_the_record(db):
    clock = Clock()
    store = make_store(db, clock)
    doc_id = store.reject(Rejected("not_json", "the message is not JSON"), FIRST, b"{original")
    first = db.collection("rejected").document(doc_id).get().to_dict()
    clock.now = clock.now.replace(year=clock.now.year + 1)

    again = store.reject(Rejected("not_object", "a list"), FORGED, b"[forged, much longer]")

    assert again == doc_id == document_key("pubsub-23")
    saved = db.collection("rejected").document(doc_id).get().to_dict()
    kept = ("raw", "raw_size", "publish_time", "subscription", "reason", "detail", "rejected_at")
    assert {k: saved[k] for k in kept} == {k: first[k] for k in kept}
    assert (saved["raw"], saved["publish_time"], saved["subscription"]) == (
        b"{original",
        "2026-11-30T10:00:00Z",
        "projects/p/subscriptions/notifier",
    )
    assert saved["deliveries"] == 2
    assert saved["last_delivery_at"] > first["last_delivery_at"]


def test_raw_size_is_the_size_received_not_the_size_kept(db):
    store = make_store(db)  # keeps 64 bytes of raw
    doc_id = store.reject(
        Rejected("too_large"), Delivery(message_id="big"), b"x" * 64, received_size=5_000_000
    )
    saved = db.collection("rejected").document(doc_id).get().to_dict()
    assert (saved["raw_size"], saved["raw_truncated"], len(saved["raw"])) == (5_000_000, True, 64)
