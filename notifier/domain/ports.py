"""What the service, the entries and the operations need from the outside world, as protocols.

Adapters implement them (:class:`notifier.store.FirestoreStore`,
:class:`notifier.svix_sender.SvixSender`); tests implement them in memory.
"""

from __future__ import annotations

from typing import Protocol

from notifier.domain.claims import Claim
from notifier.domain.events import Delivery, Event
from notifier.domain.outcomes import Sent
from notifier.errors import NotifierError, Rejected


class NotificationStore(Protocol):
    """The claim and the record of each event: what makes delivery exactly once."""

    def claim(self, event: Event, delivery: Delivery) -> Claim:
        """Claims the event for this delivery, or says who has it and how it stands."""
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
