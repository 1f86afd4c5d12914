"""The heartbeat log against the real Firestore emulator: one document per arrival, the latest."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from notifier.adapters.firestore.heartbeats import FirestoreHeartbeatLog
from notifier.domain.errors import StoreUnavailable
from notifier.domain.heartbeat import judge
from tests.conftest import PROJECT

PUBLISHED = datetime(2026, 11, 30, 10, 5, 0, 123000, tzinfo=UTC)


def test_an_arrival_is_kept_with_its_latency_and_expiry(db):
    heartbeats = FirestoreHeartbeatLog(db, ttl_days=30)
    arrived = PUBLISHED + timedelta(milliseconds=1850)
    assert heartbeats.record("hb-101", PUBLISHED, arrived) is True
    saved = db.collection("heartbeats").document("hb-101").get().to_dict()
    assert saved["event_id"] == "hb-101"
    assert saved["published_at"] == PUBLISHED
    assert saved["arrived_at"] == arrived
    assert saved["latency_ms"] == pytest.approx(1850.0)
    assert saved["expires_at"] == arrived + timedelta(days=30)


def test_a_second_delivery_of_the_same_heartbeat_changes_nothing(db):
    heartbeats = FirestoreHeartbeatLog(db, ttl_days=30)
    first = PUBLISHED + timedelta(seconds=2)
    assert heartbeats.record("hb-101", PUBLISHED, first) is True
    assert heartbeats.record("hb-101", PUBLISHED, first + timedelta(minutes=5)) is False
    saved = db.collection("heartbeats").document("hb-101").get().to_dict()
    assert saved["arrived_at"] == first
    assert len(list(db.collection("heartbeats").stream())) == 1


def test_concurrent_deliveries_of_one_heartbeat_record_it_once(db):
    heartbeats = FirestoreHeartbeatLog(db, ttl_days=30)
    arrived = PUBLISHED + timedelta(seconds=1)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: heartbeats.record("hb-7", PUBLISHED, arrived), range(8)))
    assert results.count(True) == 1


def test_latest_is_the_last_arrival_not_the_last_publication(db):
    heartbeats = FirestoreHeartbeatLog(db, ttl_days=30)
    assert heartbeats.latest() is None
    heartbeats.record("hb-1", PUBLISHED, PUBLISHED + timedelta(seconds=1))
    # Published later but delayed: it arrives last, and is the one status shows.
    later = PUBLISHED + timedelta(minutes=5)
    heartbeats.record("hb-3", later, later + timedelta(minutes=7))
    heartbeats.record("hb-2", later + timedelta(minutes=5), later + timedelta(minutes=6))
    last = heartbeats.latest()
    assert last is not None
    assert last.event_id == "hb-3"
    assert last.arrived_at == later + timedelta(minutes=7)
    assert last.latency_ms == pytest.approx(7 * 60 * 1000)
    health = judge(last, later + timedelta(minutes=30))
    assert not health.healthy and "(23 min ago)" in health.summary()


def test_an_unreachable_firestore_is_unavailable_not_a_crash(firestore_emulator, monkeypatch):
    from google.cloud import firestore

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # nothing listens there
    heartbeats = FirestoreHeartbeatLog(firestore.Client(project=PROJECT), ttl_days=30)
    with pytest.raises(StoreUnavailable):
        heartbeats.record("hb-1", PUBLISHED, PUBLISHED + timedelta(seconds=1))
