"""Svix adapter for the catalog's :class:`~notifier.domain.ports.EventTypeRegistry`: event types
through the svix SDK (2.9.1), every failure classified by the client's answer table.

The calls are the documented primitives (``server/svix-server/src/v1/endpoints/event_type.rs``):
list with ``include_archived`` and ``with_content``, page by page; create (which also unarchives
an archived type); PUT (an upsert that also clears ``archived``); DELETE without ``expunge``
(archives). They go through :meth:`SvixClient.call`, so a 429, a 401/403, a 5xx or a timeout
means here what it means for a message (:func:`notifier.adapters.svix.client.classify`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from svix.api import EventTypeIn, EventTypeUpsertIn
from svix.api.event_type import EventTypeListOptions
from svix.models import EventTypeOut, ListResponseEventTypeOut

from notifier.adapters.svix.client import SvixClient
from notifier.domain.catalog import RegisteredEventType

PAGE_SIZE = 100  # Svix takes up to 250 a page; a catalog has a dozen types


class SvixEventTypeRegistry:
    """Svix's event types as a catalog sync sees them (the ``EventTypeRegistry`` port)."""

    def __init__(self, client: SvixClient, *, page_size: int = PAGE_SIZE) -> None:
        self._client = client
        self._page_size = page_size

    def list_all(self) -> list[RegisteredEventType]:
        """Every event type, archived ones and schemas included, following the iterator."""
        found: list[RegisteredEventType] = []
        iterator: str | None = None
        while True:
            page = self._client.call(functools.partial(self._page, iterator))
            found.extend(registered(item) for item in page.data)
            if page.done or not page.iterator or not page.data:
                return found
            iterator = page.iterator

    def _page(self, iterator: str | None) -> ListResponseEventTypeOut:
        options = EventTypeListOptions(
            limit=self._page_size, iterator=iterator, include_archived=True, with_content=True
        )
        return self._client.sdk.event_type.list(options)

    def create(self, body: Mapping[str, Any]) -> None:
        """POST /api/v1/event-type (``EventTypeIn``; unarchives an archived one)."""
        event_type = EventTypeIn.model_validate(dict(body))
        self._client.call(lambda: self._client.sdk.event_type.create(event_type))

    def update(self, name: str, body: Mapping[str, Any]) -> None:
        """PUT /api/v1/event-type/{name} (``EventTypeUpsertIn``: every field it is given)."""
        upsert = EventTypeUpsertIn.model_validate({k: v for k, v in body.items() if k != "name"})
        self._client.call(lambda: self._client.sdk.event_type.upsert(name, upsert))

    def archive(self, name: str) -> None:
        """DELETE /api/v1/event-type/{name}: archived, not expunged (it can come back)."""
        self._client.call(lambda: self._client.sdk.event_type.delete(name))


def registered(out: EventTypeOut) -> RegisteredEventType:
    """The SDK's ``EventTypeOut`` as the planner compares it."""
    return RegisteredEventType(
        name=out.name,
        description=out.description,
        archived=bool(out.archived),
        deprecated=out.deprecated,
        schemas=out.schemas,
        group_name=out.group_name,
        feature_flags=tuple(out.feature_flags) if out.feature_flags else None,
    )
