"""Operational webhooks: what core/operational_webhooks.rs sends, shaped as the spec's `webhooks`
section (`*Event{type, data}`), delivered signed to the operational-webhook endpoints.

svix-server posts each one as a message (`MessageIn{event_type, payload}`) to the management
Svix server, which delivers it like any message: own `msg_` id, svix-* headers signed with the
operational endpoint's secret, retried on the schedule. The twin is both servers at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from devstack.svix_twin import operational_endpoints
from devstack.svix_twin.store import Db, new_id

# spec `webhooks` the twin sends (core/operational_webhooks.rs::OperationalWebhook + hosted
# endpoint.enabled); background_task.* and ingest.* are not sent.
EVENT_TYPES = (
    "endpoint.created",
    "endpoint.updated",
    "endpoint.deleted",
    "endpoint.disabled",
    "endpoint.enabled",
    "message.attempt.failing",
    "message.attempt.exhausted",
    "message.attempt.recovered",
)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _app_uid(db: Db, app_id: str) -> str | None:
    with db.lock:
        app = db.apps.get(app_id)
        return app["uid"] if app is not None else None


def endpoint_event(db: Db, app_id: str, endpoint: dict[str, Any]) -> dict[str, Any]:
    """EndpointEvent (endpoint.created/updated/deleted, and the spec's EndpointEnabledEventData)."""
    return {
        "appId": app_id,
        "appUid": _app_uid(db, app_id),
        "endpointId": endpoint["id"],
        "endpointUid": endpoint["uid"],
    }


def disabled_event(
    db: Db, app_id: str, endpoint: dict[str, Any], fail_since: datetime | None, trigger: str
) -> dict[str, Any]:
    """EndpointDisabledEventData; `trigger` and a set `endpointUid` as the spec has them
    (svix-server sends `endpointUid: null`, a TODO in worker.rs, and no trigger)."""
    return {
        **endpoint_event(db, app_id, endpoint),
        "failSince": _iso(fail_since) if fail_since is not None else None,
        "trigger": trigger,
    }


def attempt_event(
    db: Db, message: dict[str, Any], endpoint_id: str, attempt: dict[str, Any]
) -> dict[str, Any]:
    """MessageAttemptEvent (failing, exhausted, recovered); lastAttempt: MessageAttempetLast."""
    return {
        "appId": message["app_id"],
        "appUid": _app_uid(db, message["app_id"]),
        "msgId": message["id"],
        "msgEventId": message["eventId"],
        "endpointId": endpoint_id,
        "lastAttempt": {
            "id": attempt["id"],
            "responseStatusCode": attempt["status_code"] or 0,  # 0 on transport errors
            "timestamp": attempt["at"],
        },
    }


class OperationalWebhooks:
    """Sends each event to every subscribed operational endpoint; remembers what it sent."""

    def __init__(self, db: Db, push: Callable[[dict[str, Any], str], None]) -> None:
        self._db = db
        self._push = push
        self._lock = threading.Lock()
        self._sent: list[dict[str, Any]] = []
        db.emit_operational = self.send

    def send(self, event_type: str, data: dict[str, Any]) -> None:
        """OperationalWebhookSenderInner::send_operational_webhook: `{"type", "data"}`."""
        body = json.dumps({"type": event_type, "data": data}, separators=(",", ":"))
        targets = operational_endpoints.targets(self._db, event_type)
        message = {
            "id": new_id("msg_"),
            "type": event_type,
            "data": data,
            "raw_payload": body,
            "timestamp": self._db.clock.iso(),
            "endpoint_ids": [e["id"] for e in targets],
        }
        with self._lock:
            self._sent.append(message)
        for endpoint in targets:
            self._push(message, endpoint["id"])

    def sent(self) -> list[dict[str, Any]]:
        """Every operational webhook the twin sent: id, type, data, timestamp, endpoint_ids."""
        with self._lock:
            return [
                {k: json.loads(json.dumps(m[k])) for k in m if k != "raw_payload"}
                for m in self._sent
            ]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()
