"""Firestore adapter for heartbeats: ``heartbeats/{event id}``, one document per arrival.

``record`` creates the document (a ``create()`` precondition), so a second delivery of the same
heartbeat changes nothing and reports so: the canary logs the latency sample only for the first.
``latest`` orders by ``arrived_at``, which therefore keeps its single-field index (the collection
is small: one document per interval, deleted by the TTL policy on ``expires_at``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import firestore

from notifier.adapters.firestore.calls import guarded
from notifier.domain.heartbeat import Arrival, latency_ms

HEARTBEATS = "heartbeats"
# Svix waits 15 s for an answer: retry a flaky Firestore within that, then answer 503 and let Svix
# retry later (the client's default would keep trying for 60 s after Svix has given up).
_TIMEOUT = 4.0
_RETRY = gretry.Retry(
    predicate=gretry.if_transient_error, initial=0.1, maximum=1.0, multiplier=2.0, timeout=8.0
)


class FirestoreHeartbeatLog:
    """The canary's :class:`~notifier.domain.ports.HeartbeatLog`, and ``status``'s last one."""

    def __init__(self, client: firestore.Client, *, ttl_days: int) -> None:
        self._db = client
        self._ttl = timedelta(days=ttl_days)

    def record(self, event_id: str, published_at: datetime, arrived_at: datetime) -> bool:
        """True for the first arrival of ``event_id``; False (nothing written) for a repeat.

        (A create retried after a lost answer finds its own document and says False: that beat
        is kept but not logged, a missing sample rather than a double one.)
        """
        document = {
            "event_id": event_id,
            "published_at": published_at,
            "arrived_at": arrived_at,
            "latency_ms": latency_ms(published_at, arrived_at),
            "expires_at": arrived_at + self._ttl,
        }
        ref = self._db.collection(HEARTBEATS).document(event_id)
        with guarded():
            try:
                ref.create(document, retry=_RETRY, timeout=_TIMEOUT)
            except gexc.AlreadyExists:
                return False
        return True

    def latest(self) -> Arrival | None:
        """The heartbeat that arrived last, or None when none is kept (none yet, or all expired)."""
        query = (
            self._db.collection(HEARTBEATS)
            .order_by("arrived_at", direction=firestore.Query.DESCENDING)
            .limit(1)
        )
        with guarded():
            snapshots = list(query.stream(retry=_RETRY, timeout=_TIMEOUT))
        if not snapshots:
            return None
        return _arrival(snapshots[0].id, snapshots[0].to_dict() or {})


def _arrival(document_id: str, data: dict[str, Any]) -> Arrival:
    published_at: datetime = data["published_at"]
    arrived_at: datetime = data["arrived_at"]
    return Arrival(
        event_id=str(data.get("event_id") or document_id),
        published_at=published_at,
        arrived_at=arrived_at,
        latency_ms=float(data.get("latency_ms", latency_ms(published_at, arrived_at))),
    )
