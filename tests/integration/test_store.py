"""The Firestore adapter against the real emulator: atomic claims, leases, records."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from notifier.adapters.firestore.keys import document_key, natural_id, unpack
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.claims import ClaimState
from notifier.domain.decoding import event_from
from notifier.domain.errors import Rejected, SvixUnavailable
from notifier.domain.events import Delivery
from tests import factories


class Clock:
    def __init__(self):
        self.now = datetime.now(UTC)

    def __call__(self):
        return self.now


def make_store(db, clock=None, lease=60.0):
    return FirestoreStore(
        db, lease_seconds=lease, ttl_days=30, raw_limit=64, clock=clock or Clock()
    )


def an_event(**overrides):
    return event_from(json.loads(json.dumps(factories.event(**overrides))), max_bytes=2**20)


def record(db, event_id):
    return db.collection("notifications").document(document_key(event_id)).get().to_dict()


def test_first_claim_creates_a_pending_record_that_can_resend_without_pubsub(db):
    store, event = make_store(db), an_event(project="globex", type="payment.succeeded")
    claim = store.claim(event, Delivery(message_id="42"))
    assert (claim.state, claim.attempts) == (ClaimState.CLAIMED, 1)
    saved = record(db, event.id)
    assert saved["status"] == "pending"
    assert (saved["project"], saved["event_type"], saved["attempts"]) == (
        "globex",
        "payment.succeeded",
        1,
    )
    assert json.loads(unpack(saved["payload"])) == event.payload
    assert saved["pubsub_message_id"] == "42"
    assert saved["expires_at"] > saved["created_at"] + timedelta(days=29)


def test_a_live_claim_is_held_against_other_deliveries(db):
    store, event = make_store(db), an_event()
    store.claim(event, Delivery())
    second = store.claim(event, Delivery())
    assert second.state is ClaimState.HELD
    assert 0 < second.held_for <= 60


def test_sent_is_final_and_drops_the_payload(db):
    store, event = make_store(db), an_event()
    claim = store.claim(event, Delivery())
    store.mark_sent(claim, "msg_1", 202)
    saved = record(db, event.id)
    assert (saved["status"], saved["svix_message_id"], saved["svix_status"]) == (
        "sent",
        "msg_1",
        202,
    )
    assert "payload" not in saved and "lease_expires_at" not in saved
    again = store.claim(event, Delivery())
    assert (again.state, again.svix_message_id) == (ClaimState.SENT, "msg_1")


def test_failed_is_final_with_the_error(db):
    store, event = make_store(db), an_event()
    claim = store.claim(event, Delivery())
    from notifier.domain.errors import Permanent

    assert store.mark_failed(claim, Permanent("validation: bad", status=422))
    saved = record(db, event.id)
    assert saved["status"] == "failed"
    assert saved["last_error"] == "svix_rejected 422: validation: bad"
    assert store.claim(event, Delivery()).state is ClaimState.FAILED


def test_release_keeps_it_pending_and_lets_the_next_delivery_take_over(db):
    store, event = make_store(db), an_event()
    claim = store.claim(event, Delivery())
    assert store.release(claim, SvixUnavailable("boom", status=503))
    saved = record(db, event.id)
    assert (saved["status"], saved["last_error"]) == ("pending", "svix_unavailable 503: boom")
    again = store.claim(event, Delivery())
    assert (again.state, again.attempts) == (ClaimState.CLAIMED, 2)
    assert record(db, event.id)["attempts"] == 2


def test_a_release_after_a_rate_limit_holds_the_claim_until_svix_said_to_come_back(db):
    clock = Clock()
    store, event = make_store(db, clock, lease=60), an_event()
    claim = store.claim(event, Delivery())
    assert store.release(claim, SvixUnavailable("429"), hold=20)
    clock.now += timedelta(seconds=19)
    assert store.claim(event, Delivery()).state is ClaimState.HELD
    clock.now += timedelta(seconds=2)
    assert store.claim(event, Delivery()).state is ClaimState.CLAIMED


def test_a_rate_limit_hold_outlasts_the_short_lease_up_to_300_s(db):
    clock = Clock()
    store = make_store(db, clock, lease=10)
    asked, absurd = an_event(), an_event()
    assert store.release(store.claim(asked, Delivery()), SvixUnavailable("429"), hold=120)
    assert store.release(store.claim(absurd, Delivery()), SvixUnavailable("429"), hold=86400)
    assert record(db, asked.id)["lease_expires_at"] == clock.now + timedelta(seconds=120)
    assert record(db, absurd.id)["lease_expires_at"] == clock.now + timedelta(seconds=300)


def test_concurrent_claims_of_a_new_event_have_one_winner(db):
    store, event = make_store(db), an_event()
    barrier = threading.Barrier(16)

    def claim(_):
        barrier.wait()
        return store.claim(event, Delivery()).state

    with ThreadPoolExecutor(16) as pool:
        states = list(pool.map(claim, range(16)))
    assert states.count(ClaimState.CLAIMED) == 1
    assert states.count(ClaimState.HELD) == 15


def test_an_expired_lease_is_taken_over_once_and_the_old_holder_cannot_overwrite(db):
    clock = Clock()
    store, event = make_store(db, clock, lease=30), an_event()
    dead = store.claim(event, Delivery())
    clock.now += timedelta(seconds=31)  # the holder died; its lease ran out
    barrier = threading.Barrier(8)

    def claim(_):
        barrier.wait()
        return store.claim(event, Delivery())

    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(claim, range(8)))
    winners = [c for c in claims if c.state is ClaimState.CLAIMED]
    assert len(winners) == 1 and winners[0].attempts == 2
    assert not store.release(dead, SvixUnavailable("late"))  # precondition: no longer its claim
    assert "last_error" not in record(db, event.id)
    store.mark_sent(winners[0], "msg_9", 202)
    assert record(db, event.id)["status"] == "sent"


def test_a_renewal_extends_the_lease_and_the_holder_writes_on_with_its_new_version(db):
    clock = Clock()
    store, event = make_store(db, clock, lease=10), an_event()
    claim = store.claim(event, Delivery())
    clock.now += timedelta(seconds=8)
    renewed = store.renew(claim)
    assert renewed is not None and renewed.version != claim.version
    assert record(db, event.id)["lease_expires_at"] == clock.now + timedelta(seconds=10)
    clock.now += timedelta(seconds=8)  # 16 s after the claim: the first lease alone had run out
    assert store.claim(event, Delivery()).state is ClaimState.HELD
    assert not store.release(claim, SvixUnavailable("stale"))  # the old version is not the claim
    assert store.release(renewed, SvixUnavailable("boom", status=503))
    assert record(db, event.id)["last_error"] == "svix_unavailable 503: boom"


def test_a_renewal_of_a_claim_taken_over_or_sent_finds_it_gone(db):
    clock = Clock()
    store, event = make_store(db, clock, lease=10), an_event()
    stalled = store.claim(event, Delivery())
    clock.now += timedelta(seconds=11)  # its holder stalled past its lease: taken over
    taker = store.claim(event, Delivery())
    assert taker.state is ClaimState.CLAIMED
    assert store.renew(stalled) is None
    store.mark_sent(taker, "msg_1", 202)
    assert store.renew(taker) is None  # sent is final: nothing left to hold
    assert "lease_expires_at" not in record(db, event.id)


def test_rejections_are_kept_once_per_message_with_the_raw_bytes_truncated(db):
    store = make_store(db)
    rejection = Rejected("schema_invalid", "1 schema error(s)", errors=["/time: bad"])
    raw = b"x" * 100
    first = store.reject(rejection, Delivery(message_id="1234", subscription="s"), raw)
    second = store.reject(rejection, Delivery(message_id="1234", subscription="s"), raw)
    assert first == second == document_key("pubsub-1234")
    saved = db.collection("rejected").document(first).get().to_dict()
    assert (saved["reason"], saved["errors"], saved["deliveries"]) == (
        "schema_invalid",
        ["/time: bad"],
        2,
    )
    assert (saved["raw"], saved["raw_size"], saved["raw_truncated"]) == (b"x" * 64, 100, True)


@pytest.mark.parametrize("message_id", ["", "../../etc", "a/b", "__x__" * 40])
def test_rejections_never_use_an_unsafe_message_id_as_a_path(db, message_id):
    store = make_store(db)
    doc_id = store.reject(Rejected("not_json"), Delivery(message_id=message_id), b"{")
    assert natural_id(doc_id).startswith(("sha256-", "pubsub-")) and "/" not in doc_id
    assert db.collection("rejected").document(doc_id).get().exists


def test_applications_are_recorded_once(db):
    store = make_store(db)
    assert store.application_id("acme") is None
    store.save_application("acme", "app_1")
    store.save_application("acme", "app_2")  # a racing instance: the first record stands
    assert store.application_id("acme") == "app_1"
    saved = db.collection("applications").document("acme").get().to_dict()
    assert (saved["project"], saved["svix_app_id"]) == ("acme", "app_1")
