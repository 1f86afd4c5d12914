"""Short claims renewed while their delivery works, a SIGTERM that ends the waits, and outcome
writes tried again: the use case on the in-memory ports, on a clock the test moves (the lease
keeper renews when the test says, as its thread would at that time)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from functions_framework import create_app

from notifier import bootstrap
from notifier.domain.claims import Claim, ClaimState
from notifier.domain.decoding import event_from
from notifier.domain.errors import (
    ClaimLost,
    Permanent,
    RateLimited,
    StoreUnavailable,
    SvixUnavailable,
)
from notifier.domain.events import Delivery
from notifier.handlers import shutdown
from notifier.usecases.applications import ApplicationDirectory
from notifier.usecases.exactly_once import Notifier
from notifier.usecases.leases import LeaseKeeper
from tests import factories, fakes
from tests.unit.test_entry_points import MAIN
from tests.unit.test_exactly_once import an_event
from tests.unit.test_exactly_once import make as make_notifier

LEASE = 10.0


class Time:
    """The notifier's and the keeper's clock: a sleep moves it, and the keeper renews whatever
    fell due meanwhile, every third of a second (its thread would)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.keeper: LeaseKeeper | None = None
        self.during_sleep: list = []  # callables run once, at the next sleep
        self.stopping = threading.Event()  # a wait ends when it is set, as the real one does

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.during_sleep:
            self.during_sleep.pop(0)()
        end = self.now + seconds
        while self.now < end and not self.stopping.is_set():
            self.now = min(end, self.now + 1 / 3)
            if self.keeper is not None:
                self.keeper.renew_due()


def make(script=(), *, budget=60.0, store=None, stopping=None):
    store, clock = store or fakes.MemoryStore(), Time()
    clock.stopping = stopping or clock.stopping
    clock.keeper = LeaseKeeper(store.renew, LEASE, clock=clock, background=False)
    return make_notifier(
        script, budget, store=store, clock=clock, leases=clock.keeper, stopping=stopping
    )


def test_a_delivery_shorter_than_a_period_is_never_renewed():
    notifier, store, sender, _ = make([SvixUnavailable("503", status=503)])
    event = an_event()
    assert notifier.deliver(event).kind == "sent"  # one 0.5 s backoff: under a third of 10 s
    assert store.notifications[event.id].get("renewals", 0) == 0
    assert len(sender.sends) == 2


def test_a_long_delivery_is_renewed_every_third_of_the_lease_until_it_ends():
    waits = [RateLimited(retry_after=5) for _ in range(4)]  # 20 s of waiting: twice the lease
    notifier, store, sender, clock = make(waits)
    event = an_event()
    assert notifier.deliver(event).kind == "sent"
    renewals = store.notifications[event.id]["renewals"]
    assert 20 / (LEASE / 3) - 1 <= renewals <= 20 / (LEASE / 3) + 1
    clock.sleep(30)  # the delivery ended: nothing renews its claim any more
    assert store.notifications[event.id]["renewals"] == renewals
    assert len(sender.sends) == 5


def test_a_holder_whose_claim_was_taken_stops_before_its_next_svix_call_and_writes_nothing():
    notifier, store, sender, clock = make([RateLimited(retry_after=8)])
    event = an_event()

    def taken_over():  # its holder stalled; its lease ran out; another delivery took over
        store.notifications[event.id]["held"] = False
        store.claim(event, Delivery())

    clock.during_sleep.append(taken_over)
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "claim_lost")
    assert outcome.error.detail == "the claim was taken by another delivery"
    assert len(sender.sends) == 1  # no call after the 429
    record = store.notifications[event.id]
    assert (record["status"], record["held"], record["holder"]) == ("pending", True, 2)
    assert "last_error" not in record  # the new holder's record: the old one wrote nothing


def test_a_holder_whose_renewal_fails_stops_before_its_next_svix_call():
    notifier, store, sender, clock = make([RateLimited(retry_after=8)])
    event = an_event()
    clock.during_sleep.append(lambda: setattr(store, "unavailable", True))
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "claim_lost")
    assert "store_unavailable" in str(outcome.error)
    assert len(sender.sends) == 1


def test_sigterm_during_a_429_wait_releases_the_claim_keeping_the_retry_after_hold():
    stopping = threading.Event()
    notifier, store, sender, clock = make([RateLimited(retry_after=30)], stopping=stopping)

    def sigterm():
        clock.now += 4  # 4 s into the 30 s wait
        stopping.set()

    clock.during_sleep.append(sigterm)
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "shutting_down")
    assert len(sender.sends) == 1
    record = store.notifications[event.id]
    assert (record["status"], record["held"]) == ("pending", False)
    assert record["last_error"] == "shutting_down: the instance is stopping"
    assert 25 <= record["hold"] <= 26  # what is left of Svix's 30 s: nobody calls it sooner
    assert 25 <= outcome.retry_after <= 26
    assert (outcome.retries, outcome.waited) == (0, 0.0)  # stopped in its first wait


def test_sigterm_during_a_backoff_asks_pubsub_to_come_back_in_a_second():
    stopping = threading.Event()
    notifier, _, _, clock = make([SvixUnavailable("503", status=503)], stopping=stopping)
    clock.during_sleep.append(stopping.set)
    outcome = notifier.deliver(an_event())
    assert (outcome.error.code, outcome.retry_after) == ("shutting_down", 1.0)


def test_sigterm_ends_a_real_wait_at_once():
    """Without a test sleep the waits are the stop event's: SIGTERM ends a 60 s wait now."""
    stopping, store = threading.Event(), fakes.MemoryStore()
    sender = fakes.ScriptedSvix([RateLimited(retry_after=60)])
    notifier = Notifier(
        store, sender, ApplicationDirectory(store, sender), retry_budget=90, stopping=stopping
    )
    threading.Timer(0.2, stopping.set).start()
    started = time.monotonic()
    outcome = notifier.deliver(an_event())
    assert time.monotonic() - started < 5
    assert outcome.error.code == "shutting_down"


def test_a_delivery_inside_its_svix_call_at_sigterm_finishes_and_records():
    stopping = threading.Event()
    notifier, store, sender, _ = make(stopping=stopping)
    event = an_event()
    send = sender.send

    def send_then_sigterm(e, replays=0):
        stopping.set()
        return send(e, replays)

    sender.send = send_then_sigterm
    assert notifier.deliver(event).kind == "sent"
    assert store.notifications[event.id]["status"] == "sent"


class FlakyStore(fakes.MemoryStore):
    """mark_sent fails its first ``failures`` times, as a reset Firestore connection does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.writes = 0

    def mark_sent(self, claim, svix_message_id, svix_status):
        self.writes += 1
        if self.writes <= self.failures:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        super().mark_sent(claim, svix_message_id, svix_status)


def test_an_outcome_write_that_failed_is_tried_again_at_once_without_a_second_svix_call():
    store = FlakyStore(failures=2)
    notifier, _, sender, clock = make(store=store)
    event = an_event()
    outcome = notifier.deliver(event)
    assert outcome.kind == "sent"
    assert store.notifications[event.id]["status"] == "sent"
    assert (store.writes, len(sender.sends)) == (3, 1)
    assert clock.sleeps == [0.2, 0.5]  # short pauses, on the notifier's sleep


def test_an_outcome_write_that_keeps_failing_frees_the_claim_for_the_next_delivery():
    store = FlakyStore(failures=99)
    notifier, _, sender, _ = make(store=store)
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code, outcome.svix_message_id) == (
        "retried",
        "store_unavailable",
        f"msg_{event.id}",
    )
    assert store.writes == 3  # bounded
    record = store.notifications[event.id]
    assert (record["status"], record["held"]) == ("pending", False)  # no lease to wait out
    store.failures = 0
    assert notifier.deliver(event).kind == "sent"  # Svix's 409 answers with its message
    assert len(sender.messages) == 1


def test_one_background_thread_renews_every_live_claim_and_stops_with_each_delivery():
    store, renewers = fakes.MemoryStore(), set()

    def renew(claim):
        renewers.add(threading.current_thread())
        return store.renew(claim)

    keeper = LeaseKeeper(renew, 0.3)  # a renewal every 0.1 s, on the real clock
    events = [an_event() for _ in range(5)]
    leases = [keeper.hold(store.claim(e, Delivery()), time.monotonic()) for e in events]
    time.sleep(0.5)
    assert [(t.name, t.daemon) for t in renewers] == [("lease-keeper", True)]  # one for all
    for lease in leases:
        keeper.check(lease)  # still this delivery's
        keeper.end(lease)
    counts = [store.notifications[e.id]["renewals"] for e in events]
    assert all(n >= 2 for n in counts), counts
    time.sleep(0.3)
    assert [store.notifications[e.id]["renewals"] for e in events] == counts


def test_after_sigterm_a_post_waiting_for_another_holder_answers_503_at_once():
    store = fakes.MemoryStore()
    event = factories.event()
    store.claim(event_from(event, max_bytes=2**20), Delivery())  # another request holds it
    app = create_app(target="notifications", source=MAIN, signature_type="http").test_client()
    with bootstrap.provided(fakes.dependencies(store, retry_budget_seconds=30)):
        shutdown.STOPPING.set()
        try:
            started = time.monotonic()
            answer = app.post("/", json=event)
        finally:
            shutdown.STOPPING.clear()
    assert (answer.status_code, answer.json["error"]) == (503, "claim_held")
    assert time.monotonic() - started < 2  # not the 30 s budget


def test_sigterm_sets_stopping_then_runs_the_handler_it_found_once_however_often_chained():
    called = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: called.append(signum))
    try:
        shutdown.chain_sigterm()
        shutdown.chain_sigterm()  # main imported again (create_app per test): not chained twice
        os.kill(os.getpid(), signal.SIGTERM)
        assert shutdown.STOPPING.wait(2)
        assert called == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)
        shutdown.STOPPING.clear()


def test_an_outcome_write_that_timed_out_is_not_tried_again():
    """A stalled store: the write spent its timeout; a second would only hold the claim longer."""
    store = FlakyStore(failures=99)
    notifier, _, sender, clock = make(store=store)
    mark_sent = store.mark_sent

    def stalled(claim, message_id, status):
        clock.now += 10  # the Firestore call's timeout
        mark_sent(claim, message_id, status)

    store.mark_sent = stalled
    outcome = notifier.deliver(an_event())
    assert (outcome.kind, store.writes, len(sender.sends)) == ("retried", 1, 1)


class SlowStore(FlakyStore):
    """mark_sent's first try fails after ``takes`` seconds of the notifier's clock."""

    def __init__(self, clock: Time, takes: float) -> None:
        super().__init__(failures=1)
        self.clock, self.takes = clock, takes

    def mark_sent(self, claim, svix_message_id, svix_status):
        if self.writes == 0:
            self.clock.now += self.takes
        super().mark_sent(claim, svix_message_id, svix_status)


@pytest.mark.parametrize(
    ("waits", "takes"),
    [([], 2.0), ([RateLimited(retry_after=5)], 0.0)],
    ids=["failing-at-the-windows-end", "late-in-the-delivery"],
)
def test_an_outcome_write_that_failed_within_its_window_is_tried_again(waits, takes):
    """The window counts from the write's first try: 2 s, however long the delivery took."""
    clock = Time()
    store = SlowStore(clock, takes)
    notifier, _, _, _ = make_notifier(waits, 60.0, store=store, clock=clock)
    event = an_event()
    assert notifier.deliver(event).kind == "sent"
    assert (store.writes, store.notifications[event.id]["status"]) == (2, "sent")


def test_a_real_wait_ends_at_its_time_and_the_delivery_goes_on():
    """Without a test sleep the waits are the stop event's: a 0.5 s backoff, then the send."""
    stopping, store = threading.Event(), fakes.MemoryStore()
    sender = fakes.ScriptedSvix([SvixUnavailable("503", status=503)])
    notifier = Notifier(
        store, sender, ApplicationDirectory(store, sender), retry_budget=30, stopping=stopping
    )
    guard = threading.Timer(10, stopping.set)  # a wait that would never end is stopped here
    guard.start()
    try:
        outcome = notifier.deliver(an_event())
    finally:
        guard.cancel()
    assert (outcome.kind, len(sender.sends)) == ("sent", 2)


def stopped_in_the_second_wait(clock, stopping):
    clock.during_sleep.extend([lambda: None, stopping.set])


@pytest.mark.parametrize(
    ("ending", "script", "budget", "written"),
    [
        ("refused", [Permanent("bad", status=422)], 60.0, ("failed", "svix_rejected 422", None)),
        ("out of budget", [RateLimited(retry_after=8)], 10.0, ("pending", "rate_limited 429", 8.0)),
        ("sigterm", [RateLimited(retry_after=30)], 60.0, ("pending", "shutting_down", 30.0)),
        ("renewal failed", [RateLimited(retry_after=8)], 60.0, ("pending", "claim_lost", 0.0)),
        ("record failed", [], 60.0, ("pending", "store_unavailable", 0.0)),
    ],
)
def test_a_renewed_claim_is_the_one_every_ending_writes_with(ending, script, budget, written):
    """The holder's conditioned writes carry the version its last renewal left (Firestore's
    update_time): with the claim as first granted they would find it changed, and write nothing."""
    stopping = threading.Event()
    store = FlakyStore(failures=99 if ending == "record failed" else 0)
    waits = [RateLimited(retry_after=8)]  # 8 s: two renewals, a new version each
    notifier, _, _, clock = make(waits + script, budget=budget, store=store, stopping=stopping)
    if ending == "sigterm":
        stopped_in_the_second_wait(clock, stopping)
    if ending == "renewal failed":  # the third renewal fails; the store is back for the release
        clock.during_sleep.extend([lambda: None, lambda: setattr(store, "unavailable", True)])
    event = an_event()
    outcome = notifier.deliver(event)
    record = store.notifications[event.id]
    assert record["renewals"] >= 2
    assert (record["status"], record["held"]) == (written[0], False)
    assert record["last_error"].startswith(written[1])
    assert record.get("hold") == written[2]  # what is left of Svix's Retry-After, if any
    if ending == "renewal failed":  # stopped at its check after the second wait
        assert (outcome.retries, outcome.waited) == (2, 16.0)


def test_a_renewal_falls_due_at_a_third_of_the_lease_and_a_claim_is_lost_at_two_thirds():
    """Exactly then: a renewal every period, and a holder stops with a period left to spare."""
    now, store, renewed = [0.0], fakes.MemoryStore(), []

    def renew(claim):
        renewed.append(claim.event_id)
        return store.renew(claim)

    keeper = LeaseKeeper(renew, 9.0, clock=lambda: now[0], background=False)
    late, early = an_event(), an_event()
    leases = [keeper.hold(store.claim(late, Delivery()), 0.0)]
    leases.append(keeper.hold(store.claim(early, Delivery()), -1.0))  # due a second sooner
    now[0] = 1.9
    keeper.renew_due()
    assert renewed == []
    now[0] = 3.0  # both due: the one due first is renewed first
    keeper.renew_due()
    assert renewed == [early.id, late.id]
    assert keeper.end(leases[0]).version == store.notifications[late.id]["holder"]
    stale = keeper.hold(Claim("evt_old", ClaimState.CLAIMED, 1), 0.0)  # never renewed
    now[0] = 6.0 - 1e-9
    keeper.check(stale)  # still a period and a bit before its lease runs out
    now[0] = 6.0
    with pytest.raises(ClaimLost) as lost:
        keeper.check(stale)
    assert lost.value.detail == "the lease was not renewed in time"
    keeper.end(leases[1])
    keeper.end(stale)
    now[0] = 100.0
    keeper.renew_due()  # their deliveries ended: nothing is renewed any more
    assert renewed == [early.id, late.id]


def test_a_keeper_without_its_thread_renews_only_when_told():
    store = fakes.MemoryStore()
    keeper = LeaseKeeper(store.renew, 0.3, background=False)  # due every 0.1 s, real clock
    event = an_event()
    keeper.hold(store.claim(event, Delivery()), time.monotonic())
    time.sleep(0.3)
    assert store.notifications[event.id].get("renewals", 0) == 0
    keeper.renew_due()
    assert store.notifications[event.id]["renewals"] == 1


def test_the_keepers_thread_waits_out_a_time_without_claims_and_renews_the_next():
    store = fakes.MemoryStore()
    keeper = LeaseKeeper(store.renew, 0.3)  # due every 0.1 s, real clock
    first, second = an_event(), an_event()
    keeper.end(keeper.hold(store.claim(first, Delivery()), time.monotonic()))
    time.sleep(0.3)  # past the first's due time: nothing held
    lease = keeper.hold(store.claim(second, Delivery()), time.monotonic())
    time.sleep(0.5)
    keeper.end(lease)
    assert store.notifications[second.id]["renewals"] >= 2


@pytest.mark.parametrize(("taken", "version"), [(False, "1.1"), (True, 1)])
def test_a_delivery_ending_during_a_renewal_waits_for_it_and_writes_with_its_version(
    taken, version
):
    """The renewal in flight lands first: its new version, or (the claim taken meanwhile) the
    version the holder had; and the keeper goes on renewing the other claims."""
    store, entered, land = fakes.MemoryStore(), threading.Event(), threading.Event()

    def renew(claim):
        entered.set()
        land.wait(5)
        return store.renew(claim)

    now = [0.0]
    keeper = LeaseKeeper(renew, 9.0, clock=lambda: now[0], background=False)
    event = an_event()
    lease = keeper.hold(store.claim(event, Delivery()), 0.0)
    now[0] = 3.0
    renewing = threading.Thread(target=keeper.renew_due, daemon=True)
    renewing.start()
    assert entered.wait(5)
    if taken:
        store.notifications[event.id]["held"] = False
    ended: list[Claim] = []
    ending = threading.Thread(target=lambda: ended.append(keeper.end(lease)), daemon=True)
    ending.start()
    time.sleep(0.2)
    assert ending.is_alive()  # it waits for the renewal in flight
    land.set()
    ending.join(5)
    renewing.join(5)
    assert [c.version for c in ended] == [version]
    other = an_event()
    keeper.hold(store.claim(other, Delivery()), 3.0)
    now[0] = 6.0
    land.set()
    keeper.renew_due()
    assert store.notifications[other.id]["renewals"] == 1


def test_a_delivery_that_ended_is_not_renewed_again():
    """Not even once more: a renewal after the end would be a write for nothing."""
    store, clock, tried = fakes.MemoryStore(), Time(), []

    def renew(claim):
        tried.append(claim.event_id)
        return store.renew(claim)

    clock.keeper = LeaseKeeper(renew, LEASE, clock=clock, background=False)
    notifier, _, _, _ = make_notifier(
        [RateLimited(retry_after=5)], 60.0, store=store, clock=clock, leases=clock.keeper
    )
    assert notifier.deliver(an_event()).kind == "sent"
    renewals = len(tried)
    assert renewals >= 1
    clock.sleep(30)
    assert len(tried) == renewals


def test_a_claim_held_while_the_keeper_renews_another_is_renewed_too():
    """A delivery may start while the keeper's thread is inside another claim's renewal."""
    store = fakes.MemoryStore()
    renewing, go_on = threading.Event(), threading.Event()
    first, second = an_event(), an_event()

    def renew(claim):
        if claim.event_id == first.id and not go_on.is_set():
            renewing.set()
            go_on.wait(5)  # the keeper is inside this renewal while the next claim is held
        return store.renew(claim)

    keeper = LeaseKeeper(renew, 0.3)  # a renewal every 0.1 s, on the real clock
    held = keeper.hold(store.claim(first, Delivery()), time.monotonic())
    assert renewing.wait(5)
    later = keeper.hold(store.claim(second, Delivery()), time.monotonic())
    go_on.set()
    deadline = time.monotonic() + 5
    while store.notifications[second.id].get("renewals", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    for lease in (held, later):
        keeper.check(lease)  # both still this process's
        keeper.end(lease)
    assert store.notifications[second.id]["renewals"] >= 1
