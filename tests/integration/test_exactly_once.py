"""Issue 8: exactly once against the Svix twin's unkind parts, on the Firestore emulator.

The function as bootstrap builds it (Notifier, FirestoreStore, SvixSender, ApplicationDirectory),
in-process, with one clock for the store, the service and the twin, so that tests move time forward
for everyone at once across Svix's windows (idempotency keys 12 h, ``eventId`` one day). Every test
ends on what a user checks: Svix holds exactly one message per event, and every ``sent`` record
names a message Svix holds.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from notifier import bootstrap
from notifier.adapters.firestore.keys import document_key
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.decoding import event_from
from notifier.domain.events import Delivery, Event
from notifier.domain.outcomes import Outcome
from tests import factories
from tests.conftest import TOKEN
from tests.integration.conftest import settings_on

HOUR = 3600.0


class SharedClock:
    """Wall time plus an offset, for the store and the service; moved with the twin's clock."""

    def __init__(self, svix) -> None:
        self.svix = svix
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
        self.svix.advance_clock(seconds)


class Pipeline:
    """One function instance as bootstrap builds it, on the emulator and the twin (small budgets
    and lease), its store and notifier on the shared clock."""

    def __init__(
        self, db, svix, *, budget: float = 0.5, sleep=time.sleep, lease: float = 10.0
    ) -> None:
        self.db, self.svix = db, svix
        self.clock = SharedClock(svix)
        self.store = FirestoreStore(
            db, lease_seconds=lease, ttl_days=30, raw_limit=1024, clock=self.clock.now
        )
        settings = settings_on(
            svix, svix_timeout_seconds=1.0, svix_retry_schedule=(0.01,), retry_budget_seconds=budget
        )
        built = bootstrap.build(settings, store=self.store, sleep=sleep, now=self.clock.now)
        self.sender, self.notifier = built.sender, built.notifier

    def deliver(self, event: Event) -> Outcome:
        return self.notifier.deliver(event, Delivery(message_id=uuid.uuid4().hex[:12]))

    def deliver_until_done(self, events: list[Event], rounds: int = 8) -> list[Event]:
        """All at once, then again what must be retried, as Pub/Sub would; returns what is left."""
        pending = list(events)
        for _ in range(rounds):
            if not pending:
                break
            with ThreadPoolExecutor(len(pending)) as pool:
                outcomes = list(pool.map(self.deliver, pending))
            pending = [e for e, o in zip(pending, outcomes, strict=True) if o.must_retry]
        return pending

    def close(self) -> None:
        self.sender.close()


@pytest.fixture
def pipeline(db, svix):
    built = Pipeline(db, svix)
    yield built
    built.close()


def an_event(**overrides) -> Event:
    return event_from(json.loads(json.dumps(factories.event(**overrides))), max_bytes=2**20)


def record(db, event_id: str) -> dict:
    return db.collection("notifications").document(document_key(event_id)).get().to_dict()


def assert_exactly_once(db, svix, events: list[Event]) -> None:
    """Svix holds one message per event; each is recorded ``sent`` with that message's id."""
    held = Counter(m["eventId"] for m in svix.messages())
    assert held == Counter(e.id for e in events), "not exactly one message per event"
    ids = {m["eventId"]: m["id"] for m in svix.messages()}
    for event in events:
        saved = record(db, event.id)
        assert (saved["status"], saved["svix_message_id"]) == ("sent", ids[event.id]), event.id


def conflicts(svix, op: str) -> int:
    return sum(1 for c in svix.calls() if c["op"] == op and c["status"] == 409)


# -- 409: the application race -------------------------------------------------------------------


def test_first_events_of_many_new_projects_race_the_application_creation(pipeline, db, svix):
    svix.configure(app_create_race_seconds=0.2)
    events = [an_event(project=f"race-{p}") for p in range(6) for _ in range(4)]

    assert pipeline.deliver_until_done(events) == []

    assert_exactly_once(db, svix, events)
    assert conflicts(svix, "app.create") > 0  # the race was run, and lost by some
    assert sorted(a["uid"] for a in svix.apps()) == [f"race-{p}" for p in range(6)]
    for p in range(6):
        app = db.collection("applications").document(f"race-{p}").get().to_dict()
        assert app["svix_app_id"] == next(a["id"] for a in svix.apps() if a["uid"] == f"race-{p}")


def test_events_of_projects_whose_application_was_deleted_in_svix(pipeline, db, svix):
    projects = [f"gone-{p}" for p in range(3)]
    first = [an_event(project=p) for p in projects]
    assert pipeline.deliver_until_done(first) == []
    with httpx.Client(base_url=svix.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for project in projects:
            assert http.delete(f"/api/v1/app/{project}").status_code == 204
    svix.configure(app_create_race_seconds=0.2)
    events = [an_event(project=p) for p in projects for _ in range(3)]

    assert pipeline.deliver_until_done(events) == []

    assert_exactly_once(db, svix, events)  # the first ones went with their deleted applications
    assert conflicts(svix, "msg.create") > 0  # the inline creations raced
    lookups = [c for c in svix.calls() if c["op"] == "msg.get"]
    assert lookups and {c["status"] for c in lookups} == {404}  # 409 without the message: retried


def test_a_conflict_whose_lookup_fails_is_never_recorded(pipeline, db, svix):
    """409, then the lookup that would tell which conflict it was fails: not sent, not failed."""
    pipeline.svix.configure(app_create_race_seconds=0.0)
    event = an_event(project="unsure")
    svix.set_faults(
        [{"op": "msg.create", "status": 409}, {"op": "msg.get", "status": 503}]
    )  # every answer, for the whole delivery

    outcome = pipeline.deliver(event)

    assert (outcome.must_retry, outcome.error.code) == (True, "svix_unavailable")
    saved = record(db, event.id)
    assert saved["status"] == "pending" and "svix_message_id" not in saved
    svix.clear_faults()
    assert pipeline.deliver_until_done([event]) == []
    assert_exactly_once(db, svix, [event])


# -- windows that expire -------------------------------------------------------------------------


def lose_every_answer(pipeline, event: Event, deliveries: int = 2) -> None:
    """Svix accepts the message but no answer arrives, until each delivery gives up."""
    pipeline.svix.set_faults([{"op": "msg.create", "lost": True}])
    for _ in range(deliveries):
        outcome = pipeline.deliver(event)
        assert (outcome.must_retry, outcome.error.code) == (True, "svix_unavailable")
    pipeline.svix.clear_faults()
    assert record(pipeline.db, event.id)["status"] == "pending"
    assert [m["eventId"] for m in pipeline.svix.messages()] == [event.id]


@pytest.mark.parametrize(
    ("hours", "svix_status", "ops"),
    [
        (1, 202, ["msg.create"]),  # the idempotency key replays the first answer
        (13, 409, ["msg.create", "msg.get"]),  # key gone; the eventId conflicts; looked up
        (21, 200, ["msg.get"]),  # past the dedup window: looked up before sending
        (25, 200, ["msg.get"]),  # past both of Svix's windows: only the lookup knows
        (24 * 6, 200, ["msg.get"]),  # a replay or redrive days later
    ],
)
def test_lost_answers_then_time_passes_then_redelivery_sends_no_second_message(
    pipeline, db, svix, hours, svix_status, ops
):
    event = an_event(project="lossy")
    lose_every_answer(pipeline, event)
    [message] = svix.messages()
    pipeline.clock.advance(hours * HOUR)
    calls = len(svix.calls())

    outcome = pipeline.deliver(event)

    assert (outcome.kind, outcome.svix_status, outcome.svix_message_id) == (
        "sent",
        svix_status,
        message["id"],
    )
    assert [c["op"] for c in svix.calls()[calls:]] == ops
    assert_exactly_once(db, svix, [event])


def test_past_the_window_an_event_svix_never_got_is_sent(pipeline, db, svix):
    event = an_event(project="never")
    svix.set_faults([{"op": "msg.create", "status": 503}])
    assert pipeline.deliver(event).must_retry
    svix.clear_faults()
    pipeline.clock.advance(25 * HOUR)

    outcome = pipeline.deliver(event)

    assert (outcome.kind, outcome.svix_status) == ("sent", 202)
    assert [c["op"] for c in svix.calls()][-2:] == ["msg.get", "msg.create"]
    assert_exactly_once(db, svix, [event])


def test_the_svix_window_counts_from_the_records_creation_which_takeovers_keep(pipeline, db, svix):
    event = an_event(project="stamped")
    svix.set_faults([{"op": "msg.create", "status": 503}])
    before = pipeline.clock.now()
    pipeline.deliver(event)
    created = record(db, event.id)["created_at"]
    pipeline.clock.advance(5 * HOUR)
    pipeline.deliver(event)

    saved = record(db, event.id)
    assert before <= created <= before + timedelta(seconds=1)
    assert (saved["attempts"], saved["created_at"]) == (2, created)
    assert "svix_first_call_at" not in saved  # the creation stands for the first call


def test_a_record_resent_past_the_window_counts_it_from_its_creation(pipeline, db, svix):
    event = an_event(project="legacy")
    lose_every_answer(pipeline, event, deliveries=1)
    assert "svix_first_call_at" not in record(db, event.id)
    pipeline.clock.advance(25 * HOUR)

    outcome = pipeline.deliver(event)

    assert (outcome.kind, outcome.svix_status) == ("sent", 200)  # looked up: one message
    assert_exactly_once(db, svix, [event])
    assert "svix_first_call_at" not in record(db, event.id)  # nothing to stamp: one field less
