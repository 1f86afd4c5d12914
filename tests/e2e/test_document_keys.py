"""The keys the served function writes spread time-ordered events (issue 11.1), end to end:
Eventarc-style deliveries -> functions-framework -> Firestore emulator -> Svix twin.

300 consecutive platform-like events (10 per millisecond); their documents are read back from
the emulator and measured in the events' time order. With 300 keys sampling noise alone is
large (the rank correlation's standard deviation is about 0.058; an even spread puts about 4.7
keys in each 1/64, the busiest of the sliding windows about 2.8/64), hence wider bounds than the
10,000-id unit test; every key is checked to be ``document_key`` of its event id, which that test
measures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from notifier.adapters.firestore.keys import document_key
from tests import factories
from tests.keyspace import HEX, largest_window_share, platform_event_ids, spearman

WINDOWS = 64


def test_the_served_function_writes_consecutive_events_far_apart(deliver, db, svix):
    ids = platform_event_ids(300, seed=0)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: deliver(factories.event(id=i), message_id=i), ids))
    assert statuses == [200] * len(ids)
    assert sorted(m["eventId"] for m in svix.messages()) == ids

    written = {
        snap.get("event_id"): (snap.id, snap.get("status"))
        for snap in db.collection("notifications").select(["event_id", "status"]).stream()
    }
    assert sorted(written) == ids
    keys = [written[event_id][0] for event_id in ids]  # in time order
    assert keys == [document_key(event_id) for event_id in ids]
    assert {status for _, status in written.values()} == {"sent"}
    assert abs(spearman(keys)) < 0.2
    assert largest_window_share(keys, HEX, windows=WINDOWS) < 4.5 / WINDOWS
    assert spearman(ids) == 1.0  # what the ids themselves would have been as keys
