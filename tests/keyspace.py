"""Time-ordered event ids like the platform's, and how far apart their document keys land.

The platform's ids are ``evt_`` + a millisecond timestamp in 8 base62 digits (``0-9A-Za-z``, so
lexicographic order is time order) + ``3l4rLP`` (the same in every sample) + 14 random base62
characters: see samples/platform-events. Two measures say whether keys keep the time order:
Spearman's rank correlation between time order and key order, and the largest share of keys that
falls into any window of 1/64 of the key space (a hotspot is many consecutive writes in one range).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PLATFORM_EPOCH_MS = 1_679_661_662_535  # evt_0TZQPA1f...: 2023-03-24 12:41:02.535 UTC
SAMPLE_MIDDLE = "3l4rLP"


def base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    assert number == 0, "does not fit"
    return "".join(reversed(digits))


def timestamp_ms(event_id: str) -> int:
    """The millisecond timestamp an ``evt_`` id starts with."""
    value = 0
    for char in event_id[4:12]:
        value = value * 62 + BASE62.index(char)
    return value


def platform_event_ids(
    count: int, *, per_millisecond: int = 10, start_ms: int = PLATFORM_EPOCH_MS, seed: int = 11
) -> list[str]:
    """``count`` ids in time order, ``per_millisecond`` of them each millisecond (10 = 10,000/s);
    ids of the same millisecond in id order, as their timestamps cannot tell them apart."""
    rng = random.Random(seed)
    ids = []
    for n in range(count):
        tail = "".join(rng.choice(BASE62) for _ in range(14))
        ids.append(f"evt_{base62(start_ms + n // per_millisecond, 8)}{SAMPLE_MIDDLE}{tail}")
    for start in range(0, count, per_millisecond):
        ids[start : start + per_millisecond] = sorted(ids[start : start + per_millisecond])
    return ids


def spearman(time_ordered_keys: Sequence[str]) -> float:
    """Rank correlation between the keys' time order (as given) and their lexicographic order."""
    n = len(time_ordered_keys)
    assert n > 1 and len(set(time_ordered_keys)) == n, "keys must be distinct"
    key_rank = {key: rank for rank, key in enumerate(sorted(time_ordered_keys))}
    squared = sum((i - key_rank[key]) ** 2 for i, key in enumerate(time_ordered_keys))
    return 1 - 6 * squared / (n * (n * n - 1))


HEX = "0123456789abcdef"


def position(key: str, alphabet: str) -> float:
    """Where ``key`` lies in the space of strings over ``alphabet`` (in code point order), from 0
    to 1: its first characters as digits of a fraction, so that lexicographic order is numeric."""
    assert list(alphabet) == sorted(alphabet)
    place, scale = 0.0, 1.0
    for char in key[:8]:  # 8 hex digits: 2^32 places, finer than any window measured
        scale /= len(alphabet)
        place += alphabet.index(char) * scale
    return place


def largest_window_share(keys: Sequence[str], alphabet: str, *, windows: int = 64) -> float:
    """The largest share of ``keys`` in any window 1/``windows`` of the key space wide (anywhere,
    not only at multiples of the width): 1/``windows`` when spread evenly, 1 when all in one."""
    places = sorted(position(key, alphabet) for key in keys)
    width, most, start = 1 / windows, 0, 0
    for end, place in enumerate(places):
        while place - places[start] >= width:
            start += 1
        most = max(most, end - start + 1)
    return most / len(keys)
