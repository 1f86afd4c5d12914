"""Svix adapter for the function: one message per event, the project's application, App Portal
links; every answer classified by the client's answer table."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from svix.api import (
    ApplicationIn,
    AppPortalAccessIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
)

from notifier.adapters.svix.client import SvixClient
from notifier.domain.errors import Permanent, SvixConflict, SvixUnavailable
from notifier.domain.events import Event
from notifier.domain.outcomes import Sent

Answer = TypeVar("Answer")


def idempotency_key(event_id: str, replays: int = 0) -> str:
    """Fixed per event: a retry of a lost answer replays the first one instead of sending twice.

    Svix keeps a key's answer 12 h, and only a 2xx (core/idempotency.rs). An operator's replay of
    a refused event still gets a key of its own; the ``eventId`` guards against a second message
    (409, then looked up), and past the dedup window the service looks the event up first.
    """
    return f"notifier-{event_id}" if not replays else f"notifier-{event_id}-replay{replays}"


class SvixSender:
    """Svix as the function sends to it (:class:`notifier.domain.ports.Sender`): messages,
    applications and App Portal links, on the shared client."""

    def __init__(self, client: SvixClient) -> None:
        self._client = client
        self._svix = client.sdk

    def ensure_application(self, project: str) -> str:
        """Svix application for a project: ``uid`` and ``name`` are the project id."""
        app = self._creating_application(
            lambda: self._svix.application.get_or_create(ApplicationIn(uid=project, name=project))
        )
        return app.id

    def send(self, event: Event, replays: int = 0) -> Sent:
        """Addressed by the project's uid, with the application inline: Svix creates it if it is
        missing (deleted, or never made), so no cached id can ever point nowhere."""
        app = ApplicationIn(uid=event.project, name=event.project)
        message = MessageIn(
            event_type=event.type, event_id=event.id, payload=event.payload, application=app
        )
        options = MessageCreateOptions(idempotency_key=idempotency_key(event.id, replays))
        try:
            out = self._client.call(
                lambda: self._svix.message.create(event.project, message, options)
            )
        except Permanent as exc:
            if exc.status != 409:
                raise
            # The same 409 body for "this eventId exists" and "an application with this uid was
            # being created at that moment": only the lookup tells them apart.
            held = self.find(event)
            if held is None:
                raise SvixConflict(
                    "409, yet Svix holds no message with this eventId: the application was "
                    "being created by another request; trying again",
                    status=409,
                ) from None
            return Sent(held.message_id, 409)
        return Sent(out.id, self._client.last_status or 202)

    def find(self, event: Event) -> Sent | None:
        """The event's message if Svix holds one (looked up by ``eventId``), else None.

        Only a 404 means "not held" (no such message, or no such application); any other failure
        raises a Transient: not knowing is never "not held".
        """
        options = MessageGetOptions(with_content=False)
        try:
            out = self._client.call(
                lambda: self._svix.message.get(event.project, event.id, options)
            )
        except Permanent as exc:
            if exc.status == 404:
                return None
            raise SvixUnavailable(
                f"message lookup refused ({exc.detail}): whether Svix holds it is unknown; "
                "it stays pending and is tried again",
                status=exc.status,
            ) from None
        return Sent(out.id, self._client.last_status or 200)

    def portal_link(self, project: str, expiry_seconds: int) -> str:
        """A magic link to the project's App Portal, valid ``expiry_seconds``; it holds a secret.

        Addressed by uid with the application inline, as :meth:`send` is, so it always works.
        """
        access = AppPortalAccessIn(
            application=ApplicationIn(uid=project, name=project), expiry=expiry_seconds
        )
        out = self._creating_application(
            lambda: self._svix.authentication.app_portal_access(project, access)
        )
        return out.url

    def _creating_application(self, request: Callable[[], Answer]) -> Answer:
        """A call that may create the application: its 409 is the race of two creations
        (check-then-insert at Svix), which the next call wins by finding the application."""
        try:
            return self._client.call(request)
        except Permanent as exc:
            if exc.status != 409:
                raise
            raise SvixConflict(
                "409 while the application was being created by another request; trying again",
                status=409,
            ) from None

    def close(self) -> None:
        """Closes the client's connections."""
        self._client.close()
