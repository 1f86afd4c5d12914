"""Benchmark events: the sample events with fresh ids, as Eventarc would POST them."""

from __future__ import annotations

import itertools
import json
from functools import cache
from typing import Any

from devstack.cloudevents import pubsub_request
from devstack.function_server import ROOT

SAMPLES = ROOT / "samples" / "events"
_message_ids = itertools.count(1)


@cache
def _templates() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(path.read_text()) for path in sorted(SAMPLES.glob("*.json")))


def events(label: str, count: int, project: str = "acme") -> list[dict[str, Any]]:
    """``count`` distinct, schema-valid events, cycling through the samples' shapes."""
    templates = _templates()
    return [
        {**templates[i % len(templates)], "id": f"evt_{label}_{i:05d}", "project": project}
        for i in range(count)
    ]


def request(
    event: dict[str, Any], attempt: int = 1, *, republished: bool = False
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one Pub/Sub delivery of ``event``.

    ``attempt`` is Pub/Sub's ``deliveryAttempt``, which it sets on subscriptions with a
    dead-letter policy (as deployed): 1 for a first delivery, 2 and up for a redelivery. A
    redelivery is the same message, so it keeps the ``messageId`` of the event's first
    delivery, as Pub/Sub's do; ``republished``: the event published again, a new message.
    """
    message_id = f"bench-{event['id']}"
    if republished:
        message_id += f"-again-{next(_message_ids)}"
    return pubsub_request(json.dumps(event).encode(), message_id, delivery_attempt=attempt)


def envelope(
    event: dict[str, Any], attempt: int = 1, *, republished: bool = False
) -> dict[str, Any]:
    """What ``on_event`` receives as ``cloud_event.data`` for that delivery."""
    return json.loads(request(event, attempt, republished=republished)[1])
