"""How Svix answers are classified, and how Retry-After is read."""

import pytest

from notifier.adapters.svix.client import classify, parse_retry_after
from notifier.adapters.svix.messages import idempotency_key
from notifier.domain.errors import BadCredentials, Permanent, RateLimited, SvixUnavailable


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, RateLimited),
        (401, BadCredentials),
        (403, BadCredentials),
        (500, SvixUnavailable),
        (502, SvixUnavailable),
        (503, SvixUnavailable),
        (423, SvixUnavailable),
        (408, SvixUnavailable),
        (400, Permanent),
        (404, Permanent),
        (409, Permanent),
        (413, Permanent),
        (422, Permanent),
    ],
)
def test_status_classes(status, kind):
    error = classify(status, None, "detail")
    assert type(error) is kind
    assert error.status == status


def test_retry_after_seconds_and_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert classify(429, 7.0, "x").retry_after == 7.0


def test_idempotency_key_is_stable_per_event():
    assert idempotency_key("evt_1") == idempotency_key("evt_1") != idempotency_key("evt_2")


def test_a_replay_gets_its_own_key_and_a_first_delivery_keeps_the_old_one():
    assert idempotency_key("evt_1", 0) == "notifier-evt_1"
    assert idempotency_key("evt_1", 1) == "notifier-evt_1-replay1" != idempotency_key("evt_1", 2)
