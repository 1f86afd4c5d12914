"""Svix adapter: one message per event, every answer classified into what happens next.

The SDK retries 5xx and transport errors itself but never 429, and its exceptions carry no
headers. A response hook on the SDK's HTTP client keeps the last status and ``Retry-After`` per
thread, so a 429 can be waited out as Svix asks and an unreadable error body still has a status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from time import time
from typing import TypeVar

import httpx
import pydantic
from svix.api import (
    ApplicationIn,
    AppPortalAccessIn,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    Svix,
    SvixOptions,
)
from svix.api.svix import ClientBase
from svix.exceptions import HttpError, HTTPValidationError

from notifier.domain.errors import (
    BadCredentials,
    NotifierError,
    Permanent,
    RateLimited,
    SvixConflict,
    SvixUnavailable,
)
from notifier.domain.events import Event
from notifier.domain.outcomes import Sent as Sent

Answer = TypeVar("Answer")


# The details of failures without a readable Svix answer (other adapters word them for their users).
TIMED_OUT = "timeout"
NO_CONNECTION = "connection: "  # + the transport error's type
UNREADABLE = "unreadable answer"  # not Svix's JSON: a proxy's page, a cut body
MALFORMED = "malformed error body"  # JSON, but not the shape of Svix's errors


class _LastResponse(threading.local):
    """This thread's last Svix answer: its status and ``Retry-After`` (the SDK drops both)."""

    status: int | None = None
    retry_after: float | None = None

    def forget(self) -> None:
        """Before a call: what is then found was answered to it."""
        self.status = self.retry_after = None


def idempotency_key(event_id: str, replays: int = 0) -> str:
    """Fixed per event: a retry of a lost answer replays the first one instead of sending twice.

    Svix keeps a key's answer 12 h, and only a 2xx (core/idempotency.rs). An operator's replay of
    a refused event still gets a key of its own; the ``eventId`` guards against a second message
    (409, then looked up), and past the dedup window the service looks the event up first.
    """
    return f"notifier-{event_id}" if not replays else f"notifier-{event_id}-replay{replays}"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds, or an HTTP date, as RFC 9110 allows; ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


class _Svix(Svix):
    """The SDK on the sender's own HTTP client. ``Svix()`` builds a client of its own first, whose
    TLS context alone costs a cold start ~30 ms, only for it to be replaced and never used."""

    def __init__(self, token: str, options: SvixOptions, http: httpx.Client) -> None:
        ClientBase.__init__(self, token, options)
        self._httpx_client = http


class SvixSender:
    """Svix through its SDK (:class:`notifier.domain.ports.Sender`): messages, applications and
    App Portal links, every failure classified."""

    def __init__(
        self,
        token: str,
        *,
        server_url: str | None,
        timeout: float,
        retry_schedule: tuple[float, ...],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport``: httpx's own by default; tests pass an ``httpx.MockTransport``."""
        options = SvixOptions(
            server_url=server_url, timeout=timeout, retry_schedule=list(retry_schedule)
        )
        self._last = _LastResponse()
        # Same client the SDK would build, plus the hook; shared by every thread of the instance.
        http = httpx.Client(
            transport=transport,
            event_hooks={"response": [self._remember]},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
        )
        self._svix = _Svix(token, options, http)

    def _remember(self, response: httpx.Response) -> None:
        self._last.status = response.status_code
        self._last.retry_after = parse_retry_after(response.headers.get("retry-after"))

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
            out = self._call(lambda: self._svix.message.create(event.project, message, options))
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
        return Sent(out.id, self._last.status or 202)

    def find(self, event: Event) -> Sent | None:
        """The event's message if Svix holds one (looked up by ``eventId``), else None.

        Only a 404 means "not held" (no such message, or no such application); any other failure
        raises a Transient: not knowing is never "not held".
        """
        options = MessageGetOptions(with_content=False)
        try:
            out = self._call(lambda: self._svix.message.get(event.project, event.id, options))
        except Permanent as exc:
            if exc.status == 404:
                return None
            raise SvixUnavailable(
                f"message lookup refused ({exc.detail}): whether Svix holds it is unknown; "
                "it stays pending and is tried again",
                status=exc.status,
            ) from None
        return Sent(out.id, self._last.status or 200)

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
            return self._call(request)
        except Permanent as exc:
            if exc.status != 409:
                raise
            raise SvixConflict(
                "409 while the application was being created by another request; trying again",
                status=409,
            ) from None

    def _call(self, request: Callable[[], Answer]) -> Answer:
        """The SDK call, its failures classified into the error tree (the answer table)."""
        self._last.forget()
        try:
            return request()
        except (HttpError, HTTPValidationError) as exc:
            raise classify(exc.status_code, self._last.retry_after, _detail(exc)) from None
        except httpx.TimeoutException:
            raise SvixUnavailable(TIMED_OUT) from None
        except httpx.HTTPError as exc:
            raise SvixUnavailable(f"{NO_CONNECTION}{type(exc).__name__}") from None
        except (AttributeError, KeyError, TypeError):
            # The SDK could not parse an error body of an unexpected shape: go by the status.
            status = self._last.status
            if status is None or status < 400:
                raise
            raise classify(status, self._last.retry_after, MALFORMED) from None
        except (json.JSONDecodeError, pydantic.ValidationError):
            # Not Svix's own answer (a proxy's error page, a cut body): worth another try.
            status = self._last.status
            if status in (401, 403, 429):
                raise classify(status, self._last.retry_after, UNREADABLE) from None
            raise SvixUnavailable(UNREADABLE, status=status) from None

    @property
    def sdk(self) -> Svix:
        """The SDK on this sender's client, for adapters of other Svix resources (event types)."""
        return self._svix

    def call(self, request: Callable[[], Answer]) -> Answer:
        """Any SDK call through the answer table below, for those adapters."""
        return self._call(request)

    def close(self) -> None:
        """Closes the HTTP client's connections."""
        self._svix._httpx_client.close()


def _detail(exc: HttpError | HTTPValidationError) -> str:
    if isinstance(exc, HTTPValidationError):
        return "; ".join(f"{'.'.join(map(str, d.loc))}: {d.msg}" for d in exc.detail)[:300]
    return f"{exc.code}: {exc.detail}"[:300] if exc.code else str(exc.detail)[:300]


def classify(status: int, retry_after: float | None, detail: str) -> NotifierError:
    """The Svix answer table: what each status means for the event."""
    if status == 429:
        return RateLimited(detail, retry_after=retry_after)
    if status in (401, 403):
        return BadCredentials(detail, status=status)
    if status in (408, 423) or status >= 500:
        return SvixUnavailable(detail, status=status)
    if 400 <= status < 500:
        return Permanent(detail, status=status)
    return SvixUnavailable(detail, status=status)
