"""Firestore: the database created only when missing, every field no operator query uses exempt
from indexing, and the TTL policies, all before any traffic."""

from __future__ import annotations

from tests.unit.deploy.plan import (
    exemptions,
    flag,
)


def test_firestore_ttl_policies(plan):
    for collection in ("notifications", "rejected"):
        [ttl] = [
            c
            for c in plan.find("gcloud", "firestore", "fields", "ttls", "update", "expires_at")
            if flag(c, "collection-group") == collection
        ]
        assert "--enable-ttl" in ttl
        assert flag(ttl, "database") == "(default)"


def test_firestore_database_is_created_only_when_missing(plan):
    describe = plan.one("gcloud", "firestore", "databases", "describe")
    create = plan.one("gcloud", "firestore", "databases", "create")
    assert plan.index(describe) < plan.index(create)
    assert flag(create, "location") == "europe-west1"
    assert flag(create, "type") == "firestore-native"


# Every timestamp, ever-growing value and blob of the records (CONTRACTS.md, issue 11), and
# every other field no operator query uses (tests/integration/test_indexes.py derives the set
# from the queries and the records; this is the plan's side).
UNINDEXED = {
    "notifications": {
        "created_at", "updated_at", "expires_at", "lease_expires_at", "sent_at", "failed_at",
        "last_error_at", "reopened_at", "event_time", "svix_first_call_at", "last_delivery_at",
        "payload", "event_id", "pubsub_message_id", "svix_message_id",
    },
    "rejected": {
        "created_at", "updated_at", "expires_at", "rejected_at", "last_delivery_at", "raw",
        "pubsub_message_id", "publish_time",
    },
    "heartbeats": {"expires_at", "published_at"},
}  # fmt: skip


# What the operator tools query by equality, or order by: these keep Firestore's default indexes.
QUERIED = {
    "notifications": {"status", "project", "event_type"},
    "rejected": set(),
    "heartbeats": {"arrived_at"},  # `latest` orders by it
}


def test_ever_growing_fields_and_blobs_are_exempt_from_indexing(plan):
    found = exemptions(plan)
    for collection, fields in UNINDEXED.items():
        assert fields <= found[collection], fields - found[collection]
        assert not QUERIED[collection] & found[collection]
    # Each is looked up first, so that a re-run changes nothing (see the re-run test).
    for collection, fields in found.items():
        for field in fields:
            [describe] = [
                c
                for c in plan.find("gcloud", "firestore", "indexes", "fields", "describe", field)
                if flag(c, "collection-group") == collection
                and flag(c, "format") == "value(indexConfig.indexes)"
            ]
            assert describe


def test_the_ttl_field_is_exempted_before_its_ttl_policy_and_before_any_traffic(plan):
    first_deploy = plan.find("gcloud", "functions", "deploy")[0]
    for collection in ("notifications", "rejected", "heartbeats"):
        [exempt] = [
            c
            for c in plan.find("gcloud", "firestore", "indexes", "fields", "update", "expires_at")
            if flag(c, "collection-group") == collection
        ]
        [ttl] = [
            c
            for c in plan.find("gcloud", "firestore", "fields", "ttls", "update", "expires_at")
            if flag(c, "collection-group") == collection
        ]
        # Waited for: Firestore runs one operation per field at a time.
        assert "--async" not in exempt
        assert plan.index(exempt) < plan.index(ttl) < plan.index(first_deploy)
