"""The operator use cases (status, replay, redrive) over in-memory fakes of their ports; the
emulator-backed tests (tests/integration/test_operations.py) prove the same through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from notifier.domain.decoding import event_from
from notifier.domain.errors import Permanent, SvixUnavailable
from notifier.domain.outcomes import Sent
from notifier.usecases.redrive import DIRECT, REDRIVEN_FROM, TO_TOPIC, redrive
from notifier.usecases.replay import Criteria, replay, select
from notifier.usecases.status import UNKNOWN_PROJECT, status
from tests import factories, fakes

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def delivered(deps, clock, *, age=timedelta(0), fault=None, **overrides):
    """An event through the service as if ``age`` ago; ``fault``: the error Svix answers."""
    clock.now = NOW - age
    if fault is not None:
        deps.sender.script.append(fault)
    document = factories.event(**overrides)
    deps.notifier.deliver(event_from(json.loads(json.dumps(document)), max_bytes=2**20))
    clock.now = NOW
    return document["id"]


def make():
    clock = Clock()
    deps = fakes.dependencies(fakes.MemoryStore(clock=clock))
    return deps, clock


# -- status ---------------------------------------------------------------------------------------


def test_status_counts_by_status_and_project_and_names_the_stuck_and_the_failed():
    deps, clock = make()
    delivered(deps, clock, project="acme")
    old = delivered(
        deps, clock, project="acme", age=timedelta(hours=3), fault=Permanent("x", status=422)
    )
    new = delivered(deps, clock, project="globex", fault=Permanent("y", status=400))
    stuck = delivered(
        deps, clock, project="acme", age=timedelta(hours=1), fault=SvixUnavailable("z")
    )
    delivered(deps, clock, project="initech", fault=SvixUnavailable("z"))  # fresh: not stuck
    deps.store.notifications["evt_orphan"] = {"status": "sent", "attempts": 1}  # no project

    report = status(deps.store, now=NOW, older_than=timedelta(minutes=10), failures=5)

    assert report.totals == {"pending": 2, "sent": 2, "failed": 2}
    assert report.by_project == {
        UNKNOWN_PROJECT: {"pending": 0, "sent": 1, "failed": 0},
        "acme": {"pending": 1, "sent": 1, "failed": 1},
        "globex": {"pending": 0, "sent": 0, "failed": 1},
        "initech": {"pending": 1, "sent": 0, "failed": 0},
    }
    assert report.stuck == 1
    assert report.oldest_pending is not None and report.oldest_pending.event_id == stuck
    assert [r.event_id for r in report.latest_failures] == [new, old]


# -- replay ---------------------------------------------------------------------------------------


def test_a_replay_reopens_failed_events_and_sends_them_under_a_new_key():
    deps, clock = make()
    failed = delivered(deps, clock, fault=Permanent("refused", status=422))
    fresh = delivered(deps, clock, fault=SvixUnavailable("down"))  # pending, not stuck
    selected = select(deps.store, Criteria(), now=NOW)
    assert [r.event_id for r in selected] == [failed]

    [result] = replay(selected, store=deps.store, notifier=deps.notifier, max_bytes=2**20)

    assert (result.event_id, result.outcome, result.replays, result.done) == (
        failed,
        "sent",
        1,
        True,
    )
    assert deps.store.notifications[failed]["status"] == "sent"
    assert list(deps.sender.messages) == [failed]
    assert deps.store.notifications[fresh]["status"] == "pending"


def test_a_record_that_changed_since_it_was_listed_is_skipped():
    deps, clock = make()
    failed = delivered(deps, clock, fault=Permanent("refused", status=422))
    selected = select(deps.store, Criteria(), now=NOW)
    deps.store.notifications[failed]["status"] = "sent"  # another operator got there first

    [result] = replay(selected, store=deps.store, notifier=deps.notifier, max_bytes=2**20)

    assert (result.outcome, result.error, result.done) == ("skipped", "now sent", True)
    assert deps.sender.messages == {}


def test_a_stored_payload_that_is_no_event_is_reported_unreadable():
    deps, clock = make()
    failed = delivered(deps, clock, fault=Permanent("refused", status=422))
    deps.store.notifications[failed]["payload"] = b"[1, 2]"
    selected = select(deps.store, Criteria(), now=NOW)

    [result] = replay(selected, store=deps.store, notifier=deps.notifier, max_bytes=2**20)

    assert (result.outcome, result.error) == (
        "unreadable",
        "ValueError: stored payload is not an event",
    )
    assert deps.store.notifications[failed]["status"] == "failed"


def test_replay_reports_progress_with_counts():
    deps, clock = make()
    for _ in range(3):
        delivered(deps, clock, fault=Permanent("refused", status=422))
    seen = []
    replay(
        select(deps.store, Criteria(), now=NOW),
        store=deps.store,
        notifier=deps.notifier,
        max_bytes=2**20,
        on_progress=lambda done, counts: seen.append((done, counts)),
    )
    assert seen == [(1, {"sent": 1}), (2, {"sent": 2}), (3, {"sent": 3})]


# -- redrive --------------------------------------------------------------------------------------


def dead_letter(dead, n, document=None, **attributes):
    data = json.dumps(document or factories.event()).encode()
    dead.add(f"m{n}", data, CloudPubSubDeadLetterSourceDeliveryCount="10", **attributes)
    return data


def test_to_topic_republishes_with_the_publishers_attributes_then_acknowledges():
    dead, topic = fakes.MemoryDeadLetters(), fakes.MemoryTopic()
    payloads = [dead_letter(dead, n, origin="billing") for n in range(3)]
    failing = dead_letter(dead, 9)
    topic.fail_for.add(failing)

    results = redrive(dead_letters=dead, mode=TO_TOPIC, republisher=topic, batch=2)

    assert [(r.message_id, r.outcome, r.acked) for r in results] == [
        ("m0", "republished", True),
        ("m1", "republished", True),
        ("m2", "republished", True),
        ("m9", "retried", False),
    ]
    assert [data for data, _ in topic.published] == payloads
    assert topic.published[0][1] == {"origin": "billing", REDRIVEN_FROM: "m0"}
    assert results[0].source_attempts == 10
    assert sorted(dead.acked) == ["m0", "m1", "m2"]
    assert [m.message_id for m in dead.waiting] == ["m9"]  # back for the next run


def test_a_dry_run_describes_and_keeps_everything():
    dead = fakes.MemoryDeadLetters()
    event = factories.event(project="globex")
    dead_letter(dead, 1, event)
    dead.add("m2", b"not json")

    results = redrive(dead_letters=dead, mode=TO_TOPIC, dry_run=True)

    assert [(r.outcome, r.acked, r.event_id, r.project) for r in results] == [
        ("dry_run", False, event["id"], "globex"),
        ("dry_run", False, None, None),
    ]
    assert results[1].detail == "invalid: not_json"
    assert dead.acked == [] and len(dead.waiting) == 2


def test_direct_acknowledges_only_final_outcomes_and_an_ack_that_fails_is_said():
    deps, _ = make()
    dead = fakes.MemoryDeadLetters()
    sent, refused, down = (factories.event() for _ in range(3))
    for n, document in enumerate([sent, refused, down]):
        dead_letter(dead, n, document)
    dead.add("m3", b"not json")
    dead.refuse_acks.add("ack-m3")
    accepted = Sent(f"msg_{sent['id']}", 202)
    deps.sender.script.extend([accepted, Permanent("no", status=422), SvixUnavailable("down")])

    def process(envelope):

        from notifier.handlers import pubsub

        return pubsub.process(envelope, deps)

    results = redrive(dead_letters=dead, mode=DIRECT, process=process, workers=1)

    assert [(r.message_id, r.outcome, r.acked) for r in results] == [
        ("m0", "sent", True),
        ("m1", "failed", True),
        ("m2", "retried", False),
        ("m3", "rejected", False),
    ]
    assert results[2].detail == "svix_unavailable"
    assert results[3].detail == "ack failed: may come back"
    assert sorted(dead.acked) == ["m0", "m1"]
    assert sorted(m.message_id for m in dead.waiting) == ["m2", "m3"]
    assert "pubsub-m3" in deps.store.rejected
