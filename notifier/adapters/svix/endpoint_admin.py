"""Svix adapter for the endpoint-health commands: ``recover`` (the
:class:`~notifier.domain.ports.EndpointRecovery` port) and ``operational setup`` (the
:class:`~notifier.domain.ports.OperationalSvix` port), through the svix SDK (2.9.1), which has
both APIs (``endpoint.recover``, ``operational_webhook.endpoint``), on the shared client and its
answer table.
"""

from __future__ import annotations

from datetime import datetime

from svix.api import (
    EndpointPatch,
    OperationalWebhookEndpointIn,
    OperationalWebhookEndpointUpsertIn,
    RecoverIn,
)

from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.steps import Steps
from notifier.domain.endpoint_health import RecoveryTask
from notifier.domain.heartbeat import EndpointState


class SvixEndpointAdmin(Steps):
    """Recovery of a customer endpoint, and our own operational-webhook endpoint."""

    def __init__(self, client: SvixClient) -> None:
        super().__init__(client)
        self._svix = client.sdk

    def enable(self, app_uid: str, endpoint_id: str) -> None:
        """PATCH ``disabled: false``: Svix skips a disabled endpoint, recovered messages too."""
        self._call(
            f"enable endpoint {endpoint_id} of {app_uid}",
            lambda: self._svix.endpoint.patch(app_uid, endpoint_id, EndpointPatch(disabled=False)),
        )

    def recover(self, app_uid: str, endpoint_id: str, since: datetime) -> RecoveryTask:
        """POST ``.../recover`` (202 ``RecoverOut``): Svix resends, in the background, every
        message whose attempts to the endpoint since ``since`` all failed."""
        out = self._call(
            f"recover endpoint {endpoint_id} of {app_uid}",
            lambda: self._svix.endpoint.recover(app_uid, endpoint_id, RecoverIn(since=since)),
        )
        return RecoveryTask(id=out.id, status=str(getattr(out.status, "value", out.status)))

    def get_operational_endpoint(self, uid: str) -> EndpointState | None:
        """The operational endpoint's URL, event types and disabled flag; None on 404."""
        out = self._find(
            f"read operational webhook endpoint {uid}",
            lambda: self._svix.operational_webhook.endpoint.get(uid),
        )
        if out is None:
            return None
        types = None if out.event_types is None else frozenset(out.event_types)
        return EndpointState(url=out.url, filter_types=types, disabled=bool(out.disabled))

    def create_operational_endpoint(
        self, uid: str, url: str, event_types: list[str], description: str
    ) -> None:
        """POST the operational endpoint; a 409 (a concurrent setup made it) counts as done."""
        endpoint = OperationalWebhookEndpointIn(
            uid=uid, url=url, event_types=event_types, description=description
        )
        self._create(
            f"create operational webhook endpoint {uid}",
            lambda: self._svix.operational_webhook.endpoint.create(endpoint),
        )

    def update_operational_endpoint(
        self, uid: str, url: str, event_types: list[str], description: str
    ) -> None:
        """PUT replaces its settings (its secret stays): everything we care about, enabled."""
        update = OperationalWebhookEndpointUpsertIn(
            url=url, event_types=event_types, description=description, disabled=False
        )
        self._call(
            f"update operational webhook endpoint {uid}",
            lambda: self._svix.operational_webhook.endpoint.upsert(uid, update),
        )

    def operational_endpoint_secret(self, uid: str) -> str:
        """Its signing secret (never logged, never in an error)."""
        out = self._call(
            f"read operational webhook endpoint {uid}'s secret",
            lambda: self._svix.operational_webhook.endpoint.get_secret(uid),
        )
        return out.key
