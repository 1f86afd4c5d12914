"""Events and Pub/Sub envelopes for tests, shaped like the platform's own (fake personal data)."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime
from typing import Any

from svix.webhooks import Webhook

_counter = itertools.count(1)
PII = {"email": "ada.lovelace@example.com", "fullName": "Ada Lovelace", "phone": "+15555550199"}


def event(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    document = {
        "object": "event",
        "id": f"evt_test{n:08d}",
        "data": {
            "object": "user",
            "id": f"usr_test{n:08d}",
            "email": PII["email"],
            "fullName": PII["fullName"],
            "phoneNumber": PII["phone"],
            "createdAt": "2023-03-24T12:49:22Z",
        },
        "datacontenttype": "application/json",
        "project": "acme",
        "source": "https://api.example.com",
        "specversion": "1.0",
        "time": "2023-03-24T12:49:22Z",
        "type": "user.created",
        "version": "2023-01-30",
    }
    document.update(overrides)
    return document


def encode(payload: dict[str, Any] | bytes) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.b64encode(raw).decode()


def envelope(payload: dict[str, Any] | bytes | None, message_id: str = "m-1", **message: Any):
    """A Pub/Sub push envelope, as the function sees it in ``cloud_event.data``."""
    body: dict[str, Any] = {"messageId": message_id, "publishTime": "2026-11-28T10:00:00Z"}
    if payload is not None:
        body["data"] = encode(payload)
    body.update(message)
    return {"message": body, "subscription": "projects/p/subscriptions/s"}


def heartbeat_body(event_id: str, published_at: str, **overrides: Any) -> str:
    """The heartbeat event as Svix delivers it to the canary (compact JSON, as Svix sends it)."""
    document: dict[str, Any] = {
        "object": "event",
        "id": event_id,
        "type": "notifier.heartbeat",
        "project": "notifier-heartbeat",
        "time": published_at,
        "data": {"published_at": published_at},
        "source": "https://notifier.internal/heartbeat",
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "version": "2023-01-30",
    }
    document.update(overrides)
    return json.dumps(document, separators=(",", ":"))


def svix_signed(
    body: str, secret: str, *, msg_id: str = "msg_1", at: datetime | None = None
) -> dict[str, str]:
    """Headers as Svix sends a webhook, signed by the svix SDK (``at``: now unless given)."""
    at = at or datetime.now(UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(at.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
    }


APP_ID = "app_1srOrx2ZWZBpBUvZwXKQmoEYga2"  # the OpenAPI spec's examples
ENDPOINT_ID = "ep_1srOrx2ZWZBpBUvZwXKQmoEYga2"


def operational_webhook(kind: str, project: str = "acme", **data: Any) -> str:
    """An operational webhook as svix-server sends it (core/operational_webhooks.rs: ``type`` and
    ``data``), shaped by the OpenAPI ``webhooks`` section; ``data`` entries override (None: drop).

    The message types carry ``msgEventId`` (``event_id=``) and ``lastAttempt`` (``status=``)."""
    body: dict[str, Any] = {
        "appId": APP_ID,
        "appUid": project,
        "endpointId": ENDPOINT_ID,
        "endpointUid": "orders-hook",
    }
    if kind == "endpoint.disabled":
        body.update(failSince="2026-11-25T15:04:05Z", trigger="automatic")
    if kind.startswith("message.attempt."):
        del body["endpointUid"]  # MessageAttempt*EventData have none
        body.update(
            msgId="msg_1srOrx2ZWZBpBUvZwXKQmoEYga2",
            msgEventId=data.pop("event_id", "evt_test00000001"),
            lastAttempt={
                "id": "atmpt_1srOrx2ZWZBpBUvZwXKQmoEYga2",
                "responseStatusCode": data.pop("status", 500),
                "timestamp": "2026-11-30T10:00:00Z",
            },
        )
    body.update(data)
    body = {k: v for k, v in body.items() if v is not None}
    return json.dumps({"type": kind, "data": body}, separators=(",", ":"))
