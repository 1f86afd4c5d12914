"""Svix adapter for ``heartbeat setup`` (the :class:`~notifier.domain.ports.HeartbeatSvix`
port): the heartbeat's application, event type and canary endpoint through the svix SDK (2.9.1).

Every call goes through :meth:`SvixClient.call`, as the event-type adapter's do, so a status
means here what the client's answer table says (:func:`notifier.adapters.svix.client.classify`);
only the wording is setup's own: which step failed and what the operator does next.
"""

from __future__ import annotations

from svix.api import ApplicationIn, EndpointIn, EndpointUpsertIn, EventTypeIn

from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.steps import Steps
from notifier.domain.heartbeat import EndpointState


class SvixHeartbeatAdmin(Steps):
    """:class:`~notifier.domain.ports.HeartbeatSvix` on the shared client and its answer table.

    Creates carry no fixed idempotency key: the uid (app, endpoint) or name (event type) is
    unique, so a create repeated after a lost answer gets a 409, read as "exists". A fixed key
    would be worse: within Svix's idempotency window it replays the first creation even after
    an operator deleted the object, and setup would go on as if it existed.
    """

    def __init__(self, client: SvixClient) -> None:
        super().__init__(client)
        self._svix = client.sdk

    def ensure_application(self, uid: str) -> bool:
        """Reads the application; creates it when Svix answers 404. True if created."""
        if self._find(f"read application {uid}", lambda: self._svix.application.get(uid)):
            return False
        return self._create(
            f"create application {uid}",
            lambda: self._svix.application.create(ApplicationIn(uid=uid, name=uid)),
        )

    def ensure_event_type(self, name: str, description: str) -> bool:
        """Reads the event type; creates it when Svix answers 404. True if created."""
        if self._find(f"read event type {name}", lambda: self._svix.event_type.get(name)):
            return False
        return self._create(
            f"create event type {name}",
            lambda: self._svix.event_type.create(EventTypeIn(name=name, description=description)),
        )

    def get_endpoint(self, app_uid: str, endpoint_uid: str) -> EndpointState | None:
        """The endpoint's URL, filter and disabled flag; None when Svix answers 404."""
        out = self._find(
            f"read endpoint {endpoint_uid}",
            lambda: self._svix.endpoint.get(app_uid, endpoint_uid),
        )
        if out is None:
            return None
        types = None if out.event_types is None else frozenset(out.event_types)
        return EndpointState(url=out.url, filter_types=types, disabled=bool(out.disabled))

    def create_endpoint(
        self, app_uid: str, endpoint_uid: str, url: str, filter_types: list[str], description: str
    ) -> None:
        """POST the endpoint; a 409 (a concurrent setup made it) counts as done."""
        endpoint = EndpointIn(
            uid=endpoint_uid,
            url=url,
            event_types=filter_types,
            description=description,
        )
        self._create(
            f"create endpoint {endpoint_uid}",
            lambda: self._svix.endpoint.create(app_uid, endpoint),
        )

    def update_endpoint(
        self, app_uid: str, endpoint_uid: str, url: str, filter_types: list[str], description: str
    ) -> None:
        """PUT replaces the endpoint's settings (its secret stays): say everything we care about."""
        update = EndpointUpsertIn(
            url=url,
            event_types=filter_types,
            disabled=False,
            description=description,
        )
        self._call(
            f"update endpoint {endpoint_uid}",
            lambda: self._svix.endpoint.upsert(app_uid, endpoint_uid, update),
        )

    def endpoint_secret(self, app_uid: str, endpoint_uid: str) -> str:
        """The endpoint's signing secret (never logged, never in an error)."""
        out = self._call(
            f"read endpoint {endpoint_uid}'s secret",
            lambda: self._svix.endpoint.get_secret(app_uid, endpoint_uid),
        )
        return out.key
