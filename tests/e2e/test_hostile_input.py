"""Hostile and broken input end to end, as Eventarc delivers it to functions-framework.

Every message that can never succeed must be acknowledged (200: it cannot poison the
subscription), kept in ``rejected/`` with its reason, logged with that reason, and never reach
Svix or become a path in Firestore. The worker must keep serving afterwards. The unit tests
(test_events.py, test_decoder_properties.py) cover the decoder's branches; this file shows the
whole delivery does the right thing with each kind of input.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devstack.cloudevents import pubsub_request
from notifier.adapters.firestore.keys import document_key, natural_id
from tests import factories
from tests.e2e.conftest import log_lines

LIMIT = 1024 * 1024  # NOTIFIER_MAX_PAYLOAD_BYTES' default, Svix's payload limit
_ABSENT = object()


def compact(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def with_nested_data(depth: int) -> bytes:
    """A valid event whose ``data`` holds ``depth`` nested objects (built as text: any depth)."""
    body = json.dumps(factories.event(data={}))
    nested = '{"a":' * depth + "{}" + "}" * depth
    return body.replace('"data": {}', f'"data": {nested}').encode()


def event_holding(value: bytes) -> bytes:
    """A valid event whose ``data.value`` is ``value``, as raw JSON text (however invalid)."""
    raw = json.dumps(factories.event(data={"value": "PLACEHOLDER"})).encode()
    return raw.replace(b'"PLACEHOLDER"', value)


@dataclass(frozen=True)
class Case:
    """One hostile message: ``data`` is the event bytes (base64-encoded for the envelope), or
    ``field`` the raw value of ``message.data`` itself; ``reasons`` what it must be rejected as."""

    name: str
    reasons: frozenset[str]
    data: bytes | None = None
    field: Any = _ABSENT
    paths: tuple[str, ...] = ()  # schema/identifier paths the rejection must name


def case(name, reason, data=None, *, field=_ABSENT, paths=()):
    reasons = frozenset(reason.split("|"))
    return pytest.param(Case(name, reasons, data, field, tuple(paths)), id=name)


def event_with(**overrides) -> bytes:
    return json.dumps(factories.event(**overrides)).encode()


def event_without(name: str) -> bytes:
    document = factories.event()
    del document[name]
    return json.dumps(document).encode()


UNSAFE = "schema_invalid|unsafe_id"
CASES = [
    # The envelope's data: missing, empty, not base64, not a string.
    case("data-missing", "no_data"),
    case("data-empty", "no_data", b""),
    case("data-not-base64", "not_base64", field="%%% not base64 %%%"),
    case("data-bad-padding", "not_base64", field="eyJ"),
    case("data-urlsafe-base64", "not_base64", field="-_-_"),
    case("data-a-number", "not_base64", field=12345),
    case("data-an-object", "not_base64", field={"id": "evt_1"}),
    # Bytes that are not UTF-8 text.
    case("not-utf8", "not_utf8", b"\xff\xfe{}"),
    case("overlong-utf8", "not_utf8", b'{"id": "\xc0\xaf"}'),
    case("utf16-json", "not_utf8", event_with().decode().encode("utf-16")),
    case("lone-surrogate", "not_utf8", event_holding(b'"\\ud800"')),
    # Text that is not (strict) JSON.
    case("not-json", "not_json", b"{not json"),
    case("trailing-garbage", "not_json", event_with() + b" trailing"),
    case("nan", "not_json", event_holding(b"NaN")),
    case("infinity", "not_json", event_holding(b"-Infinity")),
    case("number-out-of-range", "not_json", event_holding(b"1e999")),
    case("integer-of-5000-digits", "not_json", event_holding(b"7" * 5000)),
    # JSON that is not an object.
    case("json-array", "not_object", b"[1, 2, 3]"),
    case("json-string", "not_object", b'"event"'),
    case("json-null", "not_object", b"null"),
    case("json-number", "not_object", b"42"),
    # Ambiguous JSON: a key twice (the last would win here, the first elsewhere).
    case("duplicate-id", "duplicate_key", event_with()[:-1] + b', "id": "evt_other"}'),
    case("duplicate-project", "duplicate_key", event_with()[:-1] + b', "project": "globex"}'),
    # Nested beyond what anything downstream can take (the worker must not crash).
    case("nested-arrays-100k", "too_deep", b"[" * 100_000),
    case("nested-objects-50k", "too_deep", b'{"a":' * 50_000),
    case("nested-data-65", "too_deep", with_nested_data(65)),
    case("nested-data-300", "too_deep", with_nested_data(300)),
    case("nested-data-990", "too_deep", with_nested_data(990)),
    # Schema-invalid events.
    case("missing-id", "schema_invalid", event_without("id"), paths=["/"]),
    case("missing-time", "schema_invalid", event_without("time"), paths=["/"]),
    case("missing-data", "schema_invalid", event_without("data"), paths=["/"]),
    case("id-a-number", "schema_invalid", event_with(id=7), paths=["/id"]),
    case("data-a-string", "schema_invalid", event_with(data="x"), paths=["/data"]),
    case("project-a-list", "schema_invalid", event_with(project=["acme"]), paths=["/project"]),
    case("object-not-event", "schema_invalid", event_with(object="user"), paths=["/object"]),
    case("time-not-a-date", "schema_invalid", event_with(time="yesterday"), paths=["/time"]),
    case("time-no-offset", "schema_invalid", event_with(time="2023-03-24T12:49:22")),
    case("time-feb-30", "schema_invalid", event_with(time="2023-02-30T12:00:00Z")),
    # Ids unsafe as Firestore document ids or Svix identifiers: never used to build a path.
    case("id-slash", UNSAFE, event_with(id="evt/../../x"), paths=["/id"]),
    case("id-dot", UNSAFE, event_with(id="."), paths=["/id"]),
    case("id-dotdot", UNSAFE, event_with(id=".."), paths=["/id"]),
    case("id-dunder", UNSAFE, event_with(id="__x__"), paths=["/id"]),
    case("id-129-chars", UNSAFE, event_with(id="e" * 129), paths=["/id"]),
    case("id-trailing-newline", UNSAFE, event_with(id="evt_1\n"), paths=["/id"]),
    case("id-unicode", UNSAFE, event_with(id="évt_1"), paths=["/id"]),
    case("id-space", UNSAFE, event_with(id="evt 1"), paths=["/id"]),
    case("id-svix-prefix", UNSAFE, event_with(id="msg_2QxYz"), paths=["/id"]),
    case("project-slash", UNSAFE, event_with(project="acme/x"), paths=["/project"]),
    case("project-dotdot", UNSAFE, event_with(project=".."), paths=["/project"]),
    case("project-dunder", UNSAFE, event_with(project="__acme__"), paths=["/project"]),
    case("project-svix-prefix", UNSAFE, event_with(project="app_2QxYz"), paths=["/project"]),
    case("project-percent", UNSAFE, event_with(project="acme%2F.."), paths=["/project"]),
    case("project-129-chars", UNSAFE, event_with(project="p" * 129), paths=["/project"]),
    case("type-space", UNSAFE, event_with(type="user created"), paths=["/type"]),
    case("type-129-chars", UNSAFE, event_with(type="t" * 129), paths=["/type"]),
    case("type-colon", UNSAFE, event_with(type="user:created"), paths=["/type"]),
    # Too large for Svix.
    case("over-1-mib", "too_large", event_with(data={"blob": "x" * LIMIT})),
]


def post(url: str, hostile: Case, message_id: str) -> httpx.Response:
    headers, body = pubsub_request(hostile.data, message_id)
    if hostile.field is not _ABSENT:
        envelope = json.loads(body)
        envelope["message"]["data"] = hostile.field
        body = json.dumps(envelope).encode()
    return httpx.post(url, headers=headers, content=body, timeout=60)


def everything_in(db) -> dict[str, list[str]]:
    return {c.id: [d.id for d in c.stream()] for c in db.collections()}


@pytest.mark.parametrize("hostile", CASES)
def test_hostile_input_is_acknowledged_recorded_logged_and_never_sent(
    function, db, svix, logs_dir, hostile
):
    message_id = f"hostile-{hostile.name}-{uuid.uuid4().hex[:8]}"
    response = post(function.url, hostile, message_id)

    assert response.status_code == 200, response.text  # acknowledged: never redelivered
    # Recorded under the Pub/Sub message id, and nowhere else: no id from the input became a path.
    doc_id = document_key(f"pubsub-{message_id}")
    assert everything_in(db) == {"rejected": [doc_id]}
    saved = db.collection("rejected").document(doc_id).get().to_dict()
    assert saved["reason"] in hostile.reasons
    assert saved["detail"] and saved["deliveries"] == 1
    if hostile.data:
        assert saved["raw_size"] == len(hostile.data)
        assert saved["raw"] == hostile.data[: len(saved["raw"])]
        assert saved["raw_truncated"] == (len(hostile.data) > len(saved["raw"]))
    error_paths = [e.split(":", 1)[0] for e in saved["errors"]]
    assert set(hostile.paths) <= set(error_paths)
    # Logged once, with the reason, at WARNING (bad input is not the function's error).
    [line] = [
        e for e in log_lines(logs_dir / "function.log") if e.get("pubsub_message_id") == message_id
    ]
    assert (line["severity"], line["outcome"], line["reason"]) == (
        "WARNING",
        "rejected",
        saved["reason"],
    )
    assert line["rejected_id"] == doc_id
    assert set(hostile.paths) <= set(line.get("error_paths") or [])
    assert svix.calls() == []


def test_the_worker_survives_a_burst_of_hostile_input_and_keeps_serving(
    function, db, svix, logs_dir
):
    log_path = logs_dir / "function.log"
    offset = log_path.stat().st_size
    nasty = [
        c.values[0]
        for c in CASES
        if c.id.startswith(("nested", "integer", "lone", "over-1-mib", "nan", "id-", "project-"))
    ]
    with ThreadPoolExecutor(8) as pool:  # concurrently, as Pub/Sub would deliver them
        statuses = list(
            pool.map(lambda c: post(function.url, c, f"burst-{c.name}").status_code, nasty)
        )
    assert statuses == [200] * len(nasty)

    event = factories.event()
    headers, body = pubsub_request(json.dumps(event).encode(), "after-the-burst")
    assert httpx.post(function.url, headers=headers, content=body, timeout=30).status_code == 200

    [message] = svix.messages()
    assert (message["eventId"], message["payload"]) == (event["id"], event)
    saved = db.collection("notifications").document(document_key(event["id"])).get().to_dict()
    assert saved["status"] == "sent"
    assert len(list(db.collection("rejected").stream())) == len(nasty)
    # No crash, traceback or worker restart in the function's output meanwhile.
    with log_path.open("rb") as log:
        log.seek(offset)
        output = log.read().decode("utf-8", "replace")
    for sign in ("Traceback", "Worker exiting", "Booting worker", '"severity": "ERROR"'):
        assert sign not in output


def incompressible_event(size: int) -> dict[str, Any]:
    """An event whose compact JSON is exactly ``size`` bytes of (seeded) random printable text:
    the worst case for the compressed payload kept in Firestore until the event is sent."""
    document = factories.event(data={"blob": ""})
    room = size - len(compact(document))
    alphabet = (
        string.ascii_letters + string.digits + string.punctuation.replace('"', "").replace("\\", "")
    )
    document["data"]["blob"] = "".join(random.Random(size).choices(alphabet, k=room))
    assert len(compact(document)) == size
    return document


def test_the_largest_event_svix_accepts_is_sent_and_one_byte_more_is_rejected(
    function, deliver, db, svix
):
    largest = incompressible_event(LIMIT)
    assert deliver(compact(largest), message_id="largest") == 200
    [message] = svix.messages()
    assert message["eventId"] == largest["id"] and message["payload"] == largest
    saved = db.collection("notifications").document(document_key(largest["id"])).get().to_dict()
    assert saved["status"] == "sent"

    too_large = incompressible_event(LIMIT + 1)
    assert deliver(compact(too_large), message_id="too-large") == 200
    saved = db.collection("rejected").document(document_key("pubsub-too-large")).get().to_dict()
    assert saved["reason"] == "too_large"
    assert saved["raw_size"] == LIMIT + 1 and saved["raw_truncated"] is True
    assert len(svix.messages()) == 1
    assert not db.collection("notifications").document(document_key(too_large["id"])).get().exists


def test_a_hostile_message_id_never_becomes_a_path(function, db, svix):
    hostile = Case("bad-message-id", frozenset({"not_json"}), b"{not json")
    assert post(function.url, hostile, "../../notifications/evt_1").status_code == 200
    [(collection, [doc_id])] = everything_in(db).items()
    assert collection == "rejected" and natural_id(doc_id).startswith("sha256-")
    saved = db.collection("rejected").document(doc_id).get().to_dict()
    assert (saved["reason"], saved["pubsub_message_id"]) == (
        "not_json",
        "../../notifications/evt_1",
    )


def test_redeliveries_of_a_rejected_message_are_counted_not_duplicated(function, db, svix):
    hostile = Case("again", frozenset({"not_object"}), b"[]")
    for _ in range(3):
        assert post(function.url, hostile, "rejected-thrice").status_code == 200
    assert everything_in(db) == {"rejected": [document_key("pubsub-rejected-thrice")]}
    saved = (
        db.collection("rejected").document(document_key("pubsub-rejected-thrice")).get().to_dict()
    )
    assert saved["deliveries"] == 3
