"""Ambiguous JSON is not an event: a key twice in any object is ``duplicate_key`` at every entry.

Parsers disagree on which of two equal keys wins (Python's keeps the last, many keep the first),
so an event with ``"id"`` or ``"project"`` twice would be one event here and another upstream.
"""

import base64
import json

import pytest

from notifier.domain.decoding import decode, parse_event, parse_object
from notifier.domain.errors import Rejected
from tests import factories

LIMIT = 1024 * 1024


def with_twice(name: str, second: str) -> bytes:
    """A valid event's JSON with ``name`` given a second time, last (so it would win)."""
    text = json.dumps(factories.event())
    return (text[:-1] + f", {json.dumps(name)}: {json.dumps(second)}}}").encode()


def nested_twice() -> bytes:
    text = json.dumps(factories.event(data={"object": "user", "id": "usr_1"}))
    return text.replace('"id": "usr_1"', '"id": "usr_1", "id": "usr_2"').encode()


CASES = [
    pytest.param(with_twice("id", "evt_other"), id="id-twice"),
    pytest.param(with_twice("project", "globex"), id="project-twice"),
    pytest.param(nested_twice(), id="nested-key-twice"),
    pytest.param(b'{"a": 1, "a": 1}', id="same-value-twice"),
]


@pytest.mark.parametrize("raw", CASES)
def test_a_key_twice_is_rejected_by_the_shared_parser(raw):
    with pytest.raises(Rejected) as caught:
        parse_object(raw)
    assert caught.value.code == "duplicate_key"
    assert "evt_other" not in caught.value.detail and "globex" not in caught.value.detail


@pytest.mark.parametrize("raw", CASES[:3])
def test_a_key_twice_is_rejected_on_the_pubsub_and_redrive_entries(raw):
    envelope = {"message": {"data": base64.b64encode(raw).decode(), "messageId": "1"}}
    for parse in (
        lambda: decode(envelope, max_bytes=LIMIT),
        lambda: parse_event(raw, max_bytes=LIMIT),
    ):
        with pytest.raises(Rejected) as caught:
            parse()
        assert caught.value.code == "duplicate_key"


def test_equal_keys_in_different_objects_are_fine():
    document = factories.event(data={"object": "user", "id": "usr_1"})
    event = parse_event(json.dumps(document).encode(), max_bytes=LIMIT)
    assert document["id"] != document["data"]["id"]  # "id" in both objects
    assert event.payload == document
