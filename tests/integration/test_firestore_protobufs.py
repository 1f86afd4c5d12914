"""The hot path's own Firestore protobufs (notifier/adapters/firestore/writes.py and reads.py)
against the client's: the same request built, the same document written, the same values read,
the same refusals, on the real emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.api_core import exceptions as gexc
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers

from notifier.adapters.firestore import reads, writes
from notifier.adapters.firestore.calls import TIMEOUT, read_retry

NOW = datetime.now(UTC)
# Every kind of value a record holds, and a few it might.
VALUES = {
    "status": "pending",
    "empty": "",
    "nothing": None,
    "yes": True,
    "no": False,
    "attempts": 3,
    "negative": -7,
    "big": 2**62,
    "ratio": 0.25,
    "payload": b"\x78\x9c\x00binary",
    "created_at": NOW,
    "naive": datetime(2020, 1, 2, 3, 4, 5, 678901),
    "offset": datetime(2020, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))),
    "before_1970": datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
    "nanos": DatetimeWithNanoseconds(2021, 5, 6, 7, 8, 9, nanosecond=123456789, tzinfo=UTC),
    "svix_exhausted": {"ep_1": {"at": NOW, "status_code": 500, "ids": ["a", 1, None]}},
    "empty_map": {},
    "list": [1, "two", 3.5, {"four": b"4"}],
    "empty_list": [],
}


def ref_of(db, name="d1"):
    return db.collection("notifications").document(name)


def test_a_create_is_the_write_the_client_builds(db):
    ref = ref_of(db)
    built = writes._Write(
        update=writes._document(ref, VALUES), current_document=writes._Precondition(exists=False)
    )
    assert built == _helpers.pbs_for_create(ref._document_path, VALUES)[0]._pb


def test_an_update_is_the_write_the_client_builds_deletes_included(db):
    ref = ref_of(db)
    deleted = {"payload": firestore.DELETE_FIELD, "lease_expires_at": firestore.DELETE_FIELD}
    fields = {k: v for k, v in VALUES.items() if k != "payload"}
    client_built = _helpers.pbs_for_update(ref._document_path, {**fields, **deleted}, None)[0]._pb
    paths = sorted([*fields, *deleted])
    built = writes._Write(
        update=writes._document(ref, fields),
        update_mask=writes._Mask(field_paths=paths),
        current_document=writes._Precondition(exists=True),
    )
    assert built == client_built


def test_every_value_is_encoded_as_the_client_encodes_it():
    for value in VALUES.values():
        assert writes.encode(value) == _helpers.encode_value(value)._pb, value


def test_a_value_the_records_never_hold_is_refused_by_name():
    with pytest.raises(TypeError, match="set"):
        writes.encode({1, 2})


def test_a_created_document_reads_back_through_the_client_as_written(db):
    ref = ref_of(db)
    result = writes.create(ref, VALUES, timeout=TIMEOUT)
    snapshot = ref.get()
    assert snapshot.update_time == result.update_time
    ref_of(db, "d2").create(VALUES)  # the same, by the client
    assert snapshot.to_dict() == ref_of(db, "d2").get().to_dict()


def test_a_create_of_an_existing_document_is_refused_and_changes_nothing(db):
    ref = ref_of(db)
    ref.create({"status": "sent"})
    before = ref.get()
    with pytest.raises(gexc.AlreadyExists):
        writes.create(ref, {"status": "pending"}, timeout=TIMEOUT)
    after = ref.get()
    assert (after.to_dict(), after.update_time) == ({"status": "sent"}, before.update_time)


def test_an_update_sets_its_fields_deletes_the_named_ones_and_keeps_the_rest(db):
    ref, twin = ref_of(db), ref_of(db, "d2")
    for each in (ref, twin):
        each.create({"status": "pending", "payload": b"x", "attempts": 1, "last_error": "e"})
    writes.update(
        ref, {"status": "sent", "sent_at": NOW}, delete=("payload", "last_error"), timeout=TIMEOUT
    )
    twin.update(
        {
            "status": "sent",
            "sent_at": NOW,
            "payload": firestore.DELETE_FIELD,
            "last_error": firestore.DELETE_FIELD,
        }
    )
    assert (
        ref.get().to_dict()
        == twin.get().to_dict()
        == {
            "status": "sent",
            "sent_at": NOW,
            "attempts": 1,
        }
    )


def test_an_update_of_a_missing_document_is_refused_and_creates_nothing(db):
    ref = ref_of(db)
    with pytest.raises(gexc.NotFound):
        writes.update(ref, {"status": "sent"}, delete=("payload",), timeout=TIMEOUT)
    assert not ref.get().exists


def test_a_read_answers_as_the_clients_snapshot_for_every_value(db):
    ref = ref_of(db)
    ref.create(VALUES)
    theirs = ref.get()
    ours = reads.get(ref, None, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
    assert ours.exists
    assert ours.to_dict() == theirs.to_dict()
    assert ours.update_time == theirs.update_time
    assert isinstance(ours.to_dict()["created_at"], DatetimeWithNanoseconds)  # as the client's


def test_a_read_with_fields_reads_only_those(db):
    ref = ref_of(db)
    ref.create(VALUES)
    ours = reads.get(
        ref, ["status", "attempts", "absent"], retry=read_retry(TIMEOUT), timeout=TIMEOUT
    )
    assert ours.to_dict() == ref.get(["status", "attempts", "absent"]).to_dict()
    assert ours.to_dict() == {"status": "pending", "attempts": 3}


def test_a_read_of_a_missing_document_says_so(db):
    ours = reads.get(ref_of(db), None, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
    assert (ours.exists, ours.to_dict(), ours.update_time) == (False, None, None)


def test_a_read_of_a_reference_value_falls_back_to_the_clients_decoding(db):
    ref = ref_of(db)
    ref.create({"points_to": ref_of(db, "other"), "where": firestore.GeoPoint(1.5, -2.5)})
    ours = reads.get(ref, None, retry=read_retry(TIMEOUT), timeout=TIMEOUT).to_dict()
    assert ours == ref.get().to_dict()
    assert ours["points_to"].path == "notifications/other"


def test_the_version_a_write_returns_conditions_the_next_write_as_the_clients_does(db):
    ref = ref_of(db)
    first = writes.create(ref, {"status": "pending"}, timeout=TIMEOUT)
    stale = first.update_time
    ref.update({"status": "pending", "attempts": 2}, option=db.write_option(last_update_time=stale))
    with pytest.raises(gexc.FailedPrecondition):  # the record moved on: the old version is stale
        ref.update({"status": "sent"}, option=db.write_option(last_update_time=stale))
    read = reads.get(ref, None, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
    ref.update({"status": "sent"}, option=db.write_option(last_update_time=read.update_time))
    assert ref.get().to_dict()["status"] == "sent"


def test_what_a_read_hands_out_is_a_copy_each_time(db):
    ref = ref_of(db)
    ref.create({"status": "sent", "attempts": 1})
    snapshot = reads.get(ref, None, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
    snapshot.to_dict()["status"] = "pending"  # as the client's snapshot, a caller cannot change it
    assert snapshot.to_dict() == {"status": "sent", "attempts": 1}


def test_the_hot_read_decodes_a_records_values_itself(db, monkeypatch):
    """The client's decoder (proto-plus, the cost reads.py saves) only for what records never
    hold: references and geo points."""
    ref = ref_of(db)
    ref.create(VALUES)
    expected = ref.get().to_dict()  # by the client, before its decoder is watched
    handed = []
    theirs = reads._helpers.decode_value
    monkeypatch.setattr(
        reads._helpers,
        "decode_value",
        lambda value, client: handed.append(value) or theirs(value, client),
    )
    ours = reads.get(ref, None, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
    assert ours.to_dict() == expected
    assert handed == []


def test_the_hot_read_sends_the_clients_request_metadata(db, monkeypatch):
    """The resource prefix that routes a request to its database, as the client's get() sends."""
    api, sent = db._firestore_api, []
    theirs = api.batch_get_documents

    def recorded(*args, **kwargs):
        sent.append(kwargs.get("metadata"))
        return theirs(*args, **kwargs)

    monkeypatch.setattr(api, "batch_get_documents", recorded)
    reads.get(ref_of(db), None, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
    ref_of(db).get()
    assert len(sent) == 2
    assert sent[0] == sent[1]
    assert any(key == "google-cloud-resource-prefix" for key, _ in sent[0])
