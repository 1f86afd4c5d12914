"""What the use cases and the handlers need from the outside world, as protocols: every port.

Adapters (:mod:`notifier.adapters`) implement them; tests implement them in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from notifier.domain.catalog import Drift, RegisteredEventType
from notifier.domain.claims import Claim, Look, RecordStatus
from notifier.domain.endpoint_health import (
    Applied,
    EndpointHealth,
    RecoveryStarted,
    RecoveryTask,
    Webhook,
)
from notifier.domain.errors import NotifierError, Rejected
from notifier.domain.events import Delivery, Event
from notifier.domain.heartbeat import Arrival, EndpointState
from notifier.domain.messages import PulledMessage
from notifier.domain.outcomes import Sent
from notifier.domain.records import Record, StoredNotification


class NotificationStore(Protocol):
    """The claim and the record of each event: what makes delivery exactly once."""

    def claim(self, event: Event, delivery: Delivery, looked: Look | None = None) -> Claim:
        """Claims the event for this delivery, or says who has it and how it stands; decided on
        ``looked`` (this event's record as :meth:`look` read it) when given, without reading."""
        ...

    def mark_sent(self, claim: Claim, svix_message_id: str | None, svix_status: int) -> None:
        """Records that Svix has the event: final."""
        ...

    def mark_failed(self, claim: Claim, error: NotifierError) -> bool:
        """Records a permanent refusal; False when the claim was lost meanwhile."""
        ...

    def release(self, claim: Claim, error: NotifierError, hold: float = 0.0) -> bool:
        """Leaves the event pending with why; frees the lease after ``hold`` seconds."""
        ...

    def renew(self, claim: Claim) -> Claim | None:
        """Extends the holder's lease by a lease from now; the claim at its new version, or None
        when the claim was taken or closed meanwhile. Raises ``StoreUnavailable`` when unsure."""

    def look(self, event_id: str) -> Look:
        """Reads the event's record (one read), for a redelivery to decide on before decoding."""
        ...


class RejectionStore(Protocol):
    """Where input that can never be processed is kept for an operator."""

    def reject(self, rejection: Rejected, delivery: Delivery, raw: bytes | None) -> str:
        """Keeps the rejected message; returns its ``rejected/`` id."""
        ...


class ApplicationRecords(Protocol):
    """The ``applications/`` records: which projects have a Svix application."""

    def application_id(self, project: str) -> str | None:
        """The project's Svix application id, if recorded."""
        ...

    def save_application(self, project: str, svix_app_id: str) -> None:
        """Records the project's Svix application (first writer wins)."""
        ...


class MessageSender(Protocol):
    """Svix, as the service sends to it: one message per event."""

    def send(self, event: Event, replays: int = 0) -> Sent:
        """Creates the event's message (idempotently); raises a NotifierError otherwise."""
        ...

    def find(self, event: Event) -> Sent | None:
        """The event's message if Svix holds one (by eventId); None if not; raises if unsure."""
        ...


class ApplicationCreator(Protocol):
    """Svix, as the application directory creates applications in it."""

    def ensure_application(self, project: str) -> str:
        """Gets or creates the project's Svix application; returns its id."""
        ...


class PortalLinks(Protocol):
    """Svix, as the App Portal entry asks it for links."""

    def portal_link(self, project: str, expiry_seconds: int) -> str:
        """A magic link to the project's App Portal; it holds a secret."""
        ...


class Store(NotificationStore, RejectionStore, ApplicationRecords, Protocol):
    """Everything the function's entries need from storage."""


class Sender(MessageSender, ApplicationCreator, PortalLinks, Protocol):
    """Everything the function's entries need from Svix."""

    def close(self) -> None:
        """Closes its connections."""
        ...


class NotificationQueries(Protocol):
    """What the operator tools ask of the records (equality filters only), and the one change
    they make: reopening a failed notification for a replay."""

    def count(self, status: RecordStatus, *, project: str | None = None) -> int:
        """Notifications in ``status`` (of ``project``, if given), counted exactly."""
        ...

    def count_rejected(self) -> int:
        """Rejected messages kept."""
        ...

    def projects(self) -> set[str]:
        """Projects with an application record."""
        ...

    def listing(
        self, status: RecordStatus, *, project: str | None = None, event_type: str | None = None
    ) -> Iterable[Record]:
        """The notifications in ``status``, narrowed by project and type; never payloads."""
        ...

    def notification(self, event_id: str) -> StoredNotification | None:
        """The record as it is now, with its event; None if there is none."""
        ...

    def reopen(self, event_id: str) -> bool:
        """``failed`` -> ``pending`` for a replay; False if it was no longer failed."""
        ...


class OperatorStore(Store, NotificationQueries, Protocol):
    """The store as the operator's commands hold it: the function's, and the queries."""


class DeadLetters(Protocol):
    """A Pub/Sub subscription the operator pulls messages back from."""

    @property
    def path(self) -> str:
        """The subscription's full resource path."""
        ...

    def pull(self, max_messages: int, wait: float) -> list[PulledMessage]:
        """Up to ``max_messages`` messages; an empty list once ``wait`` passes with none."""
        ...

    def hold(self, ack_ids: list[str], seconds: int) -> None:
        """Sets the messages' ack deadline (0 gives them back to the subscription now)."""
        ...

    def acknowledge(self, ack_ids: list[str]) -> set[str]:
        """Acknowledges the messages; returns the ack ids that were accepted."""
        ...

    def close(self) -> None:
        """Closes its connections."""
        ...


class Republisher(Protocol):
    """A Pub/Sub topic the operator publishes messages back to."""

    def publish(self, messages: list[tuple[bytes, dict[str, str]]]) -> list[str | Exception]:
        """Publishes each (data, attributes); the new message id, or why it failed, for each."""
        ...

    def close(self) -> None:
        """Sends what is batched, then closes its connections."""
        ...


class HeartbeatLog(Protocol):
    """Where verified heartbeats are kept (Firestore ``heartbeats/`` in production)."""

    def record(self, event_id: str, published_at: datetime, arrived_at: datetime) -> bool:
        """Records one arrival; False when this event was already recorded (nothing changes).

        Raises :class:`~notifier.domain.errors.StoreUnavailable` when it cannot tell.
        """
        ...

    def latest(self) -> Arrival | None:
        """The heartbeat that arrived last; None when none is kept."""
        ...


class HeartbeatSvix(Protocol):
    """The few Svix operations ``heartbeat setup`` needs; each raises
    :class:`~notifier.domain.errors.SetupError` on failure."""

    def ensure_application(self, uid: str) -> bool:
        """Makes sure the application exists; True if it had to be created."""
        ...

    def ensure_event_type(self, name: str, description: str) -> bool:
        """Makes sure the event type exists; True if it had to be created."""
        ...

    def get_endpoint(self, app_uid: str, endpoint_uid: str) -> EndpointState | None:
        """The endpoint's state, or None when it does not exist."""
        ...

    def create_endpoint(
        self, app_uid: str, endpoint_uid: str, url: str, filter_types: list[str], description: str
    ) -> None:
        """Creates the endpoint, subscribed to ``filter_types`` only."""
        ...

    def update_endpoint(
        self, app_uid: str, endpoint_uid: str, url: str, filter_types: list[str], description: str
    ) -> None:
        """Sets URL, filter and description and enables it (Svix disables an endpoint failing
        for 5 days)."""
        ...

    def endpoint_secret(self, app_uid: str, endpoint_uid: str) -> str:
        """The endpoint's ``whsec_`` signing secret."""
        ...


class EventTypeRegistry(Protocol):
    """Svix's event types, as a sync needs them (an adapter over the svix SDK implements it)."""

    def list_all(self) -> Sequence[RegisteredEventType]:
        """Every event type, archived ones included, with schemas."""
        ...

    def create(self, body: Mapping[str, Any]) -> None:
        """POST /api/v1/event-type: creates, or unarchives an archived type of that name."""
        ...

    def update(self, name: str, body: Mapping[str, Any]) -> None:
        """PUT /api/v1/event-type/{name}."""
        ...

    def archive(self, name: str) -> None:
        """DELETE /api/v1/event-type/{name} (without ``expunge``: archives)."""
        ...


class Checker(Protocol):
    """The catalog as the drift watch needs it (:class:`notifier.domain.catalog.Catalog`)."""

    def drift(self, event_type: str, data: Any) -> Drift | None:
        """None when the type is catalogued and ``data`` matches; else why, with schema paths."""
        ...


class EndpointHealthLog(Protocol):
    """Customer endpoints' health as Svix's operational webhooks tell it (Firestore
    ``endpoint_health/``, and the webhooks seen in ``operational_webhooks/``)."""

    def record(self, svix_id: str, webhook: Webhook, arrived_at: datetime) -> Applied:
        """Applies one webhook once: a repeat of ``svix_id`` changes nothing and says so.

        Raises :class:`~notifier.domain.errors.StoreUnavailable` when it cannot tell.
        """
        ...

    def started(
        self, app_id: str, endpoint_id: str, recovery: RecoveryStarted
    ) -> EndpointHealth | None:
        """Records that ``recover`` started ``recovery`` (unless a webhook since says more);
        the record after, None when there is none.

        Raises :class:`~notifier.domain.errors.StoreUnavailable` when it cannot tell.
        """
        ...

    def unhealthy(self) -> list[EndpointHealth]:
        """The endpoints recorded failing, disabled or recovering, every project's."""
        ...


class EndpointRecovery(Protocol):
    """Svix, as ``recover`` asks it to resend what an endpoint missed; each call raises
    :class:`~notifier.domain.errors.SetupError` on failure."""

    def enable(self, app_uid: str, endpoint_id: str) -> None:
        """Enables a disabled endpoint (PATCH ``disabled: false``): Svix delivers to it again."""
        ...

    def recover(self, app_uid: str, endpoint_id: str, since: datetime) -> RecoveryTask:
        """``v1.endpoint.recover``: resends the endpoint's failed messages since ``since``."""
        ...


class OperationalSvix(Protocol):
    """Svix's operational-webhook endpoint API, as ``operational setup`` needs it; each call
    raises :class:`~notifier.domain.errors.SetupError` on failure."""

    def get_operational_endpoint(self, uid: str) -> EndpointState | None:
        """The endpoint's URL, event types and disabled flag; None when it does not exist."""
        ...

    def create_operational_endpoint(
        self, uid: str, url: str, event_types: list[str], description: str
    ) -> None:
        """Creates it, subscribed to ``event_types``."""
        ...

    def update_operational_endpoint(
        self, uid: str, url: str, event_types: list[str], description: str
    ) -> None:
        """Sets URL, event types and description, and enables it."""
        ...

    def operational_endpoint_secret(self, uid: str) -> str:
        """Its ``whsec_`` signing secret."""
        ...
