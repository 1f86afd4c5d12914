"""Svix adapter for ``heartbeat setup`` (the :class:`~notifier.domain.ports.HeartbeatSvix`
port): the heartbeat's application, event type and canary endpoint through the svix SDK (2.9.1).

Every call goes through :meth:`SvixClient.call`, as the event-type adapter's do, so a status
means here what the client's answer table says (:func:`notifier.adapters.svix.client.classify`);
only the wording is setup's own: which step failed and what the operator does next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, overload

from svix.api import ApplicationIn, EndpointIn, EndpointUpsertIn, EventTypeIn

from notifier.adapters.svix.client import (
    MALFORMED,
    NO_CONNECTION,
    TIMED_OUT,
    UNREADABLE,
    SvixClient,
)
from notifier.domain.errors import BadCredentials, NotifierError, Permanent, SetupError, Transient
from notifier.domain.heartbeat import EndpointState

T = TypeVar("T")


class SvixHeartbeatAdmin:
    """:class:`~notifier.domain.ports.HeartbeatSvix` on the shared client and its answer table.

    Creates carry no fixed idempotency key: the uid (app, endpoint) or name (event type) is
    unique, so a create repeated after a lost answer gets a 409, read as "exists". A fixed key
    would be worse: within Svix's idempotency window it replays the first creation even after
    an operator deleted the object, and setup would go on as if it existed.
    """

    def __init__(self, client: SvixClient) -> None:
        self._client = client
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

    def _find(self, step: str, request: Callable[[], T]) -> T | None:
        """The object, or None when Svix answers 404."""
        return self._call(step, request, none_on=404)

    def _create(self, step: str, request: Callable[[], object]) -> bool:
        """True once created; False when Svix says it exists already (409: a concurrent setup)."""
        return self._call(step, request, none_on=409) is not None

    @overload
    def _call(self, step: str, request: Callable[[], T]) -> T: ...

    @overload
    def _call(self, step: str, request: Callable[[], T], *, none_on: int) -> T | None: ...

    def _call(self, step: str, request: Callable[[], T], *, none_on: int | None = None) -> T | None:
        """One SDK call; None when Svix refuses it with ``none_on``; every other failure becomes
        a :class:`SetupError` naming the step."""
        try:
            return self._client.call(request)
        except Permanent as exc:
            if none_on is not None and exc.status == none_on:
                return None
            raise setup_error(step, exc) from None
        except NotifierError as exc:
            raise setup_error(step, exc) from None


def setup_error(step: str, exc: NotifierError) -> SetupError:
    """The sender's classified failure as the operator reads it: the step, then what to do."""
    if exc.detail in (UNREADABLE, MALFORMED):
        return SetupError(f"{step}: Svix's answer was unreadable; run it again")
    if exc.status is None:  # no answer at all: the sender's timeout or connection failure
        if exc.detail == TIMED_OUT:
            return SetupError(f"{step}: Svix did not answer in time; run it again")
        reason = exc.detail.removeprefix(NO_CONNECTION)
        return SetupError(f"{step}: cannot reach Svix ({reason})")
    return SetupError(f"{step}: Svix answered {exc.status}{_hint(exc)}")


def _hint(exc: NotifierError) -> str:
    if isinstance(exc, BadCredentials):
        return " (check the Svix token)"
    if exc.status == 422:
        return " (Svix refused the settings: is the URL acceptable to it?)"
    if isinstance(exc, Transient):
        return "; run it again in a minute"
    return ""
