"""Short claims renewed while their delivery works, a SIGTERM that ends the waits, and outcome
writes tried again: the use case on the in-memory ports, on a clock the test moves (the lease
keeper renews when the test says, as its thread would at that time)."""

from __future__ import annotations

import os
import signal
import threading
import time

from functions_framework import create_app

from notifier import bootstrap
from notifier.domain.decoding import event_from
from notifier.domain.errors import RateLimited, StoreUnavailable, SvixUnavailable
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
    assert record["last_error"].startswith("shutting_down")
    assert 25 <= record["hold"] <= 26  # what is left of Svix's 30 s: nobody calls it sooner
    assert 25 <= outcome.retry_after <= 26


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
    assert sum(clock.sleeps) < 1


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
    assert [t.name for t in renewers] == ["lease-keeper"]  # one thread for all of them
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
