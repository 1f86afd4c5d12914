"""As Pub/Sub drives it: publish to the emulator, deliver by push, check Firestore and Svix."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from devstack.push_relay import PushRelay, ensure_topic_and_subscription, publish
from notifier.adapters.firestore.keys import document_key, natural_id
from tests import factories
from tests.conftest import PROJECT
from tests.support import eventually, unique_suffix


def fresh_topic(pubsub_emulator, function, *, push: bool):
    suffix = unique_suffix()
    topic, subscription = f"events-{suffix}", f"notifier-{suffix}"
    ensure_topic_and_subscription(
        PROJECT,
        topic,
        subscription,
        push_endpoint=function.url if push else None,
        min_backoff=1.0 if push else None,
        max_backoff=5.0 if push else None,
    )
    return topic, subscription


def statuses(db, event_ids):
    refs = [db.collection("notifications").document(document_key(i)) for i in event_ids]
    return {natural_id(snap.id): (snap.to_dict() or {}).get("status") for snap in db.get_all(refs)}


def test_a_push_subscription_delivers_events_duplicates_and_bad_messages(
    pubsub_emulator, function, db, svix
):
    topic, _ = fresh_topic(pubsub_emulator, function, push=True)
    events = [factories.event(project=p) for p in ("acme", "acme", "globex")]
    payloads = [json.dumps(e).encode() for e in events]
    payloads += [payloads[0], b"not json at all"]
    publish(PROJECT, topic, payloads)

    ids = [e["id"] for e in events]
    assert eventually(lambda: set(statuses(db, ids).values()) == {"sent"}, timeout=30)
    assert eventually(lambda: len(list(db.collection("rejected").stream())) == 1, timeout=10)
    assert Counter(m["eventId"] for m in svix.messages()) == Counter(ids)
    [rejected] = [d.to_dict() for d in db.collection("rejected").stream()]
    assert (rejected["reason"], rejected["raw"]) == ("not_json", b"not json at all")


def test_duplicates_published_concurrently_are_sent_exactly_once(
    pubsub_emulator, function, db, svix
):
    topic, subscription = fresh_topic(pubsub_emulator, function, push=False)
    events = [factories.event(project=f"p{n % 3}") for n in range(30)]
    copies = [json.dumps(e).encode() for e in events for _ in range(4)]  # every event 4 times

    with PushRelay(
        PROJECT, subscription, function.url, concurrency=16, min_backoff=0.2, max_backoff=2.0
    ) as relay:
        with ThreadPoolExecutor(8) as pool:  # published from several threads at once
            list(pool.map(lambda p: publish(PROJECT, topic, [p]), copies))
        assert relay.wait_idle(timeout=90, expected_acks=len(copies))
        stats = relay.stats

    assert Counter(m["eventId"] for m in svix.messages()) == Counter(e["id"] for e in events)
    assert set(statuses(db, [e["id"] for e in events]).values()) == {"sent"}
    assert stats["acks"] == len(copies)
    # Every delivery that found the event in flight elsewhere was answered 503 and redelivered
    # after the backoff, not dropped.
    for message in stats["per_message"].values():
        assert message["statuses"][-1] == 200
        assert set(message["statuses"][:-1]) <= {503}
