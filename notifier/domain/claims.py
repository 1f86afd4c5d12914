"""Who may call Svix for an event right now, and the statuses a notification record goes through.

The record statuses are written by the store and read by the operator tools: they are named here,
once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


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
    recorded_as: tuple[str, str] | None = None  # CONFLICT: the (project, type) the id belongs to
