"""The operator tools work with only the indexes deploy.sh leaves, and those are all they need
(issue 11.2).

Every query of these tests (and of every integration test: tests/integration/conftest.py) is
checked against deploy.sh's exemptions. Here the store's every query runs on records in every
state, with its answers checked; the fields it filters or orders by are the indexes needed, and
every other field the store writes must be exempt.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from notifier.adapters.firestore.heartbeats import FirestoreHeartbeatLog
from notifier.adapters.firestore.store import FirestoreStore
from notifier.domain.claims import RecordStatus
from notifier.domain.decoding import event_from
from notifier.domain.errors import Permanent, Rejected, SvixUnavailable
from notifier.domain.events import Delivery
from tests import factories
from tests.indexes import deployed_exemptions, equalities, unserved
from tests.keyspace import platform_event_ids


def an_event(event_id, project, event_type):
    document = factories.event(id=event_id, project=project, type=event_type)
    return event_from(json.loads(json.dumps(document)), max_bytes=2**20)


def records_in_every_state(db) -> FirestoreStore:
    """sent, failed, pending (released, reopened and replayed) and rejected records."""
    store = FirestoreStore(db, lease_seconds=60, ttl_days=30, raw_limit=64)
    ids = platform_event_ids(4, seed=7)
    sent, failed, released, replayed = (
        an_event(ids[0], "acme", "user.created"),
        an_event(ids[1], "acme", "payment.succeeded"),
        an_event(ids[2], "globex", "user.created"),
        an_event(ids[3], "globex", "payment.succeeded"),
    )
    store.mark_sent(store.claim(sent, Delivery(message_id="1")), "msg_1", 202)
    store.mark_failed(store.claim(failed, Delivery(message_id="2")), Permanent("bad", status=422))
    store.release(store.claim(released, Delivery(message_id="3")), SvixUnavailable("x"), hold=5)
    store.mark_failed(store.claim(replayed, Delivery()), Permanent("bad", status=400))
    assert store.reopen(replayed.id)
    store.claim(replayed, Delivery(message_id="4", delivery_attempt=2))
    store.save_application("acme", "app_1")
    store.reject(Rejected("schema_invalid", "1 error", errors=["/time: bad"]), Delivery("5"), b"{")
    return store


def test_the_operator_queries_answer_right_with_only_the_deployed_indexes(db, firestore_queries):
    store = records_in_every_state(db)
    now = datetime.now(UTC)
    heartbeats = FirestoreHeartbeatLog(db, ttl_days=30)
    heartbeats.record("hb-1", now - timedelta(minutes=6), now - timedelta(minutes=5))
    heartbeats.record("hb-2", now - timedelta(seconds=2), now)

    assert store.count(RecordStatus.SENT) == 1
    assert store.count(RecordStatus.PENDING) == 2
    assert store.count(RecordStatus.PENDING, project="globex") == 2
    assert store.count(RecordStatus.FAILED, project="globex") == 0
    assert store.count_rejected() == 1
    assert store.projects() == {"acme"}
    failed = list(
        store.listing(RecordStatus.FAILED, project="acme", event_type="payment.succeeded")
    )
    assert [r.project for r in failed] == ["acme"] and failed[0].event_id.startswith("evt_")
    pending = list(store.listing(RecordStatus.PENDING, event_type="payment.succeeded"))
    assert [(r.project, r.replays) for r in pending] == [("globex", 1)]
    stored = store.notification(pending[0].event_id)  # by its key: no query, no index
    assert stored is not None and stored.payload is not None
    latest = heartbeats.latest()
    assert latest is not None and latest.event_id == "hb-2"

    # The spy saw them all (the check at the end of the test is not vacuous), and the fields
    # they use are exactly the ones deploy.sh leaves indexed.
    assert len(firestore_queries) >= 9
    assert needed_fields(firestore_queries) == {
        "notifications": {"status", "project", "event_type"},
        "heartbeats": {"arrived_at"},
    }


def needed_fields(queries) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = {}
    for query in queries:
        fields = {f for f, _ in equalities(query.where) or []} if "where" in query else set()
        fields |= {o.field.field_path for o in query.order_by} - {"__name__"}
        if fields:
            needed.setdefault(query.from_[0].collection_id, set()).update(fields)
    return needed


def test_every_field_the_store_writes_is_either_queried_or_exempt(db):
    records_in_every_state(db)
    exempt = deployed_exemptions()
    queried = {"status", "project", "event_type"}

    for collection, keep in (("notifications", queried), ("rejected", set())):
        written = {f for snap in db.collection(collection).stream() for f in snap.to_dict()}
        assert keep <= written
        assert written - keep <= exempt[collection], written - keep - exempt[collection]
        assert not keep & exempt[collection]


def test_the_check_refuses_what_production_would_refuse(db):
    """Queries the emulator answers but the deployed indexes cannot serve."""
    notifications = db.collection("notifications")
    pending = notifications.where(filter=FieldFilter("status", "==", "pending"))
    exempt = deployed_exemptions()

    def why(query):
        return unserved(query._to_protobuf(), exempt)

    assert why(pending) is None
    assert why(pending.where(filter=FieldFilter("project", "==", "acme"))) is None
    assert "exempts" in why(notifications.where(filter=FieldFilter("event_id", "==", "evt_1")))
    assert "exempts" in why(notifications.order_by("created_at"))
    assert "composite" in why(pending.order_by("project"))
    assert "equality" in why(notifications.where(filter=FieldFilter("attempts", ">", 3)))
    assert "AND" in why(
        notifications.where(
            filter=firestore.Or(
                [FieldFilter("status", "==", "sent"), FieldFilter("status", "==", "failed")]
            )
        )
    )
