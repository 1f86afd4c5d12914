"""Notification records as the operator tools see them: listed (never with the payload), or
stored (with it, for a replay)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from notifier.domain.claims import RecordStatus


@dataclass(frozen=True)
class Record:
    """A notification as listed: what an operator needs to judge it, never its payload."""

    event_id: str
    status: str
    project: str | None = None
    event_type: str | None = None
    attempts: int = 0
    replays: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    failed_at: datetime | None = None

    def stuck(self, now: datetime, older_than: timedelta) -> bool:
        """Pending, nobody holds it, and untouched for ``older_than``: Pub/Sub has given up on it
        (or it was dead-lettered), so only a replay will send it."""
        if self.status != RecordStatus.PENDING:
            return False
        if self.lease_expires_at is not None and self.lease_expires_at > now:
            return False
        return self.updated_at is None or self.updated_at <= now - older_than


@dataclass(frozen=True)
class StoredNotification:
    """A notification as stored now: its status, its replays and the event it holds."""

    event_id: str
    status: str
    replays: int = 0
    payload: bytes | None = None  # the event's JSON; dropped once sent
    unreadable: str | None = None  # why the stored payload could not be read, if it could not
