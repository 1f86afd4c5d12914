"""Decoding and validation: every message ends as an event or a rejection that says why."""

import base64
import json

import pytest

from notifier.domain.decoding import decode, delivery_of, parse_event
from notifier.domain.errors import Rejected
from tests import factories

LIMIT = 1024 * 1024


def reason(envelope) -> str:
    with pytest.raises(Rejected) as caught:
        decode(envelope, max_bytes=LIMIT)
    return caught.value.code


def test_valid_event_decodes_with_canonical_body():
    document = factories.event(project="globex", type="payment.succeeded")
    event = decode(factories.envelope(document), max_bytes=LIMIT)
    assert (event.id, event.project, event.type) == (document["id"], "globex", "payment.succeeded")
    assert json.loads(event.body) == document
    assert event.payload == document


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        (None, "bad_envelope"),
        ({"subscription": "s"}, "bad_envelope"),
        ({"message": {"messageId": "1"}}, "no_data"),
        ({"message": {"data": ""}}, "no_data"),
        ({"message": {"data": "not base64!!"}}, "not_base64"),
        ({"message": {"data": 42}}, "not_base64"),
        ({"message": {"data": base64.b64encode(b"\xff\xfe\x00").decode()}}, "not_utf8"),
        ({"message": {"data": base64.b64encode(b"{nope").decode()}}, "not_json"),
        ({"message": {"data": base64.b64encode(b"[1, 2]").decode()}}, "not_object"),
        ({"message": {"data": base64.b64encode(b'"text"').decode()}}, "not_object"),
        ({"message": {"data": base64.b64encode(b"[" * 100_000).decode()}}, "too_deep"),
    ],
)
def test_undecodable_messages_are_rejected_with_a_reason(envelope, expected):
    assert reason(envelope) == expected


@pytest.mark.parametrize(
    "field",
    [
        "object",
        "id",
        "data",
        "datacontenttype",
        "project",
        "source",
        "specversion",
        "time",
        "type",
        "version",
    ],
)
def test_each_required_field_is_required(field):
    document = factories.event()
    del document[field]
    with pytest.raises(Rejected) as caught:
        parse_event(json.dumps(document).encode(), max_bytes=LIMIT)
    assert caught.value.code == "schema_invalid"
    assert caught.value.errors == [f"/: '{field}' is a required property"]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"time": "yesterday"}, "/time"),
        ({"time": "2023-03-24 12:49"}, "/time"),
        ({"data": "a string"}, "/data"),
        ({"object": "user"}, "/object"),
        ({"id": 7}, "/id"),
        ({"project": ["acme"]}, "/project"),
    ],
)
def test_wrong_types_and_bad_dates_are_schema_invalid(overrides, path):
    with pytest.raises(Rejected) as caught:
        parse_event(json.dumps(factories.event(**overrides)).encode(), max_bytes=LIMIT)
    assert caught.value.code == "schema_invalid"
    assert [e.split(":")[0] for e in caught.value.errors] == [path]


@pytest.mark.parametrize(
    "unsafe",
    ["a/b", ".", "..", "__x__", "_leading", "x" * 129, "sp ace", "évt", "evt_1\n", ""],
)
@pytest.mark.parametrize("field", ["id", "project", "type"])
def test_ids_unsafe_for_firestore_or_svix_are_rejected(field, unsafe):
    with pytest.raises(Rejected) as caught:
        parse_event(json.dumps(factories.event(**{field: unsafe})).encode(), max_bytes=LIMIT)
    assert caught.value.code in {"schema_invalid", "unsafe_id"}


def test_event_over_the_size_limit_is_rejected_not_retried():
    big = factories.event(data={"blob": "x" * LIMIT})
    with pytest.raises(Rejected) as caught:
        decode(factories.envelope(big), max_bytes=LIMIT)
    assert caught.value.code == "too_large"


def test_delivery_metadata_is_read_from_any_shape():
    envelope = factories.envelope(None, message_id="123", deliveryAttempt=3)
    assert delivery_of(envelope).message_id == "123"
    assert delivery_of(envelope).delivery_attempt == 3
    assert delivery_of("garbage").message_id == ""
    assert delivery_of({"message": "x"}).message_id == ""
