"""The twin's clock: real time plus an offset tests can move forward across Svix's windows."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class Clock:
    """Monotonic seconds for windows and expiries, and UTC datetimes for answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._listeners: list[Callable[[], None]] = []

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each move, so waits measured on this clock can wake."""
        self._listeners.append(listener)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        for listener in self._listeners:
            listener()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0

    def now(self) -> float:
        """Seconds on a monotonic scale, for expiry arithmetic."""
        return time.monotonic() + self._offset

    def utcnow(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset)

    def iso(self) -> str:
        return self.utcnow().isoformat(timespec="microseconds").replace("+00:00", "Z")

    def unix(self) -> int:
        return int(self.utcnow().timestamp())
