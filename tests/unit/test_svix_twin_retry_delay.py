"""The twin's retry delay, rule by rule from svix-server's worker.rs `calculate_retry_delay`."""

import pytest

from devstack.svix_twin.delivery import retry_delay


@pytest.mark.parametrize(
    ("base", "status", "timed_out", "retry_after", "expected"),
    [
        (5.0, 503, False, None, 5.0),
        (5.0, 429, False, None, 60.0),  # OVERLOAD_PENALTY_SECS
        (5.0, None, True, None, 60.0),  # a timeout, too
        (300.0, 429, False, None, 300.0),  # the penalty is a floor
        (5.0, 503, False, 20.0, 10.0),  # Retry-After clamped to [base, 2 x base]
        (5.0, 503, False, 1.0, 5.0),
        (300.0, 503, False, 400.0, 400.0),
    ],
)
def test_retry_delays_follow_calculate_retry_delay(base, status, timed_out, retry_after, expected):
    assert retry_delay(base, status, timed_out, retry_after, 0.0) == expected
    assert retry_delay(base, status, timed_out, retry_after, 1.0) == pytest.approx(expected * 1.2)
    assert retry_delay(base, status, timed_out, retry_after, -1.0) == pytest.approx(expected * 0.8)
