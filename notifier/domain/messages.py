"""A Pub/Sub message pulled back from a subscription (the dead letters), as operations see it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PulledMessage:
    """One pulled message: ``ack_id`` acknowledges this pull of it, the rest is the message."""

    ack_id: str
    message_id: str
    data: bytes = field(repr=False)
    attributes: dict[str, str] = field(default_factory=dict)
    publish_time: str = ""  # RFC 3339, as in a push body
