"""The tests' own waiting and naming helpers (tests/support.py) do what the tests rely on."""

from __future__ import annotations

import time

from tests.support import eventually, unique_suffix


def test_eventually_is_true_as_soon_as_the_condition_holds():
    ready_at = time.monotonic() + 0.2
    started = time.monotonic()
    assert eventually(lambda: time.monotonic() >= ready_at, timeout=5, every=0.02)
    assert time.monotonic() - started < 2


def test_eventually_gives_up_false_after_about_the_timeout():
    started = time.monotonic()
    assert not eventually(lambda: False, timeout=0.3, every=0.05)
    assert 0.25 <= time.monotonic() - started < 2


def test_unique_suffixes_differ_even_when_asked_for_at_once():
    suffixes = [unique_suffix() for _ in range(50)]
    assert len(set(suffixes)) == 50
    assert all(s[0].isdigit() and "_" not in s for s in suffixes)
