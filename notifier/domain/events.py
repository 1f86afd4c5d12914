"""What arrives: a validated platform event, and what Pub/Sub says about its delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


NO_PUBSUB_DELIVERY = Delivery()  # a direct POST, or an operator's replay: nothing from Pub/Sub
