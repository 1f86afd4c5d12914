"""Issue 8's findings: the served function against the Svix twin's real behaviours.

Each asserts the product's promise (exactly one Svix message per event; `sent` only for messages
Svix holds), end to end: Pub/Sub deliveries POSTed to functions-framework, the Firestore emulator,
the twin. They were strict xfails until issue 8's fixes landed.
"""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from tests import factories

HOUR = 3600


def records(db):
    """The notification records by event id (not by document id, which may be a spread key)."""
    return {
        (d.to_dict() or {}).get("event_id") or d.id: d.to_dict()
        for d in db.collection("notifications").stream()
    }


def conflicts(svix):
    return sum(1 for c in svix.calls() if c["status"] == 409)


def deliver_until_acked(deliver, events, rounds=6):
    """Deliver all at once, then redeliver what was not acknowledged, like Pub/Sub."""
    pending = list(events)
    for _ in range(rounds):
        with ThreadPoolExecutor(len(pending)) as pool:
            statuses = list(pool.map(deliver, pending))
        pending = [e for e, s in zip(pending, statuses, strict=True) if s >= 300]
        if not pending:
            return


def test_first_events_of_new_projects_race_application_creation(deliver, db, svix):
    svix.configure(app_create_race_seconds=0.2)
    events = [factories.event(project=f"proj-{p}") for p in range(6) for _ in range(4)]
    deliver_until_acked(deliver, events)

    by_id = records(db)
    statuses = Counter(by_id[e["id"]]["status"] for e in events)
    assert statuses == {"sent": len(events)}
    assert_one_message_recorded_sent(db, svix, events)
    assert conflicts(svix) > 0  # the race was run, and lost by some


def test_events_of_projects_whose_application_was_deleted_in_svix(deliver, db, svix, http_svix):
    projects = [f"gone-{p}" for p in range(3)]
    for project in projects:
        assert deliver(factories.event(project=project)) == 200
        assert http_svix.delete(f"/api/v1/app/{project}").status_code == 204
    svix.configure(app_create_race_seconds=0.2)
    events = [factories.event(project=p) for p in projects for _ in range(3)]
    deliver_until_acked(deliver, events)

    held = {m["eventId"]: m["id"] for m in svix.messages()}
    by_id = records(db)
    for event in events:
        record = by_id[event["id"]]
        assert record["status"] == "sent", event["id"]
        assert event["id"] in held, f"{event['id']} recorded sent, but Svix holds no message"
        assert record.get("svix_message_id") == held[event["id"]], event["id"]
    assert_one_message_recorded_sent(db, svix, events)
    assert conflicts(svix) > 0


def move_clocks(db, svix, hours):
    """Time passes for everyone: the twin's clock moves forward, and every time the function
    wrote in its records moves back by as much (the function compares only those with its own
    clock, which a test cannot move in another process)."""
    svix.advance_clock(hours * HOUR)
    for snapshot in db.collection("notifications").stream():
        data = snapshot.to_dict()
        shifted = {k: v - timedelta(hours=hours) for k, v in data.items() if hasattr(v, "tzinfo")}
        snapshot.reference.update(shifted)


def assert_one_message_recorded_sent(db, svix, events):
    held = Counter(m["eventId"] for m in svix.messages())
    assert held == Counter(e["id"] for e in events)
    ids = {m["eventId"]: m["id"] for m in svix.messages()}
    by_id = records(db)
    for event in events:
        record = by_id[event["id"]]
        assert (record["status"], record.get("svix_message_id")) == ("sent", ids[event["id"]])


@pytest.mark.parametrize(
    ("hours", "svix_status", "lookups"),
    [(13, 409, 1), (25, 200, 1), (25 * 7, 200, 1)],
    ids=["past-12h-idempotency", "past-24h-event-id", "a-week-later"],
)
def test_lost_answers_then_windows_expire_then_redelivery_sends_no_second_message(
    deliver, db, svix, hours, svix_status, lookups
):
    event = factories.event(project="lossy")
    svix.set_faults([{"op": "msg.create", "lost": True}])
    first = [deliver(event, message_id="lossy-1") for _ in range(2)]  # each delivery gives up
    svix.clear_faults()
    move_clocks(db, svix, hours)
    deliver_until_acked(deliver, [event], rounds=3)

    assert all(status >= 500 for status in first)
    assert_one_message_recorded_sent(db, svix, [event])
    assert records(db)[event["id"]]["svix_status"] == svix_status
    assert [c["op"] for c in svix.calls()].count("msg.get") == lookups


@pytest.fixture
def http_svix(svix):
    import httpx

    from tests.conftest import TOKEN

    with httpx.Client(base_url=svix.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client
