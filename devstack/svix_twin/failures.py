"""When svix-server disables a failing endpoint: worker.rs `process_endpoint_failure` and
`process_endpoint_success`, on the twin's clock.

Only an exhausted message counts as a failure. The first one stores "first failure at now" with
an expiry of twice `endpoint_failure_disable_after` (config.default.toml: 120 h); a later
exhaustion more than that period after it disables the endpoint (failSince = that first
failure); any successful delivery to the endpoint deletes the entry (the failures are forgiven).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from devstack.svix_twin.clock import Clock

DISABLE_AFTER_SECONDS = 120 * 3600.0  # config.default.toml: endpoint_failure_disable_after = 120


class FailureCache:
    """SVIX_FAILURE_CACHE_{org}_{app}_{endpoint}: first failure time, with an expiry."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[datetime, float]] = {}
        self.disable_after = DISABLE_AFTER_SECONDS

    def failure(self, endpoint_id: str) -> datetime | None:
        """An exhausted message: the first failure's time if the endpoint is to be disabled."""
        with self._lock:
            entry = self._entries.get(endpoint_id)
            if entry is not None and entry[1] > self._clock.now():
                first = entry[0]
                elapsed = self._clock.utcnow() - first
                return first if elapsed > timedelta(seconds=self.disable_after) else None
            expires = self._clock.now() + 2 * self.disable_after
            self._entries[endpoint_id] = (self._clock.utcnow(), expires)
            return None

    def success(self, endpoint_id: str) -> None:
        with self._lock:
            self._entries.pop(endpoint_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
