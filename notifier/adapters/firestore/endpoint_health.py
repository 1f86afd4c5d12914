"""Firestore adapter for endpoint health: ``endpoint_health/{appId}.{endpointId}``, one document
per customer endpoint Svix told us about, and ``operational_webhooks/{svix-id}``, one per webhook
applied, so that Svix's retry of a webhook changes nothing twice.

One transaction reads the webhook's marker, the endpoint's record and (for an exhausted message)
the event's ``notifications/`` record, and writes them together: a repeat finds its marker and
writes nothing. The event's record gets the fact (``svix_exhausted.{endpointId}``) only if it is
the webhook's project's (``appUid``): another tenant's webhook never touches a record.

Documents hold ids, times, states and status codes: never an endpoint URL, never a payload.
Markers and healthy endpoints expire (``expires_at``, the records' TTL), recovering ones the
TTL after their recovery settles; failing and disabled endpoints stay until Svix says they are
enabled or deleted, however long that takes. ``started`` records a recovery ``recover`` started,
in a transaction with the record it reads, so a failure webhook applied after the recovery
began stands. ``unhealthy`` asks by ``state`` (equality: its single-field index).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from notifier.adapters.firestore.calls import QUERY_TIMEOUT, TIMEOUT, guarded, read_retry
from notifier.adapters.firestore.keys import document_key
from notifier.adapters.firestore.store import NOTIFICATIONS
from notifier.domain.endpoint_health import (
    EXHAUSTED,
    Applied,
    EndpointHealth,
    Exhausted,
    RecoveryStarted,
    State,
    Webhook,
    apply,
    started,
)

ENDPOINT_HEALTH = "endpoint_health"
OPERATIONAL_WEBHOOKS = "operational_webhooks"


class FirestoreEndpointHealth:
    """:class:`~notifier.domain.ports.EndpointHealthLog` on Firestore."""

    def __init__(self, client: firestore.Client, *, ttl_days: int) -> None:
        self._db = client
        self._ttl = timedelta(days=ttl_days)

    def record(self, svix_id: str, webhook: Webhook, arrived_at: datetime) -> Applied:
        """Applies ``webhook`` once, atomically with its marker (see the module's docstring)."""
        marker = self._db.collection(OPERATIONAL_WEBHOOKS).document(svix_id)
        health_ref = None
        if webhook.app_id and webhook.endpoint_id:
            key = f"{webhook.app_id}.{webhook.endpoint_id}"
            health_ref = self._db.collection(ENDPOINT_HEALTH).document(key)
        event_ref = None
        if webhook.type == EXHAUSTED and webhook.event_id:
            event_ref = self._db.collection(NOTIFICATIONS).document(document_key(webhook.event_id))

        @firestore.transactional
        def once(transaction: firestore.Transaction) -> Applied:
            if marker.get(
                transaction=transaction, retry=read_retry(TIMEOUT), timeout=TIMEOUT
            ).exists:
                return Applied(new=False)
            current = None
            if health_ref is not None:
                snapshot = health_ref.get(
                    transaction=transaction, retry=read_retry(TIMEOUT), timeout=TIMEOUT
                )
                current = _health(snapshot.to_dict()) if snapshot.exists else None
            event = None
            if event_ref is not None:
                event = event_ref.get(
                    transaction=transaction, retry=read_retry(TIMEOUT), timeout=TIMEOUT
                )
            after = apply(current, webhook, arrived_at)
            if health_ref is not None:
                if after is None:
                    if current is not None:
                        transaction.delete(health_ref)
                elif after != current:
                    transaction.set(health_ref, self._document(after))
            fact = None
            if event is not None:
                fact = self._exhausted_fact(transaction, event, webhook, arrived_at)
            transaction.set(
                marker,
                {
                    "type": webhook.type,
                    "project": webhook.project,
                    "endpoint_id": webhook.endpoint_id,
                    "arrived_at": arrived_at,
                    "expires_at": arrived_at + self._ttl,
                },
            )
            return Applied(new=True, health=after, event_record=fact)

        with guarded():
            result: Applied = once(self._db.transaction())
        return result

    def started(
        self, app_id: str, endpoint_id: str, recovery: RecoveryStarted
    ) -> EndpointHealth | None:
        """Records ``recovery`` on the endpoint's record (see :func:`started`); None when the
        endpoint has no record any more."""
        ref = self._db.collection(ENDPOINT_HEALTH).document(f"{app_id}.{endpoint_id}")

        @firestore.transactional
        def once(transaction: firestore.Transaction) -> EndpointHealth | None:
            snapshot = ref.get(transaction=transaction, retry=read_retry(TIMEOUT), timeout=TIMEOUT)
            if not snapshot.exists:
                return None
            current = _health(snapshot.to_dict())
            after = started(current, recovery)
            if after != current:
                transaction.set(ref, self._document(after))
            return after

        with guarded():
            result: EndpointHealth | None = once(self._db.transaction())
        return result

    def unhealthy(self) -> list[EndpointHealth]:
        """Failing, disabled and recovering endpoints, the longest unhealthy first."""
        found: list[EndpointHealth] = []
        with guarded():
            for state in (State.DISABLED, State.FAILING, State.RECOVERING):
                query = self._db.collection(ENDPOINT_HEALTH).where(
                    filter=FieldFilter("state", "==", state.value)
                )
                found += [_health(s.to_dict()) for s in query.stream(timeout=QUERY_TIMEOUT)]
        return sorted(found, key=lambda h: (h.since, h.project, h.endpoint_id))

    def _exhausted_fact(
        self,
        transaction: firestore.Transaction,
        event: Any,
        webhook: Webhook,
        arrived_at: datetime,
    ) -> str:
        if not event.exists:
            return "no_record"
        if (event.to_dict() or {}).get("project") != webhook.project:
            return "other_project"
        fact = {
            "at": webhook.attempted_at or arrived_at,
            "status_code": webhook.status_code,
            "svix_message_id": webhook.message_id,
            "recorded_at": arrived_at,
        }
        transaction.update(event.reference, {f"svix_exhausted.`{webhook.endpoint_id}`": fact})
        return "recorded"

    def _document(self, health: EndpointHealth) -> dict[str, Any]:
        document: dict[str, Any] = {
            "project": health.project,
            "app_id": health.app_id,
            "endpoint_id": health.endpoint_id,
            "endpoint_uid": health.endpoint_uid,
            "state": health.state.value,
            "since": health.since,
            "changed_by": health.changed_by,
            "changed_at": health.changed_at,
            "last_status_code": health.last_status_code,
            "trigger": health.trigger,
            "failing_since": health.failing_since,
            "failure_arrived_at": health.failure_arrived_at,
            "recovery": None
            if health.recovery is None
            else {
                "at": health.recovery.at,
                "task_id": health.recovery.task_id,
                "since": health.recovery.since,
            },
            "exhausted": [
                {
                    "event_id": e.event_id,
                    "svix_message_id": e.message_id,
                    "status_code": e.status_code,
                    "at": e.at,
                }
                for e in health.exhausted
            ],
        }
        if health.state == State.HEALTHY:
            document["expires_at"] = health.changed_at + self._ttl
        elif health.recovery is not None:
            document["expires_at"] = health.recovery.settles_at + self._ttl
        return document


def _health(data: dict[str, Any] | None) -> EndpointHealth:
    data = data or {}
    return EndpointHealth(
        project=data["project"],
        app_id=data["app_id"],
        endpoint_id=data["endpoint_id"],
        endpoint_uid=data.get("endpoint_uid"),
        state=State(data["state"]),
        since=data["since"],
        changed_by=data["changed_by"],
        changed_at=data["changed_at"],
        last_status_code=data.get("last_status_code"),
        trigger=data.get("trigger"),
        failing_since=data.get("failing_since"),
        failure_arrived_at=data.get("failure_arrived_at"),
        recovery=_recovery(data.get("recovery")),
        exhausted=tuple(
            Exhausted(e.get("event_id"), e.get("svix_message_id"), e.get("status_code"), e["at"])
            for e in data.get("exhausted") or []
        ),
    )


def _recovery(data: dict[str, Any] | None) -> RecoveryStarted | None:
    if not data:
        return None
    return RecoveryStarted(at=data["at"], task_id=data["task_id"], since=data["since"])
