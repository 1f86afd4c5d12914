"""Property: whatever Svix answers, in whatever order, no record says ``sent`` unless the twin
holds that event's message (with that id), and Svix never holds two messages of one event.

Each example is a run of steps against the twin and the Firestore emulator: deliveries of a new
project's events while fault rules answer for ``msg.create``, ``msg.get`` and ``app.create``
(409 conflicts, 5xx, 429, 422, answers lost after the call ran, slow answers in time), and jumps
of the shared clock across Svix's windows (12 h, 20 h, 24 h); deliveries that crash (the process
dies before its Svix call, after it, or before recording the answer: nothing more is written, the
claim is left to its lease) and deliveries whose lease renewals fail or find the claim taken (a
3 s lease, renewed every second of their waits). Then Svix heals and Pub/Sub keeps delivering
until every event is done. In-process retries wait on a fake clock, so an example takes a
fraction of a second of real time.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from notifier.adapters.firestore.keys import document_key
from notifier.domain.errors import StoreUnavailable
from notifier.usecases.leases import LeaseKeeper
from tests.integration.test_exactly_once import HOUR, Pipeline, an_event

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
OPS = ("msg.create", "msg.get", "app.create")
_projects = itertools.count(1)


LEASE = 3.0  # seconds: renewed every second, so the in-process waits of a delivery renew it


class FakeTime:
    """The service's monotonic clock and sleep: waiting costs no real time; the lease keeper
    renews whatever fell due during a wait, as its thread would."""

    def __init__(self) -> None:
        self.now = 0.0
        self.keeper: LeaseKeeper | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + 0.25)
            if self.keeper is not None:
                self.keeper.renew_due()


class Crash(BaseException):
    """The instance died at this point of a delivery."""


class Crashing:
    """The sender and store of one delivery that dies at ``point``: before its Svix call, after
    Svix accepted (the answer never read), or before the ``sent`` write."""

    def __init__(self, pipeline: Pipeline, point: str) -> None:
        self.pipeline, self.point = pipeline, point

    def send(self, event, replays=0):
        if self.point == "before_svix":
            raise Crash
        sent = self.pipeline.sender.send(event, replays)
        if self.point == "after_svix":
            raise Crash
        return sent

    def find(self, event):
        return self.pipeline.sender.find(event)

    def mark_sent(self, claim, message_id, status):
        raise Crash

    def __getattr__(self, name):
        return getattr(self.pipeline.store, name)


class Renewals:
    """The keeper's renewal: the store's, or one that fails (Firestore down) or finds the claim
    taken, while ``failing`` says so."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.failing = pipeline, None

    def __call__(self, claim):
        if self.failing == "unavailable":
            raise StoreUnavailable("firestore: ServiceUnavailable")
        if self.failing == "taken":
            return None
        return self.pipeline.store.renew(claim)


times = st.none() | st.integers(min_value=1, max_value=3)
fault = st.one_of(
    st.builds(
        lambda op, status, n: {"op": op, "status": status, "times": n},
        st.sampled_from(OPS),
        st.sampled_from([409, 500, 502, 503, 422]),
        times,
    ),
    st.builds(
        lambda op, after, n: {"op": op, "status": 429, "retry_after": after, "times": n},
        st.sampled_from(OPS),
        st.sampled_from([0, 1, 3]),
        times,
    ),
    st.builds(  # lost answers: 2 or more, or the SDK's own retry gets the replayed answer
        lambda op, n: {"op": op, "lost": True, "times": n},
        st.sampled_from(OPS),
        st.sampled_from([None, 2, 4]),
    ),
    st.builds(  # slow, but in time (the sender's timeout is 1 s): no call outlives its client
        lambda op, delay, n: {"op": op, "delay": delay, "times": n},
        st.sampled_from(OPS),
        st.sampled_from([0.05, 0.2]),
        times,
    ),
)
step = st.one_of(
    st.tuples(st.just("deliver"), st.lists(fault, max_size=3)),
    st.tuples(st.just("advance"), st.sampled_from([1, 11, 13, 19, 21, 25, 49])),
    st.tuples(st.just("crash"), st.sampled_from(["before_svix", "after_svix", "before_record"])),
    st.tuples(st.just("renewals"), st.sampled_from(["unavailable", "taken"])),
)
# Waits long enough to renew (429s of 1-3 s within the 2 s budget) while renewals misbehave.
SLOW = [{"op": "msg.create", "status": 429, "retry_after": 1, "times": 2}]


def heal(pipeline: Pipeline, events, rounds: int = 6) -> None:
    """Svix answers normally again; Pub/Sub delivers until each event is done."""
    pipeline.svix.clear_faults()
    pipeline.clock.advance(60)  # claims left by crashed deliveries run out
    for _ in range(rounds):
        left = [e for e in events if pipeline.deliver(e).must_retry]
        if not left:
            return
        pipeline.clock.advance(60)  # Pub/Sub's backoff; leases and Retry-After holds run out
    raise AssertionError(f"never done: {[e.id for e in left]}")


LOST = {"op": "msg.create", "lost": True, "times": None}


def crashed(pipeline: Pipeline, event, point: str) -> None:
    """One delivery of ``event`` by an instance that dies at ``point``."""
    notifier = pipeline.notifier
    crashing = Crashing(pipeline, point)
    store, sender = notifier._store, notifier._sender
    if point == "before_record":
        notifier._store = crashing
    else:
        notifier._sender = crashing
    try:
        pipeline.deliver(event)
    except Crash:
        pass
    finally:
        notifier._store, notifier._sender = store, sender


@PROPERTY
@example(steps=[("deliver", [LOST]), ("advance", 25)], events_per_project=1)
@example(steps=[("deliver", [LOST]), ("advance", 13)], events_per_project=1)
@example(steps=[("deliver", [LOST]), ("advance", 21), ("deliver", [LOST])], events_per_project=1)
@example(steps=[("deliver", [{"op": "msg.create", "status": 409}])], events_per_project=2)
@example(steps=[("crash", "after_svix"), ("deliver", [])], events_per_project=1)
@example(steps=[("crash", "before_record"), ("advance", 25)], events_per_project=2)
@example(steps=[("renewals", "taken"), ("crash", "before_svix")], events_per_project=1)
@example(
    steps=[
        ("deliver", [LOST]),
        ("advance", 25),
        ("deliver", [{"op": "msg.get", "status": 503}, LOST]),
        ("advance", 49),
    ],
    events_per_project=2,
)
@given(steps=st.lists(step, min_size=1, max_size=6), events_per_project=st.integers(1, 2))
def test_whatever_svix_answers_sent_means_svix_holds_it_once(db, svix, steps, events_per_project):
    svix.reset()
    fake = FakeTime()
    pipeline = Pipeline(db, svix, budget=2.0, sleep=fake.sleep, lease=LEASE)
    renewals = Renewals(pipeline)
    fake.keeper = LeaseKeeper(renewals, LEASE, clock=fake, background=False)
    pipeline.notifier._clock, pipeline.notifier._leases = fake, fake.keeper
    project = f"prop-{next(_projects)}"
    events = [an_event(project=project) for _ in range(events_per_project)]
    try:
        for kind, arg in steps:
            if kind == "advance":
                pipeline.clock.advance(arg * HOUR)
                continue
            if kind == "crash":
                for event in events:
                    crashed(pipeline, event, arg)
                continue
            if kind == "renewals":
                renewals.failing = arg
                svix.set_faults(SLOW)
                for event in events:
                    outcome = pipeline.deliver(event)
                    if outcome.must_retry:  # it waited past a renewal, which stopped it
                        assert outcome.error.code in ("claim_lost", "claim_held"), outcome
                renewals.failing = None
                svix.clear_faults()
                continue
            svix.set_faults(arg)
            for event in events:
                pipeline.deliver(event)
            svix.clear_faults()
        heal(pipeline, events)
    finally:
        pipeline.close()

    held = Counter(m["eventId"] for m in svix.messages())
    ids = {m["eventId"]: m["id"] for m in svix.messages()}
    for event in events:
        saved = db.collection("notifications").document(document_key(event.id)).get().to_dict()
        assert held[event.id] <= 1, f"{event.id}: {held[event.id]} messages in Svix"
        assert saved["status"] in ("sent", "failed")
        if saved["status"] == "sent":
            assert event.id in ids, f"{event.id} recorded sent, but Svix holds no message"
            assert saved["svix_message_id"] == ids[event.id]
