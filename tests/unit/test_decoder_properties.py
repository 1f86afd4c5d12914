"""Properties of the decoder: whatever arrives, the answer is an Event or a Rejected with a reason.

``decode``/``parse_event``/``event_from`` are the only code that reads untrusted bytes; any other
exception escaping them is a 500 that Pub/Sub redelivers forever (a poisoned subscription). The
examples pinned with ``@example`` are inputs that once did exactly that, or nearly.
"""

from __future__ import annotations

import base64
import json
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from svix.api import MessageIn

from notifier.domain.decoding import decode, event_from, parse_event
from notifier.domain.errors import Rejected
from notifier.domain.events import SAFE_ID, Event
from notifier.domain.schema import quick_check, validator
from tests import factories

REASONS = {
    "bad_envelope",
    "no_data",
    "not_base64",
    "not_utf8",
    "not_json",
    "not_object",
    "too_deep",
    "schema_invalid",
    "unsafe_id",
    "too_large",
}
LIMIT = 1024 * 1024
FIELDS = list(factories.event())  # the ten required fields, in the schema's order

# Fast enough for every CI run (~1 s each); a failure prints the example to replay it.
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

# Odd unicode on purpose: lone surrogates, control characters, RTL marks, NUL, astral planes.
odd_text = st.text(st.characters(exclude_categories=()), max_size=40) | st.sampled_from(
    ["", ".", "..", "__x__", "a/b", "é", "\ud800", "\x00", "\u202e", "evt\n", "msg_1", "app_1"]
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | odd_text
)
json_values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=25,
)
safe_ids = st.from_regex(SAFE_ID, fullmatch=True)


def outcome(call, *args, **kwargs) -> Event | Rejected:
    """The call's result, or the Rejected it raised; any other exception fails the property."""
    try:
        result = call(*args, **kwargs)
    except Rejected as rejection:
        assert rejection.code in REASONS, rejection.code
        assert isinstance(rejection.detail, str) and len(rejection.detail) <= 500
        assert all(isinstance(e, str) for e in rejection.errors)
        return rejection
    assert isinstance(result, Event)
    return result


def check_accepted(event: Event, max_bytes: int) -> None:
    """What the rest of the pipeline relies on for an accepted event."""
    for value in (event.id, event.project, event.type):
        assert SAFE_ID.fullmatch(value), value  # a Firestore document id, a Svix identifier
    assert not event.id.startswith("msg_") and not event.project.startswith("app_")
    assert len(event.body) <= max_bytes
    assert json.loads(event.body.decode("utf-8")) == event.payload  # strict JSON, round trip
    # The Svix SDK can serialise it (it refuses what its serialiser cannot nest or encode).
    message = MessageIn(event_type=event.type, event_id=event.id, payload=event.payload)
    message.model_dump_json(exclude_unset=True, by_alias=True)  # as message.create does


def nested(depth: int, leaf: str = "{}") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@PROPERTY
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\xef\xbb\xbf{}")
@example(b'{"a": ' + b"1" * 5000 + b"}")  # beyond Python's int-from-string digit limit
@example(b'{"a": NaN}')
@example(b'{"a": 1e999}')
@example(b'"\\ud800"')
@example(b"[" * 100_000)
def test_any_bytes_become_an_event_or_a_rejection(raw):
    for data in (raw, base64.b64encode(raw).decode()):
        result = outcome(decode, {"message": {"data": data}}, max_bytes=LIMIT)
        if isinstance(result, Event):
            check_accepted(result, LIMIT)


@PROPERTY
@given(st.one_of(json_values, st.text(max_size=200), st.binary(max_size=64)))
@example({"data": "%%%"})
@example([])
def test_any_envelope_becomes_an_event_or_a_rejection(envelope):
    for candidate in (envelope, {"message": envelope}, {"message": {"data": envelope}}):
        result = outcome(decode, candidate, max_bytes=LIMIT)
        assert isinstance(result, Rejected)  # none of these carries an event


@PROPERTY
@given(json_values)
def test_any_json_becomes_an_event_or_a_rejection(document):
    try:
        raw = json.dumps(document).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return
    result = outcome(parse_event, raw, max_bytes=LIMIT)
    if isinstance(result, Event):
        check_accepted(result, LIMIT)


event_fields = st.fixed_dictionaries(
    {
        name: st.one_of(st.just(value), json_values)
        for name, value in factories.event().items()
        if name not in ("id", "project", "type")
    }
    | {
        "id": safe_ids | json_values,
        "project": safe_ids | json_values,
        "type": safe_ids | json_values,
    }
)


@PROPERTY
@given(
    event_fields,
    st.sets(st.sampled_from(FIELDS), max_size=3),
    st.integers(min_value=1, max_value=4096) | st.just(LIMIT),
)
@example(factories.event(data={"n": "\ud800"}), set(), LIMIT)
@example(factories.event(data={"x": float("nan")}), set(), LIMIT)
@example(factories.event(id="msg_2Qx"), set(), LIMIT)
@example(factories.event(project="app_2Qx"), set(), LIMIT)
@example(factories.event(id="a" * 128, project="b" * 128, type="c" * 128), set(), LIMIT)
def test_near_valid_events_are_accepted_only_when_safe(document, missing, max_bytes):
    for name in missing:
        document.pop(name, None)
    for call, arg in ((event_from, document), (parse_event, None)):
        if arg is None:
            try:
                arg = json.dumps(document).encode("utf-8", "surrogatepass")
            except (ValueError, RecursionError):
                continue
        result = outcome(call, arg, max_bytes=max_bytes)
        if isinstance(result, Event):
            check_accepted(result, max_bytes)
            assert not missing


@PROPERTY
@given(st.integers(min_value=1, max_value=3000), st.sampled_from(["{}", "[]", '"x"', "1"]))
@example(64, "{}")
@example(300, "{}")  # deeper than the Svix SDK's serialiser allows
@example(990, "{}")
def test_deep_nesting_anywhere_is_an_event_or_a_rejection(depth, leaf):
    document = factories.event()
    body = json.dumps(document)
    raw = body.replace('"data": {', '"data": {"deep": ' + nested(depth, leaf) + ", ", 1)
    result = outcome(parse_event, raw.encode(), max_bytes=LIMIT)
    if isinstance(result, Event):
        check_accepted(result, LIMIT)
    outcome(parse_event, ("[" * depth + "]" * depth).encode(), max_bytes=LIMIT)


@PROPERTY
@given(st.integers(min_value=0, max_value=2 * LIMIT), st.sampled_from(string.ascii_letters + "é"))
@example(LIMIT, "x")
def test_huge_strings_are_sent_or_rejected_as_too_large(size, char):
    document = factories.event(data={"blob": char * size})
    result = outcome(
        parse_event, json.dumps(document, ensure_ascii=False).encode(), max_bytes=LIMIT
    )
    if isinstance(result, Event):
        check_accepted(result, LIMIT)
    else:
        assert result.code == "too_large"


times = st.sampled_from(
    ["2023-03-24T12:49:22Z", "2023-03-24t12:49:22z", "2023-03-24T23:59:60Z", "2023-02-30T00:00:00Z",
     "2023-03-24T12:49:22.123456789+01:00", "2023-03-24T12:49:22+24:00", "2023-03-24 12:49:22Z",
     "2023-03-24T12:49:22", "20230324T124922Z", "2023-03-24T12:49:22Z\n", "\ud800", ""]
)  # fmt: skip
odd_ids = st.sampled_from(["evt\n", "a" * 129, "", "-a", "é", "a b", "\ud800"]) | safe_ids


@PROPERTY
@given(
    st.sampled_from(FIELDS),
    odd_ids | json_values,
    times | odd_text,
    st.sets(st.sampled_from(FIELDS), max_size=1),
)
def test_the_quick_check_passes_only_what_jsonschema_passes(field, value, time, missing):
    """jsonschema-rs answers first (microseconds); an event it passes must be one jsonschema
    passes, or the quick check would let through what the schema refuses. Near-valid events:
    one field changed, an odd time, maybe one field left out. (It may refuse more: ``evt\n``
    passes jsonschema's ``$`` and no quick check; the safe-id check refuses it after.)"""
    quick = quick_check()
    assert quick is not None  # jsonschema-rs is in requirements.txt
    document = {**factories.event(), field: value}
    document["time"] = time if field != "time" else document["time"]
    for name in missing:
        del document[name]
    if quick(document):  # what it refuses goes to jsonschema, which decides
        assert validator().is_valid(document), document
