"""The floor: the least the job can cost, on the raw Firestore and Svix clients, in-process.

Per new event only the unavoidable calls: claim (a ``create()``), send (one ``message.create``
with the idempotency key) and record (an ``update()``); a duplicate costs one read. The records
and messages have the function's shape and size, so the floor moves the same bytes. It does not
pay for HTTP into functions-framework, decoding, validation or logging: see ``http_floor.py``.
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from google.cloud import firestore
from svix.api import ApplicationIn, MessageCreateOptions, MessageIn, Svix, SvixOptions

from notifier.adapters.firestore.keys import document_key


def svix_client(token: str, server_url: str) -> Svix:
    """The SDK, with a keep-alive pool as large as the function's (32): the floor's best case."""
    svix = Svix(token, SvixOptions(server_url=server_url, timeout=10, retry_schedule=[]))
    svix._httpx_client = httpx.Client(
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=32)
    )
    return svix


class Floor:
    """Claim, send, record: three calls per new event, one per duplicate, nothing else."""

    def __init__(self, db: firestore.Client, svix: Svix) -> None:
        self._db = db
        self._svix = svix

    def new(self, event: dict[str, Any]) -> bool:
        now = datetime.now(UTC)
        ref = self._db.collection("notifications").document(document_key(event["id"]))
        body = json.dumps(event, separators=(",", ":")).encode()
        ref.create(
            {
                "status": "pending",
                "project": event["project"],
                "event_type": event["type"],
                "event_time": event["time"],
                "attempts": 1,
                "payload": zlib.compress(body, 6),
                "lease_expires_at": now + timedelta(seconds=120),
                "created_at": now,
                "updated_at": now,
                "expires_at": now + timedelta(days=30),
            }
        )
        project = event["project"]
        message = MessageIn(
            event_type=event["type"],
            event_id=event["id"],
            payload=event,
            application=ApplicationIn(uid=project, name=project),
        )
        options = MessageCreateOptions(idempotency_key=f"notifier-{event['id']}")
        out = self._svix.message.create(project, message, options)
        ref.update(
            {
                "status": "sent",
                "svix_message_id": out.id,
                "sent_at": now,
                "updated_at": now,
                "payload": firestore.DELETE_FIELD,
                "lease_expires_at": firestore.DELETE_FIELD,
            }
        )
        return True

    def close(self) -> None:
        self._svix._httpx_client.close()

    def duplicate(self, event: dict[str, Any]) -> bool:
        snapshot = self._db.collection("notifications").document(document_key(event["id"])).get()
        return snapshot.exists and (snapshot.to_dict() or {}).get("status") == "sent"
