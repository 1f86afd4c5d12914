"""The Firestore adapter against the real emulator: atomic claims, leases, records."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.counting import firestore_rpcs
from notifier.adapters.firestore.keys import document_key, natural_id, unpack
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.claims import ClaimState
from notifier.domain.decoding import event_from
from notifier.domain.errors import Rejected, SvixUnavailable
from notifier.domain.events import Delivery
from tests import factories
from tests.conftest import PROJECT
from tests.tcp_proxy import TcpProxy


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
    snapshot = ref_of(db, event.id).get()
    assert renewed is not None and renewed.version == snapshot.update_time != claim.version
    saved = snapshot.to_dict()
    assert saved["lease_expires_at"] == clock.now + timedelta(seconds=10)
    assert saved["updated_at"] == clock.now
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


# -- what each claim and record says, field by field (survivors of `make mutate`) ---------------


def ref_of(db, event_id):
    return db.collection("notifications").document(document_key(event_id))


def test_a_new_record_starts_its_svix_window_at_its_creation_with_the_events_time(db):
    clock = Clock()
    store, event = make_store(db, clock), an_event()
    store.claim(event, Delivery())
    saved = record(db, event.id)
    assert saved["created_at"] == saved["updated_at"] == clock.now
    assert "svix_first_call_at" not in saved  # its creation stands for the first Svix call
    assert saved["event_time"] == event.time


def test_a_taken_over_claim_says_all_a_resend_needs(db):
    clock = Clock()
    store, event = make_store(db, clock, lease=30), an_event()
    first = clock.now
    store.claim(event, Delivery())
    clock.now += timedelta(seconds=31)  # the holder died; its lease ran out
    claim = store.claim(event, Delivery(delivery_attempt=2))
    snapshot = ref_of(db, event.id).get()
    assert (claim.event_id, claim.state, claim.attempts, claim.replays) == (
        event.id,
        ClaimState.CLAIMED,
        2,
        0,
    )
    assert claim.svix_first_call_at == first  # the first claim's, kept
    assert claim.version == snapshot.update_time  # what mark_failed and release condition on
    saved = snapshot.to_dict()
    assert (saved["status"], saved["updated_at"]) == ("pending", clock.now)
    assert saved["lease_expires_at"] == clock.now + timedelta(seconds=30)


def test_a_reopened_record_is_claimed_with_its_replays(db):
    clock = Clock()
    store, event = make_store(db, clock), an_event()
    store.mark_failed(store.claim(event, Delivery()), SvixUnavailable("x"))
    assert store.reopen(event.id)
    claim = store.claim(event, Delivery(delivery_attempt=2))
    assert (claim.state, claim.replays, claim.attempts) == (ClaimState.CLAIMED, 1, 2)


def written_before(db, event, **fields):
    """A pending record of ``event`` with only ``fields`` besides, as an older version left it."""
    record = {"status": "pending", "project": event.project, "event_type": event.type}
    ref_of(db, event.id).set({**record, **fields})


def test_a_record_from_before_the_window_field_takes_its_creation_as_the_first_call(db):
    clock = Clock()
    store, event = make_store(db, clock), an_event()
    created = clock.now - timedelta(hours=30)
    written_before(db, event, created_at=created)  # no attempts, first call or lease
    claim = store.claim(event, Delivery(delivery_attempt=2))
    assert (claim.state, claim.attempts, claim.svix_first_call_at) == (
        ClaimState.CLAIMED,
        1,
        created,
    )
    assert "svix_first_call_at" not in record(db, event.id)  # its creation still stands for it


def test_a_first_call_unlike_the_creation_is_the_one_kept(db):
    clock = Clock()
    store, event = make_store(db, clock), an_event()
    called = clock.now - timedelta(hours=2)
    written_before(
        db, event, attempts=1, created_at=called - timedelta(hours=5), svix_first_call_at=called
    )
    claim = store.claim(event, Delivery(delivery_attempt=2))
    assert claim.svix_first_call_at == called
    assert record(db, event.id)["svix_first_call_at"] == called


@pytest.mark.parametrize("status", ["sent", "failed"])
def test_a_final_record_is_claimed_with_its_id_and_attempts(db, status):
    store, event = make_store(db), an_event()
    claim = store.claim(event, Delivery())
    store.release(claim, SvixUnavailable("x"))
    claim = store.claim(event, Delivery(delivery_attempt=2))
    if status == "sent":
        store.mark_sent(claim, "msg_3", 202)
    else:
        store.mark_failed(claim, SvixUnavailable("x"))
    again = store.claim(event, Delivery(delivery_attempt=3))
    assert (again.event_id, again.state.value, again.attempts) == (event.id, status, 2)


def test_a_held_record_is_claimed_with_its_id_and_attempts(db):
    store, event = make_store(db), an_event()
    store.claim(event, Delivery())
    held = store.claim(event, Delivery(delivery_attempt=2))
    assert (held.event_id, held.state, held.attempts) == (event.id, ClaimState.HELD, 1)


def test_a_takeover_lost_between_the_read_and_the_write_is_held(db):
    """Another delivery takes the expired claim between this one's read and its write."""
    clock = Clock()
    store, event = make_store(db, clock, lease=30), an_event()
    store.claim(event, Delivery())
    clock.now += timedelta(seconds=31)
    rival = make_store(db, clock, lease=30)

    raced = []

    def racing_clock():
        if not raced:  # once: the rival claims while this claim decides
            raced.append(rival.claim(event, Delivery(delivery_attempt=2)).state)
        return clock()

    store._clock = racing_clock
    lost = store.claim(event, Delivery(delivery_attempt=2))
    assert raced == [ClaimState.CLAIMED]
    assert (lost.event_id, lost.state, lost.attempts) == (event.id, ClaimState.HELD, 1)
    assert record(db, event.id)["attempts"] == 2  # the rival's claim, not two


def test_an_id_of_another_project_is_a_conflict_for_this_event(db):
    store, event = make_store(db), an_event(project="acme")
    store.claim(event, Delivery())
    other = an_event(project="globex", id=event.id)
    claim = store.claim(other, Delivery())
    assert (claim.event_id, claim.state, claim.recorded_as) == (
        event.id,
        ClaimState.CONFLICT,
        ("acme", event.type),
    )


def test_sent_records_when_and_clears_the_last_error(db):
    clock = Clock()
    store, event = make_store(db, clock), an_event()
    store.release(store.claim(event, Delivery()), SvixUnavailable("boom"))
    claim = store.claim(event, Delivery(delivery_attempt=2))
    clock.now += timedelta(seconds=5)
    store.mark_sent(claim, "msg_1", 202)
    saved = record(db, event.id)
    assert (saved["sent_at"], saved["updated_at"]) == (clock.now, clock.now)
    assert "last_error" not in saved


@pytest.mark.parametrize(
    ("write", "stamped", "dropped"),
    [
        ("mark_failed", ("failed_at", "last_error_at", "updated_at"), "lease_expires_at"),
        ("release", ("last_error_at", "updated_at"), None),
    ],
)
def test_failed_and_release_record_when(db, write, stamped, dropped):
    from notifier.domain.errors import Permanent

    clock = Clock()
    store, event = make_store(db, clock), an_event()
    claim = store.claim(event, Delivery())
    clock.now += timedelta(seconds=5)
    getattr(store, write)(claim, Permanent("bad", status=400))
    saved = record(db, event.id)
    assert tuple(saved[name] for name in stamped) == (clock.now,) * len(stamped)
    assert dropped is None or dropped not in saved


def test_a_look_says_what_the_record_says_and_the_claim_decides_on_that_one_read(db):
    store, event = make_store(db), an_event()
    store.mark_sent(store.claim(event, Delivery(message_id="m-1")), "msg_1", 202)
    with firestore_rpcs() as rpcs:
        looked = store.look(event.id)
        again = store.claim(event, Delivery(message_id="m-2", delivery_attempt=2), looked)
        calls, _ = rpcs.take()
    assert (looked.event_id, looked.found, looked.status) == (event.id, True, "sent")
    assert (looked.project, looked.event_type) == (event.project, event.type)
    assert (looked.pubsub_message_id, looked.attempts) == ("m-1", 1)
    assert looked.svix_message_id == "msg_1"
    assert (again.state, again.svix_message_id) == (ClaimState.SENT, "msg_1")
    assert dict(calls) == {"batch_get_documents": 1}  # the look's read, not a second one


def test_a_look_that_finds_no_record_lets_the_claim_create_it_without_reading_again(db):
    store, event = make_store(db), an_event()
    with firestore_rpcs() as rpcs:
        looked = store.look(event.id)
        claim = store.claim(event, Delivery(delivery_attempt=2), looked)
        calls, _ = rpcs.take()
    assert (looked.event_id, looked.found, looked.attempts) == (event.id, False, 0)
    assert (claim.state, claim.attempts) == (ClaimState.CLAIMED, 1)
    assert dict(calls) == {"batch_get_documents": 1, "commit": 1}


def test_a_look_at_a_record_from_before_the_attempts_field_counts_none(db):
    store, event = make_store(db), an_event()
    written_before(db, event)
    looked = store.look(event.id)
    assert (looked.found, looked.status, looked.attempts, looked.svix_message_id) == (
        True,
        "pending",
        0,
        None,
    )


@pytest.fixture
def stalled_firestore(monkeypatch):
    """A Firestore that accepts connections and never answers (a loopback port that listens)."""
    from google.cloud import firestore

    import notifier.adapters.firestore.store as store_module

    with socket.create_server(("127.0.0.1", 0)) as server:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setattr(store_module, "TIMEOUT", 0.5)  # each call's bound, made short
        yield firestore.Client(project="notifier-test")


@pytest.mark.parametrize(
    "write",
    [
        "claim",
        "reclaim",
        "look",
        "mark_sent",
        "mark_failed",
    ],
)
def test_a_write_to_a_firestore_that_never_answers_ends_at_its_timeout(stalled_firestore, write):
    """Each call carries its timeout (a first claim creates, a redelivery's reads first); without
    it the client's default (a minute) would hold the delivery past Pub/Sub's ack deadline."""
    from notifier.domain.claims import Claim

    store = make_store(stalled_firestore)
    claim = Claim("evt_stalled", ClaimState.CLAIMED, 1, version=datetime.now(UTC))
    done: list[BaseException] = []

    def call():
        try:
            if write in ("claim", "reclaim"):
                store.claim(an_event(), Delivery(delivery_attempt=2 if write == "reclaim" else 1))
            elif write == "look":
                store.look("evt_stalled")
            elif write == "mark_sent":
                store.mark_sent(claim, "msg_1", 202)
            else:
                store.mark_failed(claim, SvixUnavailable("x"))
        except BaseException as exc:  # the outcome, whatever it is, for the test's thread
            done.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(20)  # 40 times the bound: only a call without one is still waiting
    assert not worker.is_alive(), f"{write} is still waiting on a Firestore that never answers"
    assert [type(e).__name__ for e in done] == ["StoreUnavailable"]


def test_a_renewal_of_a_firestore_that_never_answers_ends_within_a_third_of_the_lease(
    stalled_firestore, monkeypatch
):
    """Before the lease runs out, so that its holder knows it lost the claim in time; and not
    sooner, so that a slow Firestore has the whole period to answer."""
    import notifier.adapters.firestore.store as store_module
    from notifier.domain.claims import Claim

    monkeypatch.setattr(store_module, "TIMEOUT", 30.0)  # a third of the lease is the bound here
    store = make_store(stalled_firestore, lease=3.0)
    claim = Claim("evt_stalled", ClaimState.CLAIMED, 1, version=datetime.now(UTC))
    done: list[BaseException] = []

    def renew():
        try:
            store.renew(claim)
        except BaseException as exc:
            done.append(exc)

    worker = threading.Thread(target=renew, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(6)  # the lease is 3 s: a renewal still waiting here outlived it
    assert not worker.is_alive(), "the renewal is still waiting on a Firestore that never answers"
    assert time.monotonic() - started >= 0.9  # its period (1 s), not a quarter of the lease
    assert [type(e).__name__ for e in done] == ["StoreUnavailable"]


@pytest.fixture
def down_firestore(monkeypatch):
    """A Firestore that is down: nothing listens on its port, every connection is refused."""
    from google.cloud import firestore

    import notifier.adapters.firestore.store as store_module

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{port}")
    monkeypatch.setattr(store_module, "TIMEOUT", 0.5)
    return firestore.Client(project="notifier-test")


@pytest.mark.parametrize("read", ["reclaim", "look"])
def test_a_read_of_a_firestore_that_is_down_gives_up_at_its_timeout(down_firestore, read):
    """Refused connections are retried, but only until the read's timeout."""
    store = make_store(down_firestore)
    done: list[BaseException] = []

    def call():
        try:
            if read == "look":
                store.look("evt_down")
            else:
                store.claim(an_event(), Delivery(delivery_attempt=2))
        except BaseException as exc:
            done.append(exc)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), f"{read} is still retrying a Firestore that is down"
    assert [type(e).__name__ for e in done] == ["StoreUnavailable"]


def test_a_read_whose_connection_is_reset_is_tried_again_and_answers(
    db, firestore_emulator, monkeypatch
):
    """A reset connection (a Firestore front end restarting) costs a retry, not the delivery."""
    from google.cloud import firestore

    event = an_event()
    make_store(db).claim(event, Delivery(message_id="m-1"))
    with TcpProxy(firestore_emulator.host_port) as proxy:
        monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", proxy.address)
        store = make_store(firestore.Client(project=PROJECT))
        assert store.look(event.id).found  # connected through the proxy
        stalling = threading.Thread(target=proxy.stall, args=(0.3,), daemon=True)
        stalling.start()
        while not proxy.stalled:
            time.sleep(0.01)
        looked = store.look(event.id)  # waits on the stalled connection; reset; tried again
        stalling.join()
        assert proxy.resets == 1  # the read was cut, once
    assert (looked.found, looked.pubsub_message_id) == (True, "m-1")
