"""Pub/Sub messages as Eventarc delivers them to a 2nd gen function: binary-mode CloudEvents."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def pubsub_request(
    data: bytes | None,
    message_id: str,
    *,
    project: str = "local",
    topic: str = "platform-events",
    subscription: str = "eventarc-sub",
    attributes: dict[str, str] | None = None,
    delivery_attempt: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one delivery; ``data=None`` is a message with attributes only."""
    published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    message: dict[str, Any] = {
        "attributes": attributes or {},
        "messageId": message_id,
        "publishTime": published,
    }
    if data is not None:
        message["data"] = base64.b64encode(data).decode()
    if delivery_attempt is not None:
        message["deliveryAttempt"] = delivery_attempt
    body = {"message": message, "subscription": f"projects/{project}/subscriptions/{subscription}"}
    headers = eventarc_headers(message_id, f"projects/{project}/topics/{topic}", published)
    return headers, json.dumps(body).encode()


def eventarc_headers(message_id: str, topic_path: str, published: str) -> dict[str, str]:
    """Binary-mode CloudEvent headers as Eventarc sets them for ``messagePublished``."""
    return {
        "ce-id": message_id,
        "ce-specversion": "1.0",
        "ce-type": PUBLISHED,
        "ce-source": f"//pubsub.googleapis.com/{topic_path}",
        "ce-time": published,
        "content-type": "application/json",
    }
