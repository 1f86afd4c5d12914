"""core/idempotency.rs, step by step: a `Start` lock kept 5 s, finished 2xx answers kept 12 h,
anything else deletes the key; a second request polls every 200 ms until it finds the answer,
or the lock is gone (then it takes the lock and runs itself) or it has polled for more than
5 s (same); failing to take the lock then is a 500 with an empty body.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from devstack.svix_twin.answers import Answer, empty_500
from devstack.svix_twin.clock import Clock

EXPIRY_DEFAULT = 12 * 3600.0  # expiry_default()
EXPIRY_STARTING = 5.0  # expiry_starting()
WAIT_DURATION = 0.2  # wait_duration()

_START = object()


@dataclass
class _Entry:
    value: Answer | object
    expires: float


class Idempotency:
    """The cache (memory.rs semantics: set_if_not_exists, get, set, delete with expiry)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    @staticmethod
    def key(auth: str, key: str, uri: str) -> str:
        """IdempotencyKey::new: blake2b-512 of `auth:key:uri` (the Authorization header as sent)."""
        return hashlib.blake2b(f"{auth}:{key}:{uri}".encode()).hexdigest()

    def _get(self, key: str) -> Answer | object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= self._clock.now():
                self._entries.pop(key, None)
                return None
            return entry.value

    def _set_if_not_exists(self, key: str) -> bool:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires > self._clock.now():
                return False
            self._entries[key] = _Entry(_START, self._clock.now() + EXPIRY_STARTING)
            return True

    def _finish(self, key: str, answer: Answer) -> None:
        with self._lock:
            if 200 <= answer.status < 300:
                self._entries[key] = _Entry(answer, self._clock.now() + EXPIRY_DEFAULT)
            else:
                self._entries.pop(key, None)

    def run(self, key: str, execute: Callable[[], Answer]) -> tuple[Answer, bool]:
        """IdempotencyService::call for a POST with a key: (answer, replayed)."""
        if not self._set_if_not_exists(key):
            found = self._get(key)
            if isinstance(found, Answer):
                return found, True
            found = self._lock_loop(key)
            if isinstance(found, Answer):
                return found, True
            if not self._set_if_not_exists(key):
                return empty_500(), False
        answer = execute()
        self._finish(key, answer)
        return answer, False

    def _lock_loop(self, key: str) -> Answer | None:
        waited = 0.0
        while True:
            waited += WAIT_DURATION
            time.sleep(WAIT_DURATION)
            found = self._get(key)
            if isinstance(found, Answer):
                return found
            if found is None or waited > EXPIRY_STARTING:
                return None
