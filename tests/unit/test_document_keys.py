"""Document keys spread time-ordered ids over the whole key space (issue 11.1).

Firestore hotspots on writes to lexicographically close document ids; the platform's event ids
and Pub/Sub's message ids are time-ordered. :func:`notifier.adapters.firestore.keys.document_key`
is the one maker of the keys of ``notifications/`` and ``rejected/``; these tests measure what it
does to 10,000 consecutive ids (tests/keyspace.py), and check the measures on the ids used as keys
directly, as they were before: there they must find the time order.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

from notifier.adapters.firestore.keys import document_key, natural_id
from tests.keyspace import (
    BASE62,
    HEX,
    largest_window_share,
    platform_event_ids,
    spearman,
)

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
WINDOWS = 64
EVENT_ID_ALPHABET = "".join(sorted(BASE62 + "_"))


@pytest.mark.parametrize("per_millisecond", [10, 1])  # 10,000 events/s, and 1,000/s
def test_consecutive_platform_event_ids_get_keys_unrelated_to_their_time_order(per_millisecond):
    ids = platform_event_ids(10_000, per_millisecond=per_millisecond)
    keys = [document_key(event_id) for event_id in ids]

    assert abs(spearman(keys)) < 0.05
    assert largest_window_share(keys, HEX, windows=WINDOWS) < 2.5 / WINDOWS


def test_the_ids_themselves_as_keys_are_one_hotspot():
    """The measures find what issue 11 found: ids as keys keep time order, all in one range."""
    ids = platform_event_ids(10_000)

    assert spearman(ids) == 1.0
    assert largest_window_share(ids, EVENT_ID_ALPHABET, windows=WINDOWS) == 1.0


def test_consecutive_pubsub_message_ids_get_rejected_keys_far_apart():
    """``rejected/`` records are named ``pubsub-<messageId>``; Pub/Sub's ids count up."""
    names = [f"pubsub-{n}" for n in range(13_158_412_733_911_000, 13_158_412_733_921_000)]
    keys = [document_key(name) for name in names]

    assert spearman(names) == 1.0
    assert abs(spearman(keys)) < 0.05
    assert largest_window_share(keys, HEX, windows=WINDOWS) < 2.5 / WINDOWS


def test_the_key_is_8_hex_of_the_ids_sha256_then_the_id():
    event_id = "evt_0TZQPA1f3l4rLP5TtREOHe44X3cv"
    digest = hashlib.sha256(event_id.encode("ascii")).hexdigest()

    assert document_key(event_id) == f"{digest[:8]}-{event_id}"


def test_a_key_gives_back_its_id_and_an_unspread_key_is_its_own_id():
    ids = [*platform_event_ids(1_000, seed=3), "pubsub-1", "sha256-" + "ab" * 32, "x"]

    assert [natural_id(document_key(i)) for i in ids] == ids
    # Records written before keys spread were named by the id itself (legacy, until their TTL).
    assert [natural_id(i) for i in ids] == ids
    assert natural_id("0badcafe-evt_1") == "0badcafe-evt_1"  # looks like a key, is not one


def test_keys_are_valid_firestore_document_ids_for_the_longest_event_id():
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "schemas/event.schema.json").read_text()
    )
    longest = "e" * schema["properties"]["id"]["maxLength"]
    key = document_key(longest)

    # Firestore: at most 1,500 bytes, no "/", not "." or "..", not __.*__.
    assert len(key.encode()) <= 1500 and "/" not in key and not key.startswith("__")


def test_the_generated_ids_are_like_the_platforms():
    """Every sample id is evt_ + its time in base62 milliseconds + 3l4rLP + 14 characters."""
    samples = [
        json.loads(path.read_text())
        for folder in ("events", "platform-events")
        for path in sorted((SAMPLES / folder).glob("*.json"))
    ]
    ids = [s["id"] for s in samples]
    generated = platform_event_ids(3)

    for event_id in ids + generated:
        assert len(event_id) == 32 and event_id.startswith("evt_")
        assert event_id[12:18] == "3l4rLP" and set(event_id[4:]) <= set(BASE62)
    # Time-ordered: pairs of samples with different times sort the same way by id (all but a
    # few of the invented fixtures, whose times were edited by hand).
    pairs = [
        (a["id"] < b["id"]) == (a["time"] < b["time"])
        for a, b in itertools.combinations(samples, 2)
        if a["time"] != b["time"]
    ]
    assert len(pairs) > 1000 and sum(pairs) / len(pairs) > 0.95
