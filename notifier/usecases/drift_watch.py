"""Drift: an event sent although it is off the catalog (unknown type, or ``data`` that does not
match its type's schema) is reported, never held back.

The platform may ship a type before the catalog knows it, so the check comes after the event's
delivery is decided and can neither fail nor delay it: whatever goes wrong inside is logged once
and swallowed. One WARNING per type and cause per instance (the catalog gets fixed, the log does
not flood); each drifted event's outcome line carries ``catalog_drift`` too, for the log-based
metric that counts events (deploy.sh: ``jsonPayload.catalog_drift:* AND jsonPayload.outcome:*``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from notifier import logs
from notifier.domain.catalog import Drift
from notifier.domain.events import Event
from notifier.domain.ports import Checker

log = logs.get("catalog")
MAX_WARNED = 1000  # distinct (type, cause) pairs warned about per instance; then only counted


class DriftWatch:
    """Checks events against the catalog, loaded by ``load`` on the first check (after the first
    event's Svix call, not at cold start). Thread-safe; never raises."""

    def __init__(self, load: Callable[[], Checker], *, logger: logging.Logger = log) -> None:
        self._load = load
        self._logger = logger
        self._lock = threading.Lock()
        self._checker: Checker | None = None
        self._broken = False
        self._warned: set[tuple[str, str]] = set()

    def observe(self, event: Event) -> str | None:
        """The drift cause (``unknown_type``, ``schema_drift``) of this event, or None."""
        try:
            checker = self._checker or self._loaded()
            if checker is None:
                return None
            found = checker.drift(event.type, event.payload.get("data"))
            if found is None:
                return None
            self._warn_once(event, found)
            return found.cause
        except Exception as exc:  # noqa: BLE001 - a drift check must never cost a delivery
            self._failed_once(event.type, exc)
            return None

    def _loaded(self) -> Checker | None:
        with self._lock:
            if self._checker is None and not self._broken:
                try:
                    self._checker = self._load()
                except Exception as exc:  # noqa: BLE001 - no catalog: events flow unchecked
                    self._broken = True
                    name = type(exc).__name__
                    msg = f"catalog not loaded, drift not checked: {name}"
                    logs.log(self._logger, logging.ERROR, msg, error_type=name)
            return self._checker

    def _warn_once(self, event: Event, found: Drift) -> None:
        if not self._first_time((found.event_type, found.cause)):
            return
        logs.log(
            self._logger,
            logging.WARNING,
            f"event off catalog: {found.cause}",
            event_type=found.event_type,
            catalog_drift=found.cause,
            schema_paths=list(found.schema_paths),
            event_id=event.id,
        )

    def _failed_once(self, event_type: str, exc: Exception) -> None:
        """The exception's type only: its message may quote the event's values."""
        if not self._first_time((event_type, f"error:{type(exc).__name__}")):
            return
        logs.log(
            self._logger,
            logging.WARNING,
            "catalog drift check failed",
            event_type=event_type,
            error_type=type(exc).__name__,
        )

    def _first_time(self, key: tuple[str, str]) -> bool:
        """True once per key, and only while fewer than MAX_WARNED keys were warned about."""
        with self._lock:
            if key in self._warned or len(self._warned) >= MAX_WARNED:
                return False
            self._warned.add(key)
            return True
