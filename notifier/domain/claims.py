"""Who may call Svix for an event right now, and the statuses a notification record goes through.

The record statuses are written by the store and read by the operator tools: they are named here,
once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Svix keeps an ``eventId`` unique for one day (hosted; its spec). A pending event whose first Svix
# call may be older than this is looked up by ``eventId`` before it is sent again: 20 h leaves
# room for clocks (NOTIFIER_SVIX_DEDUP_WINDOW_SECONDS).
DEDUP_WINDOW_SECONDS = 72000.0
# A claim's lease: a holder at work renews it every third; a holder that died frees it this much
# after its last renewal. Pub/Sub's smallest backoff in deploy.sh is as long, so the first
# redelivery after a crash finds it free (NOTIFIER_LEASE_SECONDS; docs/decisions/renewed-claims.md).
LEASE_SECONDS = 10.0
# The longest a 429's Retry-After keeps a released claim held (a hold longer than a lease is kept
# on the record, with nobody renewing it).
HOLD_MAX_SECONDS = 300.0


class RecordStatus(enum.StrEnum):
    """A ``notifications/`` record's ``status``, as stored."""

    PENDING = "pending"  # not sent yet: in flight, waiting for a retry, or stuck
    SENT = "sent"  # done for good: Svix has it
    FAILED = "failed"  # done for good: Svix refused it; only an operator replays it


STATUSES = (RecordStatus.PENDING, RecordStatus.SENT, RecordStatus.FAILED)
REPLAYABLE = (RecordStatus.FAILED, RecordStatus.PENDING)


class ClaimState(enum.Enum):
    """What a delivery found when it tried to claim an event."""

    CLAIMED = "claimed"  # this delivery holds the lease and must send
    SENT = "sent"  # done for good: Svix has it
    FAILED = "failed"  # done for good: Svix refused it; only an operator replays it
    HELD = "held"  # another live delivery holds the lease
    CONFLICT = "conflict"  # the id is recorded for another project or type: not this event


@dataclass(frozen=True)
class Claim:
    """A delivery's hold on an event, as the store granted (or refused) it."""

    event_id: str
    state: ClaimState
    attempts: int = 0
    svix_message_id: str | None = None
    held_for: float = 0.0
    version: Any = None  # the store's token for the holder's conditioned writes (update_time)
    replays: int = 0  # times an operator reopened the event: part of its Svix idempotency key
    # When an earlier delivery may first have called Svix for the event (at the latest; stamped
    # at its claim); None when no delivery can have called it before this one.
    svix_first_call_at: datetime | None = None
    recorded_as: tuple[str, str] | None = None  # CONFLICT: the (project, type) the id belongs to


@dataclass(frozen=True)
class Look:
    """One read of an event's record, made before the event is decoded (a Pub/Sub redelivery):
    what the record says, and the read itself (``token``) for the claim to decide on instead of
    reading again. ``found`` False: no record (``token`` still stands for that read)."""

    event_id: str
    found: bool
    status: str | None = None
    project: str | None = None
    event_type: str | None = None
    pubsub_message_id: str | None = None  # the message whose delivery created the record
    attempts: int = 0
    svix_message_id: str | None = None
    token: Any = field(default=None, repr=False)  # the store's snapshot of that read
