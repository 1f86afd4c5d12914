"""The Svix outcome table, with small in-memory fakes of the two ports."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from notifier.applications import ApplicationDirectory
from notifier.domain.claims import Claim, ClaimState
from notifier.domain.outcomes import Sent
from notifier.errors import (
    BadCredentials,
    NotifierError,
    Permanent,
    RateLimited,
    StoreUnavailable,
    SvixUnavailable,
)
from notifier.events import event_from
from notifier.service import Notifier
from tests import factories


@dataclass
class FakeStore:
    records: dict = field(default_factory=dict)
    apps: dict = field(default_factory=dict)
    held: set = field(default_factory=set)
    fail_claims: bool = False

    def claim(self, event, delivery):
        if self.fail_claims:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        if event.id in self.held:
            return Claim(event.id, ClaimState.HELD, 1, held_for=42.0)
        record = self.records.setdefault(event.id, {"status": "pending", "attempts": 0})
        if record["status"] == "sent":
            return Claim(event.id, ClaimState.SENT, record["attempts"], record["message_id"])
        if record["status"] == "failed":
            return Claim(event.id, ClaimState.FAILED, record["attempts"])
        record["attempts"] += 1
        replays = record.get("replays", 0)
        return Claim(event.id, ClaimState.CLAIMED, record["attempts"], replays=replays)

    def mark_sent(self, claim, svix_message_id, svix_status):
        self.records[claim.event_id].update(status="sent", message_id=svix_message_id)

    def mark_failed(self, claim, error: NotifierError):
        self.records[claim.event_id].update(status="failed", last_error=error.summary())
        return True

    def release(self, claim, error: NotifierError, hold=0.0):
        self.records[claim.event_id].update(last_error=error.summary(), hold=hold)
        return True

    def application_id(self, project):
        return self.apps.get(project)

    def save_application(self, project, svix_app_id):
        self.apps[project] = svix_app_id


@dataclass
class ScriptedSender:
    """Answers each send with the next scripted result: a ``Sent`` or an error to raise."""

    script: list = field(default_factory=list)
    sends: list = field(default_factory=list)
    created: list = field(default_factory=list)

    def ensure_application(self, project):
        self.created.append(project)
        return f"app_{project}"

    def send(self, event, replays=0):
        self.sends.append((event.project, event.id) if not replays else (event.id, replays))
        result = self.script.pop(0) if self.script else Sent(f"msg_{event.id}", 202)
        if isinstance(result, Exception):
            raise result
        return result


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def make(script=(), budget=30.0):
    store, sender, clock = FakeStore(), ScriptedSender(list(script)), Clock()
    notifier = Notifier(
        store,
        sender,
        ApplicationDirectory(store, sender),
        retry_budget=budget,
        sleep=clock.sleep,
        clock=clock,
    )
    return notifier, store, sender, clock


def an_event(**overrides):
    return event_from(json.loads(json.dumps(factories.event(**overrides))), max_bytes=2**20)


def test_new_event_is_sent_once_into_the_project_application():
    notifier, store, sender, _ = make()
    event = an_event(project="globex")
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status, outcome.must_retry) == ("sent", 202, False)
    assert sender.sends == [("globex", event.id)]
    assert store.records[event.id]["status"] == "sent"
    assert store.apps == {"globex": "app_globex"}


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
    assert sender.created == ["acme", "globex"]


def test_conflict_means_svix_has_it_and_counts_as_sent():
    notifier, store, _, _ = make([Sent("msg_existing", 409)])
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.svix_status) == ("sent", 409)
    assert store.records[event.id]["status"] == "sent"


def test_rate_limit_waits_as_told_then_sends():
    notifier, _, sender, clock = make([RateLimited(retry_after=2.5), RateLimited(retry_after=1)])
    outcome = notifier.deliver(an_event())
    assert outcome.kind == "sent"
    assert clock.sleeps == [2.5, 1]
    assert len(sender.sends) == 3


def test_rate_limit_beyond_the_budget_leaves_it_pending_for_pubsub():
    notifier, store, _sender, clock = make([RateLimited(retry_after=60)], budget=30)
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.svix_status) == ("retried", True, 429)
    assert clock.sleeps == []  # no point waiting past the budget
    assert store.records[event.id]["status"] == "pending"
    assert store.records[event.id]["last_error"].startswith("rate_limited 429")
    assert store.records[event.id]["hold"] == 60  # no redelivery may call Svix before that


def test_unavailable_svix_is_retried_with_growing_backoff_within_the_budget():
    errors = [SvixUnavailable("boom", status=503) for _ in range(10)]
    notifier, store, _sender, clock = make(errors, budget=10)
    event = an_event()
    outcome = notifier.deliver(event)
    assert outcome.must_retry
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert sum(clock.sleeps) <= 10
    assert store.records[event.id]["status"] == "pending"
    assert store.records[event.id]["hold"] == 0  # the next delivery may try at once


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
    assert store.records[event.id]["last_error"].startswith("bad_credentials 401")


@pytest.mark.parametrize("status", [400, 404, 413, 422])
def test_permanent_refusals_are_recorded_failed_and_acknowledged(status):
    notifier, store, _, _ = make([Permanent("validation", status=status)])
    event = an_event()
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.must_retry, outcome.svix_status) == ("failed", False, status)
    assert store.records[event.id]["status"] == "failed"
    assert store.records[event.id]["last_error"].startswith(f"svix_rejected {status}")


def test_a_failed_event_is_not_sent_again_by_redelivery():
    notifier, _, sender, _ = make([Permanent("bad", status=400)])
    event = an_event()
    notifier.deliver(event)
    again = notifier.deliver(event)
    assert (again.kind, again.must_retry, len(sender.sends)) == ("duplicate", False, 1)


def test_a_reopened_event_is_sent_as_its_replay():
    notifier, store, sender, _ = make()
    event = an_event()
    store.records[event.id] = {"status": "pending", "attempts": 1, "replays": 2}
    assert notifier.deliver(event).kind == "sent"
    assert sender.sends == [(event.id, 2)]


def test_a_claim_held_elsewhere_is_left_to_its_holder():
    notifier, store, sender, _ = make()
    event = an_event()
    store.held.add(event.id)
    outcome = notifier.deliver(event)
    assert (outcome.kind, outcome.error.code, outcome.error.retry_after) == (
        "retried",
        "claim_held",
        42.0,
    )
    assert sender.sends == []


def test_store_outage_is_transient():
    notifier, store, sender, _ = make()
    store.fail_claims = True
    outcome = notifier.deliver(an_event())
    assert (outcome.must_retry, outcome.error.code) == (True, "store_unavailable")
    assert sender.sends == []
