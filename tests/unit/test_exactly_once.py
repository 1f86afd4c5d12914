"""The Svix outcome table, on the in-memory fakes of the two ports (tests/fakes.py): the use case
itself, built by hand on purpose (its monotonic clock and sleep are the test's)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from notifier.config import Settings
from notifier.domain.decoding import event_from
from notifier.domain.errors import (
    BadCredentials,
    Permanent,
    RateLimited,
    SvixConflict,
    SvixUnavailable,
)
from notifier.domain.events import Delivery
from notifier.domain.outcomes import Sent
from notifier.usecases.applications import ApplicationDirectory
from notifier.usecases.exactly_once import Notifier
from tests import factories, fakes


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def make(script=(), budget=30.0, *, store=None, clock=None, **options):
    """The notifier on fakes, its clock and sleep the test's; ``options``: the Notifier's."""
    store, sender = store or fakes.MemoryStore(), fakes.ScriptedSvix(list(script))
    clock = clock or Clock()
    notifier = Notifier(
        store,
        sender,
        ApplicationDirectory(store, sender),
        retry_budget=budget,
        sleep=clock.sleep,
        clock=clock,
        **options,
    )
    return notifier, store, sender, clock


def an_event(**overrides):
    return event_from(json.loads(json.dumps(factories.event(**overrides))), max_bytes=2**20)


def seed(store, event, **fields):
    """A pending record of ``event`` as an earlier delivery left it (one attempt, released)."""
    store.notifications[event.id] = {
        "status": "pending",
        "project": event.project,
        "event_type": event.type,
        "attempts": 1,
        "held": False,
        **fields,
    }


def test_new_event_is_sent_once_into_the_project_application():
    notifier, store, sender, _ = make()
    event = an_event(project="globex")
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status, outcome.must_retry) == ("sent", 202, False)
    assert sender.sends == [("globex", event.id)]
    assert store.notifications[event.id]["status"] == "sent"
    assert store.applications == {"globex": "app_globex"}


def test_redelivery_of_a_sent_event_is_a_duplicate_without_svix():
    notifier, _, sender, _ = make()
    event = an_event()
    notifier.deliver(event)
    again = notifier.deliver(event)
    assert (again.kind, again.must_retry) == ("duplicate", False)
    assert len(sender.sends) == 1


def test_application_is_created_once_per_project():
    notifier, _, sender, _ = make()
    for _ in range(3):
        notifier.deliver(an_event(project="acme"))
    notifier.deliver(an_event(project="globex"))
    assert sender.apps == ["acme", "globex"]


def test_conflict_means_svix_has_it_and_counts_as_sent():
    notifier, store, _, _ = make([Sent("msg_existing", 409)])
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status) == ("sent", 409)
    assert store.notifications[event.id]["status"] == "sent"


def test_rate_limit_waits_as_told_then_sends():
    notifier, _, sender, clock = make([RateLimited(retry_after=2.5), RateLimited(retry_after=1)])
    outcome = notifier.deliver(an_event())
    assert outcome.kind == "sent"
    assert clock.sleeps == [2.5, 1]
    assert len(sender.sends) == 3


def test_a_run_of_429s_asking_for_no_wait_still_backs_off_within_the_budget():
    """Found by the property test: ``Retry-After: 0`` on every answer once made a loop that
    called Svix again and again without a pause (and forever, on a clock that only sleeps move)."""
    notifier, store, sender, clock = make([RateLimited(retry_after=0) for _ in range(50)], budget=5)
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status) == ("retried", 429)
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert len(sender.sends) == 4
    assert store.notifications[event.id]["status"] == "pending"


def test_rate_limit_beyond_the_budget_leaves_it_pending_for_pubsub():
    notifier, store, _sender, clock = make([RateLimited(retry_after=60)], budget=30)
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.svix_status) == ("retried", True, 429)
    assert clock.sleeps == []  # no point waiting past the budget
    assert store.notifications[event.id]["status"] == "pending"
    assert store.notifications[event.id]["last_error"].startswith("rate_limited 429")
    assert store.notifications[event.id]["hold"] == 60  # no redelivery may call Svix before that


def test_unavailable_svix_is_retried_with_growing_backoff_within_the_budget():
    errors = [SvixUnavailable("boom", status=503) for _ in range(10)]
    notifier, store, _sender, clock = make(errors, budget=10)
    event = an_event()
    outcome = notifier.deliver(event)
    assert outcome.must_retry
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert sum(clock.sleeps) <= 10
    assert store.notifications[event.id]["status"] == "pending"
    assert store.notifications[event.id]["hold"] == 0  # the next delivery may try at once


def test_timeouts_then_success():
    notifier, _, _, clock = make([SvixUnavailable("timeout"), SvixUnavailable("timeout")])
    assert notifier.deliver(an_event()).kind == "sent"
    assert clock.sleeps == [0.5, 1.0]


def test_bad_credentials_stay_pending_without_waiting():
    notifier, store, sender, clock = make([BadCredentials("authentication_failed", status=401)])
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.must_retry, outcome.svix_status) == (True, 401)
    assert clock.sleeps == [] and len(sender.sends) == 1
    assert store.notifications[event.id]["last_error"].startswith("bad_credentials 401")


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_permanent_refusals_are_recorded_failed_and_acknowledged(status):
    notifier, store, _, _ = make([Permanent("validation", status=status)])
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.svix_status) == ("failed", False, status)
    assert store.notifications[event.id]["status"] == "failed"
    assert store.notifications[event.id]["last_error"].startswith(f"svix_rejected {status}")


def test_a_failed_event_is_not_sent_again_by_redelivery():
    notifier, _, sender, _ = make([Permanent("bad", status=400)])
    event = an_event()
    notifier.deliver(event)
    again = notifier.deliver(event)
    assert (again.kind, again.must_retry, len(sender.sends)) == ("duplicate", False, 1)


def test_a_reopened_event_is_sent_as_its_replay():
    notifier, store, sender, _ = make()
    event = an_event()
    seed(store, event, replays=2)
    assert notifier.deliver(event).kind == "sent"
    assert sender.sends == [(event.id, 2)]


def test_a_claim_held_elsewhere_is_left_to_its_holder():
    notifier, store, sender, _ = make()
    event = an_event()
    seed(store, event, held=True)  # another delivery holds its lease
    store.lease_left = 42.0
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code, outcome.error.retry_after) == (
        "retried",
        "claim_held",
        42.0,
    )
    assert sender.sends == []


def test_store_outage_is_transient():
    notifier, store, sender, _ = make()
    store.unavailable = True
    outcome = notifier.deliver(an_event())
    assert (outcome.must_retry, outcome.error.code) == (True, "store_unavailable")
    assert sender.sends == []


# -- issue 8: a 409 is not proof; windows expire ------------------------------------------------


def conflict():
    return SvixConflict("409, yet no message with this eventId", status=409)


def test_a_conflict_without_the_message_is_retried_at_once_then_sent():
    notifier, store, sender, clock = make([conflict()])
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status, outcome.retries) == ("sent", 202, 1)
    assert clock.sleeps == [0.0]  # at once: the application exists by now
    assert len(sender.sends) == 2
    assert store.notifications[event.id]["status"] == "sent"


def test_a_conflict_again_backs_off_and_is_never_sent_nor_failed():
    notifier, store, _sender, clock = make([conflict() for _ in range(20)], budget=3)
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.svix_status) == ("retried", True, 409)
    assert clock.sleeps == [0.0, 0.5, 1.0]  # one at once, then the usual backoff
    assert store.notifications[event.id]["status"] == "pending"
    assert store.notifications[event.id]["last_error"].startswith("svix_conflict 409")


def test_a_conflict_with_no_budget_left_is_left_to_pubsub():
    notifier, _store, sender, clock = make([conflict()], budget=0)
    ticks = iter(range(100))
    notifier._clock = lambda: float(next(ticks))  # the answer came after the (zero) budget
    outcome = notifier.deliver(an_event())
    assert (outcome.kind, outcome.must_retry) == ("retried", True)
    assert clock.sleeps == [] and len(sender.sends) == 1


def test_an_application_creation_conflict_is_tried_again_at_once_by_the_directory():
    notifier, store, sender, clock = make()
    sender.app_failures = [conflict()]
    outcome = notifier.deliver(an_event(project="racy"))
    assert outcome.kind == "sent"
    assert sender.apps == ["racy", "racy"] and clock.sleeps == []
    assert store.applications == {"racy": "app_racy"}


def test_application_conflicts_that_persist_are_transient_never_failed():
    notifier, store, sender, clock = make(budget=2)
    sender.app_failures = [conflict() for _ in range(20)]
    event = an_event(project="racy")
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "svix_conflict")
    assert clock.sleeps == [0.0, 0.5, 1.0]
    assert sender.sends == [] and store.applications == {}
    assert store.notifications[event.id]["status"] == "pending"


HOUR = 3600.0
T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def windowed(hours_since_first_call, *, window=20 * HOUR, first_call=T0, lookups=()):
    notifier, store, sender, _clock = make()
    notifier._now = lambda: first_call + timedelta(hours=hours_since_first_call)
    notifier._dedup_window = window
    sender.lookups = list(lookups)
    event = an_event()
    seed(store, event, svix_first_call_at=first_call)
    return notifier, store, sender, event


@pytest.mark.parametrize("hours", [0.5, 12.5, 19.9])
def test_within_the_window_a_resend_relies_on_svix_and_looks_nothing_up(hours):
    notifier, _store, sender, event = windowed(hours)
    assert notifier.deliver(event).kind == "sent"
    assert sender.found == [] and len(sender.sends) == 1


@pytest.mark.parametrize("hours", [20.0, 24.5, 200.0])
def test_past_the_window_a_held_message_is_recorded_sent_without_sending(hours):
    notifier, store, sender, event = windowed(hours, lookups=[Sent("msg_earlier", 200)])
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status, outcome.svix_message_id) == (
        "sent",
        200,
        "msg_earlier",
    )
    assert sender.found == [event.id] and sender.sends == []
    record = store.notifications[event.id]
    assert (record["status"], record["message_id"], record["held"]) == (
        "sent",
        "msg_earlier",
        False,
    )


def test_past_the_window_a_message_not_held_is_sent():
    notifier, _store, sender, event = windowed(25, lookups=[None])
    assert notifier.deliver(event).svix_status == 202
    assert sender.found == [event.id] and len(sender.sends) == 1


def test_a_failed_lookup_is_retried_and_never_skipped():
    unsure = SvixUnavailable("timeout")
    notifier, _store, sender, event = windowed(25, lookups=[unsure, Sent("msg_earlier", 200)])
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_message_id, outcome.retries) == ("sent", "msg_earlier", 1)
    assert sender.found == [event.id, event.id] and sender.sends == []


def test_a_lookup_that_stays_unsure_leaves_it_pending():
    notifier, store, sender, event = windowed(25, lookups=[SvixUnavailable("x")] * 3)
    notifier._budget = 0
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "svix_unavailable")
    assert sender.sends == [] and store.notifications[event.id]["status"] == "pending"


def test_a_send_that_fails_after_the_lookup_is_not_looked_up_again_in_that_delivery():
    notifier, _store, sender, event = windowed(25, lookups=[None])
    sender.script = [SvixUnavailable("503", status=503)]
    assert notifier.deliver(event).kind == "sent"
    assert sender.found == [event.id] and len(sender.sends) == 2


def test_a_zero_window_looks_up_every_resend_but_never_a_new_event():
    notifier, _store, sender, event = windowed(0, window=0.0, lookups=[None])
    notifier.deliver(event)
    assert sender.found == [event.id]
    new = an_event()
    notifier.deliver(new)  # its claim created the record: no delivery called Svix before
    assert sender.found == [event.id] and sender.sends[-1] == (new.project, new.id)


# -- issue 19: a store write that fails after Svix answered -----------------------------------


# The use case tries an outcome write three times, quickly, before it gives up on it.
TRIES = 3


def lease_runs_out(store, event):
    """The claim's lease expires (the delivery that held it ended without a word)."""
    store.notifications[event.id]["held"] = False


@pytest.mark.parametrize("first", [None, SvixUnavailable("t")], ids=["at-once", "after-a-retry"])
def test_a_sent_message_whose_record_is_refused_stays_pending_and_is_recorded_next_time(first):
    """Svix accepted (after a retry, or at once); the write of ``sent`` is refused. The next
    delivery gets Svix's answer again (the replayed 202 or a 409) and records it: one message."""
    notifier, store, sender, _ = make([first] if first is not None else [])
    event = an_event()
    store.fail("mark_sent", times=TRIES)
    outcome = notifier.deliver(event)
    message_id = f"msg_{event.id}"
    assert (outcome.kind, outcome.must_retry, outcome.error.code) == (
        "retried",
        True,
        "store_unavailable",
    )
    assert (outcome.svix_status, outcome.svix_message_id) == (202, message_id)
    assert store.notifications[event.id]["status"] == "pending"
    lease_runs_out(store, event)
    again = notifier.deliver(event)
    assert (again.kind, again.svix_status, again.svix_message_id) == ("sent", 409, message_id)
    record = store.notifications[event.id]
    assert (record["status"], record["message_id"], record["attempts"]) == ("sent", message_id, 2)
    assert list(sender.messages) == [event.id]  # one message at Svix


def test_a_sent_message_whose_record_and_release_are_refused_is_retried_without_raising():
    notifier, store, sender, _ = make()
    event = an_event()
    store.fail("mark_sent", times=TRIES)
    store.fail("release")
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "store_unavailable")
    assert store.notifications[event.id]["status"] == "pending"  # the lease runs out instead
    assert len(sender.sends) == 1


def test_a_sent_record_whose_answer_is_lost_is_a_duplicate_next_time():
    notifier, store, sender, _ = make()
    event = an_event()
    store.fail("mark_sent", "lost", times=TRIES)
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.error.code) == (
        "retried",
        True,
        "store_unavailable",
    )
    assert store.notifications[event.id]["status"] == "sent"  # written; only the answer lost
    again = notifier.deliver(event)
    assert (again.kind, again.svix_message_id) == ("duplicate", f"msg_{event.id}")
    assert len(sender.sends) == 1


def test_a_refusal_whose_record_is_refused_stays_pending_and_is_recorded_next_time():
    """Svix refused (400); the write of ``failed`` is refused. Svix answers the same key with the
    same refusal, so the next delivery records it, and nothing was ever sent."""
    refusal = Permanent("validation", status=400)
    notifier, store, sender, _ = make([refusal, refusal])
    event = an_event()
    store.fail("mark_failed", times=TRIES)
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.svix_status, outcome.error.code) == (
        "retried",
        True,
        400,
        "store_unavailable",
    )
    assert store.notifications[event.id]["status"] == "pending"
    lease_runs_out(store, event)
    again = notifier.deliver(event)
    assert (again.kind, again.must_retry, again.svix_status) == ("failed", False, 400)
    record = store.notifications[event.id]
    assert (record["status"], record["attempts"]) == ("failed", 2)
    assert record["last_error"].startswith("svix_rejected 400")
    assert sender.messages == {}


def test_a_failed_record_whose_answer_is_lost_is_a_duplicate_next_time():
    notifier, store, sender, _ = make([Permanent("validation", status=422)])
    event = an_event()
    store.fail("mark_failed", "lost", times=TRIES)
    assert notifier.deliver(event).must_retry
    assert store.notifications[event.id]["status"] == "failed"
    again = notifier.deliver(event)
    assert (again.kind, again.must_retry, len(sender.sends)) == ("duplicate", False, 1)


@pytest.mark.parametrize("fault", ["refused", "lost"])
def test_a_release_that_fails_still_leaves_it_pending_for_pubsub(fault):
    """Out of budget, the release is best effort: refused, the lease runs out instead."""
    notifier, store, sender, _ = make([SvixUnavailable("503", status=503)], budget=0)
    event = an_event()
    store.fail("release", fault)
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status, outcome.error.code) == (
        "retried",
        503,
        "svix_unavailable",
    )
    record = store.notifications[event.id]
    assert (record["status"], record["held"]) == ("pending", fault == "refused")
    lease_runs_out(store, event)
    assert notifier.deliver(event).kind == "sent"
    assert list(sender.messages) == [event.id]


@pytest.mark.parametrize("fault", ["refused", "lost"])
def test_a_claim_that_fails_is_retried_without_calling_svix(fault):
    notifier, store, sender, _ = make()
    event = an_event()
    store.fail("claim", fault)
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("retried", "store_unavailable")
    assert sender.sends == []
    if fault == "lost":  # it was claimed: the lease must run out first
        assert notifier.deliver(event).error.code == "claim_held"
        lease_runs_out(store, event)
    assert notifier.deliver(event).kind == "sent"
    assert len(sender.sends) == 1


def test_an_application_record_that_fails_is_retried_within_the_delivery():
    notifier, store, sender, clock = make()
    store.fail("save_application")
    outcome = notifier.deliver(an_event(project="globex"))
    assert (outcome.kind, outcome.retries) == ("sent", 1)
    assert clock.sleeps == [0.5]
    assert store.applications == {"globex": "app_globex"}
    assert sender.apps == ["globex", "globex"]  # Svix's get-or-create, asked again


def test_a_write_that_is_not_the_stores_cannot_be_failed():
    with pytest.raises(ValueError, match="not a write"):
        fakes.MemoryStore().fail("mark_snet")


def test_the_backoff_doubles_up_to_its_cap_within_the_default_budget():
    budget = Settings(gcp_project="p", svix_api_key="k").retry_budget_seconds
    errors = [SvixUnavailable("503", status=503) for _ in range(50)]
    notifier, store, sender, clock = make(errors, budget=budget)
    event = an_event()
    outcome = notifier.deliver(event)
    assert budget == 30.0
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]  # the next 8 s would pass 30 s
    assert (outcome.kind, outcome.retries, outcome.waited) == ("retried", 6, 23.5)
    assert len(sender.sends) == 7
    assert store.notifications[event.id]["status"] == "pending"


# -- the outcome says all of it (survivors of `make mutate`, docs/testing.md) -------------------


def facts(outcome):
    """Everything an outcome reports, the error by its code and detail."""
    error = None if outcome.error is None else (outcome.error.code, outcome.error.detail)
    return (
        outcome.kind,
        outcome.attempts,
        outcome.svix_status,
        outcome.svix_message_id,
        error,
        outcome.retries,
        outcome.waited,
    )


def test_the_store_is_given_the_pubsub_delivery_or_an_empty_one():
    notifier, store, _, _ = make()
    delivery = Delivery(message_id="m-17", delivery_attempt=3)
    notifier.deliver(an_event(), delivery)
    notifier.deliver(an_event())
    assert store.deliveries == [delivery, Delivery()]


def test_the_store_is_given_the_look_the_redelivery_made_for_its_claim():
    notifier, store, _, _ = make()
    event = an_event()
    looked = store.look(event.id)
    notifier.deliver(event, Delivery(delivery_attempt=2), looked)
    assert store.looks == [looked]


def test_a_sent_outcome_reports_attempts_status_retries_and_waiting():
    notifier, store, _, _ = make([RateLimited(retry_after=2.5), SvixUnavailable("t")])
    event = an_event()
    seed(store, event)  # one earlier attempt
    assert facts(notifier.deliver(event)) == ("sent", 2, 202, f"msg_{event.id}", None, 2, 3.5)
    assert store.notifications[event.id]["svix_status"] == 202


def test_duplicates_report_the_attempts_and_why():
    notifier, _, _, _ = make([Permanent("validation", status=400)])
    sent, failed = an_event(), an_event()
    notifier.deliver(failed)
    notifier.deliver(sent)
    assert facts(notifier.deliver(sent)) == ("duplicate", 1, None, f"msg_{sent.id}", None, 0, 0.0)
    assert facts(notifier.deliver(failed)) == (
        *("duplicate", 1, None, None),
        ("svix_rejected", "already failed"),
        *(0, 0.0),
    )


def test_a_held_claim_reports_the_attempts_and_the_holders_lease():
    notifier, store, _, _ = make()
    event = an_event()
    seed(store, event, held=True, attempts=3)
    store.lease_left = 42.0
    assert facts(notifier.deliver(event)) == (
        *("retried", 3, None, None),
        ("claim_held", "another delivery holds the claim for 42s more"),
        *(0, 0.0),
    )


def test_a_refusal_after_a_retry_reports_it():
    refusal = Permanent("validation", status=422)
    notifier, _, _, _ = make([SvixUnavailable("t"), refusal])
    outcome = notifier.deliver(an_event())
    assert facts(outcome) == ("failed", 1, 422, None, ("svix_rejected", "validation"), 1, 0.0)
    assert outcome.error is refusal


def test_a_refusal_whose_record_fails_after_a_retry_reports_it():
    refusal = Permanent("validation", status=422)
    notifier, store, _, _ = make([SvixUnavailable("t"), refusal])
    store.fail("mark_failed", times=TRIES)
    kind, attempts, status, _, (code, _), retries, _ = facts(notifier.deliver(an_event()))
    assert (kind, attempts, status, code, retries) == ("retried", 1, 422, "store_unavailable", 1)


def test_a_sent_message_whose_record_fails_after_a_retry_reports_it():
    notifier, store, _, _ = make([SvixUnavailable("t")])
    store.fail("mark_sent", times=TRIES)
    event = an_event()
    kind, attempts, status, message, (code, _), retries, _ = facts(notifier.deliver(event))
    assert (kind, attempts, status, message, code, retries) == (
        *("retried", 1, 202, f"msg_{event.id}"),
        *("store_unavailable", 1),
    )


def test_giving_up_reports_the_attempts_retries_and_waiting():
    notifier, _, _, _ = make([SvixUnavailable("503", status=503) for _ in range(5)], budget=2)
    assert facts(notifier.deliver(an_event())) == (
        *("retried", 1, 503, None),
        ("svix_unavailable", "503"),
        *(2, 1.5),
    )


@pytest.mark.parametrize("retry_after", [0, None])
def test_a_429_without_a_wait_holds_the_claim_no_longer(retry_after):
    notifier, store, _, _ = make([RateLimited(retry_after=retry_after)], budget=0)
    event = an_event()
    assert notifier.deliver(event).svix_status == 429
    assert store.notifications[event.id]["hold"] == 0


def test_a_wait_that_ends_exactly_at_the_budget_is_still_taken():
    notifier, _, sender, clock = make([SvixUnavailable("t") for _ in range(5)], budget=1.5)
    notifier.deliver(an_event())
    assert clock.sleeps == [0.5, 1.0]  # 0.5 + 1.0 == 1.5: within it
    assert len(sender.sends) == 3


def test_a_conflict_answered_within_a_zero_budget_is_still_retried_at_once():
    notifier, _, sender, clock = make([conflict()], budget=0)
    outcome = notifier.deliver(an_event())  # the clock stands still: the answer came in time
    assert (outcome.kind, clock.sleeps, len(sender.sends)) == ("sent", [0.0], 2)


def test_an_id_recorded_for_another_project_is_rejected_naming_it_for_the_operator():
    notifier, store, sender, _ = make()
    event = an_event(project="acme")
    seed(store, event, project="globex")
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code) == ("rejected", "id_conflict")
    assert (outcome.error.recorded_project, outcome.error.recorded_type) == ("globex", event.type)
    assert sender.sends == []
