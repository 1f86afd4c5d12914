"""What one delivery ended in: the sender's answer, and the outcome the entries act and log on."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from notifier.domain.errors import NotifierError


class OutcomeKind(enum.StrEnum):
    """How a delivery ended; the values are the log lines' ``outcome`` and the metrics' names."""

    SENT = "sent"  # Svix has it now, from this delivery
    DUPLICATE = "duplicate"  # done before (sent, or failed for good): nothing sent
    FAILED = "failed"  # Svix refused it for good: recorded failed
    RETRIED = "retried"  # not done: Pub/Sub (or the client) must deliver it again
    REJECTED = "rejected"  # not this event's to send (its id belongs to another): never sent


@dataclass(frozen=True)
class Sent:
    """Svix's answer to a message it accepted."""

    message_id: str | None
    # 202 for a new message; 409 when Svix already had this eventId (its message found by
    # eventId); 200 when the lookup before a late resend found it
    status: int


@dataclass(frozen=True)
class Outcome:
    """One delivery's result: what happened, and what Svix and the store said."""

    kind: OutcomeKind
    attempts: int = 0
    svix_status: int | None = None
    svix_message_id: str | None = None
    error: NotifierError | None = None
    retries: int = 0  # in-process retries of the Svix call
    waited: float = 0.0  # seconds spent waiting between them
    catalog_drift: str | None = None  # unknown_type | schema_drift: sent although off the catalog

    @property
    def must_retry(self) -> bool:
        """True when Pub/Sub must deliver again: the event is not done for good."""
        return self.kind is OutcomeKind.RETRIED

    @property
    def retry_after(self) -> float | None:
        """How long the error asked the next try to wait, if it said."""
        return getattr(self.error, "retry_after", None)
