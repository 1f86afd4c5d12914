"""The heartbeat's domain: recognising the Scheduler's message, the event it becomes, its health."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from notifier.domain import heartbeat
from notifier.domain.decoding import decode, delivery_of, event_from
from notifier.domain.errors import Rejected
from tests import factories

# The shape Eventarc hands on_event (cloud_event.data), after the conformance fixture
# events/generate/data/pubsub_text-cloudevent-output.json, with the Scheduler job's message.
SCHEDULER_DATA = base64.b64encode(b'{"object":"heartbeat"}').decode()


def scheduler_envelope(message_id="8123456789012345", publish_time="2026-11-30T10:05:00.123Z"):
    return {
        "message": {
            "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
            "messageId": message_id,
            "publishTime": publish_time,
            "attributes": {"notifier": "heartbeat"},
            "data": SCHEDULER_DATA,
        },
        "subscription": "projects/p/subscriptions/eventarc-sub",
    }


def test_the_scheduler_message_is_a_heartbeat_request():
    assert heartbeat.is_heartbeat_request(scheduler_envelope())


def test_the_data_alone_or_the_attribute_alone_is_enough():
    data_only = scheduler_envelope()
    del data_only["message"]["attributes"]
    attribute_only = scheduler_envelope()
    attribute_only["message"]["data"] = ""  # the emulator's push of an attribute-only publish
    no_data_key = scheduler_envelope()
    del no_data_key["message"]["data"]
    assert heartbeat.is_heartbeat_request(data_only)
    assert heartbeat.is_heartbeat_request(attribute_only)
    assert heartbeat.is_heartbeat_request(no_data_key)


@pytest.mark.parametrize(
    "envelope",
    [
        factories.envelope(factories.event()),  # a platform event
        factories.envelope(factories.event(), attributes={"notifier": "heartbeat"}),
        factories.envelope(None),  # no data, no attribute
        factories.envelope(None, attributes={"notifier": "other"}),
        factories.envelope(b'{"object":"heartbeats"}'),
        factories.envelope(b"[1,2]"),
        factories.envelope(b"\xff\xfe"),
        {"message": {"data": "not base64!"}},
        {"message": {"data": 42}},
        {"message": "x"},
        None,
        [],
    ],
)
def test_anything_else_is_not_a_heartbeat_request(envelope):
    assert not heartbeat.is_heartbeat_request(envelope)


def padded_request(size: int) -> bytes:
    """The Scheduler's JSON, padded with whitespace (still valid JSON) to ``size`` bytes."""
    text = b'{"object":"heartbeat"}'
    return text[:-1] + b" " * (size - len(text)) + b"}"


# The cap is on the base64 text: 768 bytes of JSON are 1024 characters of base64, 769 are 1028.
@pytest.mark.parametrize(("size", "is_request"), [(768, True), (769, False)])
def test_a_valid_request_over_the_cap_is_not_decoded_at_all(monkeypatch, size, is_request):
    decoded: list[object] = []
    real = base64.b64decode
    monkeypatch.setattr(
        heartbeat.base64, "b64decode", lambda data, **kw: decoded.append(data) or real(data, **kw)
    )
    data = base64.b64encode(padded_request(size)).decode()
    envelope = {"message": {"data": data, "attributes": {"notifier": "heartbeat"}}}
    assert heartbeat.is_heartbeat_request(envelope) is is_request
    assert decoded == ([data] if is_request else [])


@pytest.mark.parametrize(("size", "is_request"), [(1024, True), (1025, False)])
def test_data_given_as_bytes_has_the_same_cap(size, is_request):
    envelope = {"message": {"data": padded_request(size)}}
    assert heartbeat.is_heartbeat_request(envelope) is is_request


def test_attributes_are_read_where_eventarc_puts_them():
    assert heartbeat.message_attributes(scheduler_envelope()) == {"notifier": "heartbeat"}
    assert heartbeat.message_attributes({"message": {"attributes": {"a": 1, "b": "c"}}}) == {
        "b": "c"
    }
    assert heartbeat.message_attributes({"message": {}}) == {}


def test_the_event_takes_its_id_and_time_from_the_delivery():
    envelope = scheduler_envelope()
    event = heartbeat.heartbeat_event(delivery_of(envelope))
    assert event.id == "hb-8123456789012345"
    assert event.type == "notifier.heartbeat"
    assert event.project == "notifier-heartbeat"
    assert event.time == "2026-11-30T10:05:00.123Z"
    assert event.payload["data"] == {"published_at": "2026-11-30T10:05:00.123Z"}


def test_two_publishes_of_the_same_payload_become_two_events_and_a_redelivery_the_same():
    first = heartbeat.heartbeat_event(delivery_of(scheduler_envelope("101")))
    second = heartbeat.heartbeat_event(delivery_of(scheduler_envelope("102")))
    again = heartbeat.heartbeat_event(delivery_of(scheduler_envelope("101")))
    assert first.id != second.id
    assert again.id == first.id and again.body == first.body


def test_the_event_is_a_valid_platform_event_by_the_common_rules():
    event = heartbeat.heartbeat_event(delivery_of(scheduler_envelope()), project="hb-staging")
    # The body, published as an ordinary event, decodes to the same event.
    reparsed = decode(factories.envelope(json.loads(event.body)), max_bytes=2**20)
    assert reparsed.id == event.id and reparsed.type == event.type
    assert reparsed.project == "hb-staging"
    assert event_from(dict(event.payload), max_bytes=2**20).body == event.body


@pytest.mark.parametrize(
    ("message_id", "publish_time", "reason"),
    [
        ("", "2026-11-30T10:05:00Z", "heartbeat_without_id"),
        ("123", "", "heartbeat_without_time"),
        ("123", "yesterday", "heartbeat_without_time"),
        ("123", "2026-11-30T10:05:00", "heartbeat_without_time"),  # no offset
        ("1/2", "2026-11-30T10:05:00Z", "schema_invalid"),  # the schema's id pattern
    ],
)
def test_a_delivery_without_a_usable_id_or_time_is_rejected(message_id, publish_time, reason):
    with pytest.raises(Rejected) as caught:
        heartbeat.heartbeat_event(delivery_of(scheduler_envelope(message_id, publish_time)))
    assert caught.value.code == reason


def test_a_project_that_is_not_a_safe_id_is_rejected():
    with pytest.raises(Rejected) as caught:
        heartbeat.heartbeat_event(delivery_of(scheduler_envelope()), project="app_x")
    assert caught.value.code == "unsafe_id"


def test_pubsub_times_parse_with_their_offset_and_nanoseconds():
    assert heartbeat.parse_time("2014-10-02T15:01:23.045123456Z") == datetime(
        2014, 10, 2, 15, 1, 23, 45123, tzinfo=UTC
    )
    assert heartbeat.parse_time("2026-11-30T11:05:00+01:00") == datetime(
        2026, 11, 30, 10, 5, tzinfo=UTC
    )
    for bad in ("2026-11-30", "2026-11-30T10:05:00", None, 17, "nonsense"):
        with pytest.raises(ValueError):
            heartbeat.parse_time(bad)


def test_latency_is_milliseconds_and_never_negative():
    published = datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    assert heartbeat.latency_ms(published, published + timedelta(seconds=1.25)) == 1250.0
    assert heartbeat.latency_ms(published, published - timedelta(milliseconds=3)) == 0.0


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def arrival(minutes_ago, latency=812.0):
    arrived = NOW - timedelta(minutes=minutes_ago)
    return heartbeat.Arrival("hb-1", arrived - timedelta(milliseconds=latency), arrived, latency)


def test_a_recent_heartbeat_is_healthy_and_the_summary_says_when_and_how_fast():
    health = heartbeat.judge(arrival(4), NOW)
    assert health.healthy and health.label == "healthy"
    assert health.age_seconds == 240
    assert health.summary() == (
        "heartbeat healthy: last arrived 2026-11-30T11:56:00+00:00 (4 min ago), latency 812 ms"
    )


def test_a_heartbeat_older_than_the_threshold_is_late():
    assert heartbeat.judge(arrival(15), NOW).healthy  # exactly at the threshold: not yet
    late = heartbeat.judge(arrival(16), NOW)
    assert not late.healthy and late.label == "late"
    assert "(16 min ago)" in late.summary()
    assert "expected every 5 min, late after 15 min" in late.summary()


def test_no_heartbeat_at_all_is_late():
    health = heartbeat.judge(None, NOW)
    assert not health.healthy
    assert health.summary() == "heartbeat late: none has arrived (expected every 5 min)"


def test_the_threshold_and_interval_are_options():
    assert not heartbeat.judge(arrival(4), NOW, interval_seconds=60, late_after_seconds=180).healthy
    assert heartbeat.judge(arrival(40), NOW, late_after_seconds=3600).healthy


def test_an_arrival_from_a_clock_running_ahead_counts_as_just_now():
    assert heartbeat.judge(arrival(-1), NOW).age_seconds == 0.0


def test_a_threshold_shorter_than_the_interval_is_refused():
    with pytest.raises(ValueError):
        heartbeat.judge(None, NOW, interval_seconds=600, late_after_seconds=300)
    with pytest.raises(ValueError):
        heartbeat.judge(None, NOW, interval_seconds=0)


def test_the_pubsub_entry_gets_the_heartbeat_event_or_none_for_anything_else():
    envelope = scheduler_envelope("555")
    event = heartbeat.request_event(envelope, delivery_of(envelope), max_bytes=2**20)
    assert event is not None and event.id == "hb-555"
    ordinary = factories.envelope(factories.event())
    assert heartbeat.request_event(ordinary, delivery_of(ordinary), max_bytes=2**20) is None


def test_a_heartbeat_request_without_a_message_id_is_rejected_not_passed_on():
    envelope = scheduler_envelope("")
    with pytest.raises(Rejected) as caught:
        heartbeat.request_event(envelope, delivery_of(envelope), max_bytes=2**20)
    assert caught.value.code == "heartbeat_without_id"


def test_an_ordinary_event_is_not_parsed_by_the_heartbeat_check(monkeypatch):
    parsed: list[object] = []
    real = heartbeat.json.loads
    monkeypatch.setattr(heartbeat.json, "loads", lambda data: parsed.append(data) or real(data))
    event = b'{"object":"event","id":"evt_1","type":"user.created","data":{"name":"x"}}'
    envelope = {"message": {"data": base64.b64encode(event).decode()}}
    assert not heartbeat.is_heartbeat_request(envelope)
    assert parsed == []  # decoded once, by the event's own decoding, not twice


@pytest.mark.parametrize("text", [rb'{"object":"\u0068eartbeat"}', rb'{"\u006fbject":"heartbeat"}'])
def test_a_request_spelled_with_json_escapes_is_still_recognised(text):
    assert heartbeat.is_heartbeat_request({"message": {"data": base64.b64encode(text).decode()}})
