"""What arrives: a validated platform event, what Pub/Sub says about its delivery, and the ids
an event may carry."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Schema patterns use `$`, which Python lets match before a trailing newline: check again strictly.
# These ids become Firestore document ids and Svix identifiers, so nothing else may pass.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Svix refuses a uid that starts like its own ids ("Uids are not allowed to have the same prefix as
# the ID"): the project is the application's uid and the event id the message's eventId.
SVIX_RESERVED_PREFIXES = {"id": "msg_", "project": "app_"}


def safe_id(value: object) -> str | None:
    """``value`` if it is an id fit for a log line or a document id (:data:`SAFE_ID`), else None."""
    return value if isinstance(value, str) and SAFE_ID.fullmatch(value) else None


@dataclass(frozen=True)
class Delivery:
    """What Pub/Sub says about one delivery; safe to log and store."""

    message_id: str = ""
    publish_time: str = ""
    delivery_attempt: int | None = None
    subscription: str = ""


@dataclass(frozen=True)
class Event:
    """A platform event that passed validation. ``body`` is its canonical JSON, as sent to Svix."""

    id: str
    project: str
    type: str
    time: str
    payload: dict[str, Any] = field(repr=False)
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Identity:
    """The ids a message says it carries, read before (or without) validating it."""

    id: str
    project: str
    type: str


NO_PUBSUB_DELIVERY = Delivery()  # a direct POST, or an operator's replay: nothing from Pub/Sub
