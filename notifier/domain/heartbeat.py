"""The heartbeat: a scheduled event that proves webhooks really arrive, and how to judge it.

Cloud Scheduler publishes the same message every time (data ``{"object":"heartbeat"}``, attribute
``notifier=heartbeat``), so nothing in it can tell one beat from the next: the event's id comes from
the delivery, Pub/Sub's ``messageId``, unique per publish (and the same on every redelivery of that
publish, which keeps the normal claim idempotent). Pure functions only: no cloud SDK, no clock.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from notifier.domain.decoding import event_from
from notifier.domain.errors import Rejected
from notifier.domain.events import Delivery, Event

EVENT_TYPE = "notifier.heartbeat"
DEFAULT_PROJECT = "notifier-heartbeat"  # the heartbeats' project id and Svix app uid
REQUEST_OBJECT = "heartbeat"
REQUEST_ATTRIBUTE = ("notifier", "heartbeat")
ID_PREFIX = "hb-"
SOURCE = "https://notifier.internal/heartbeat"
SCHEMA_VERSION = "2023-01-30"
DEFAULT_INTERVAL_SECONDS = 300
DEFAULT_LATE_AFTER_SECONDS = 900
# A heartbeat request is ~25 bytes; anything longer is an ordinary event and is not even decoded
# here (this check runs on every message, so it must cost nothing for a 1 MiB event).
_MAX_REQUEST_BASE64 = 1024
_REQUEST_OBJECT_BYTES = REQUEST_OBJECT.encode()


def message_attributes(envelope: object) -> dict[str, str]:
    """The Pub/Sub message's attributes, ``message.attributes`` in both an Eventarc CloudEvent's
    data and a push body (conformance fixtures ``pubsub_text-cloudevent-*``); ``{}`` if absent."""
    message = envelope.get("message") if isinstance(envelope, Mapping) else None
    attributes = message.get("attributes") if isinstance(message, Mapping) else None
    if not isinstance(attributes, Mapping):
        return {}
    return {str(k): v for k, v in attributes.items() if isinstance(v, str)}


def is_heartbeat_request(envelope: object) -> bool:
    """True for the Scheduler's heartbeat message, recognised by either of its two marks.

    - data is a JSON object whose ``object`` is ``"heartbeat"`` (the platform's events all say
      ``"event"``, so this can never capture one), or
    - attribute ``notifier=heartbeat`` and no data (an attribute-only publish; the emulator's
      push then sends ``"data": ""``).
    The attribute alone does not override data that is something else: a message carrying a real
    event keeps the normal path, whatever its attributes say.
    """
    data = _small_data(envelope)
    if data is None:
        return False  # too large, or not base64: not ours
    if data == b"":
        key, value = REQUEST_ATTRIBUTE
        return message_attributes(envelope).get(key) == value
    if _REQUEST_OBJECT_BYTES not in data and b"\\u" not in data:
        return False  # no spelling of "heartbeat" in it (nor an escape that could hide one)
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(document, dict) and document.get("object") == REQUEST_OBJECT


def request_event(
    envelope: object, delivery: Delivery, *, project: str = DEFAULT_PROJECT, max_bytes: int
) -> Event | None:
    """The heartbeat event if ``envelope`` is the Scheduler's heartbeat request, else None.

    For the Pub/Sub entry: ``request_event(envelope, delivery, ...) or decode(envelope, ...)``;
    the event then goes the normal way (claim, one Svix message). Raises :class:`Rejected` like
    :func:`heartbeat_event`.
    """
    if not is_heartbeat_request(envelope):
        return None
    return heartbeat_event(delivery, project=project, max_bytes=max_bytes)


def heartbeat_event(
    delivery: Delivery, *, project: str = DEFAULT_PROJECT, max_bytes: int = 1024 * 1024
) -> Event:
    """The heartbeat request delivered as ``delivery``, as a platform event that passed the same
    validation as any other (schemas/event.schema.json, safe ids).

    Raises :class:`Rejected` when the delivery lacks the messageId or publishTime that make it
    unique and measurable; only a hand-made envelope can, Pub/Sub always sets both.
    """
    if not delivery.message_id:
        raise Rejected("heartbeat_without_id", "the heartbeat's Pub/Sub message has no messageId")
    try:
        parse_time(delivery.publish_time)
    except ValueError:
        raise Rejected(
            "heartbeat_without_time", "the heartbeat's Pub/Sub message has no valid publishTime"
        ) from None
    document = {
        "object": "event",
        "id": f"{ID_PREFIX}{delivery.message_id}",
        "type": EVENT_TYPE,
        "project": project,
        "time": delivery.publish_time,
        "data": {"published_at": delivery.publish_time},
        "source": SOURCE,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "version": SCHEMA_VERSION,
    }
    return event_from(document, max_bytes=max_bytes)


def parse_time(text: object) -> datetime:
    """An RFC 3339 timestamp with its offset (``Z`` included, nanoseconds truncated).

    Raises ValueError for anything else, including a time without an offset: a latency computed
    from a local time would be off by hours.
    """
    if not isinstance(text, str) or "T" not in text.upper():
        raise ValueError("not an RFC 3339 date-time")
    value = datetime.fromisoformat(text)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("the date-time has no offset")
    return value


def latency_ms(published_at: datetime, arrived_at: datetime) -> float:
    """Milliseconds from publication to arrival at the canary.

    Never negative: the two clocks are Google's and the function's, and a skew of a few
    milliseconds must not put a negative sample into the latency distribution.
    """
    return max(0.0, (arrived_at - published_at).total_seconds() * 1000.0)


@dataclass(frozen=True)
class Arrival:
    """One heartbeat that reached the canary."""

    event_id: str
    published_at: datetime
    arrived_at: datetime
    latency_ms: float


@dataclass(frozen=True)
class EndpointState:
    """What matters of the canary's existing Svix endpoint. ``filter_types`` None: every type."""

    url: str
    filter_types: frozenset[str] | None
    disabled: bool


@dataclass(frozen=True)
class Health:
    """The heartbeat's state for ``status``: healthy while the last one is recent enough."""

    healthy: bool
    last: Arrival | None
    age_seconds: float | None
    interval_seconds: float
    late_after_seconds: float

    @property
    def label(self) -> str:
        """``healthy`` or ``late``: the word ``status`` shows and ``--json`` gives as ``state``."""
        return "healthy" if self.healthy else "late"

    def summary(self) -> str:
        """One plain line (no markup), e.g. for the first line of ``notifier status``."""
        expected = f"expected every {_duration(self.interval_seconds)}"
        if self.last is None or self.age_seconds is None:
            return f"heartbeat late: none has arrived ({expected})"
        arrived = self.last.arrived_at.isoformat(timespec="seconds")
        text = (
            f"heartbeat {self.label}: last arrived {arrived} "
            f"({_duration(self.age_seconds)} ago), latency {self.last.latency_ms:.0f} ms"
        )
        if not self.healthy:
            text += f"; {expected}, late after {_duration(self.late_after_seconds)}"
        return text


def judge(
    last: Arrival | None,
    now: datetime,
    *,
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
    late_after_seconds: float = DEFAULT_LATE_AFTER_SECONDS,
) -> Health:
    """Healthy when the last heartbeat arrived at most ``late_after_seconds`` ago (the alert's
    threshold, 15 min by default); late otherwise, and late when none has ever arrived.

    The threshold must cover at least one interval, or every beat would be judged late before the
    next one is even due.
    """
    if interval_seconds <= 0:
        raise ValueError("the heartbeat interval must be positive")
    if late_after_seconds < interval_seconds:
        raise ValueError("the late threshold must be at least one heartbeat interval")
    if last is None:
        return Health(False, None, None, interval_seconds, late_after_seconds)
    # A last arrival "in the future" is another machine's clock running ahead: age 0.
    age = max(0.0, (now - last.arrived_at).total_seconds())
    return Health(age <= late_after_seconds, last, age, interval_seconds, late_after_seconds)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _small_data(envelope: object) -> bytes | None:
    """``message.data`` decoded if short; ``b""`` when there is none; ``None`` if not ours."""
    message = envelope.get("message") if isinstance(envelope, Mapping) else None
    data = message.get("data") if isinstance(message, Mapping) else None
    if data is None or data in ("", b""):
        return b""
    if isinstance(data, bytes | bytearray):
        return bytes(data) if len(data) <= _MAX_REQUEST_BASE64 else None
    if not isinstance(data, str) or len(data) > _MAX_REQUEST_BASE64:
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
