"""``catalog sync``: Svix made to hold the catalog, by per-type calls that change only what differs.

Per-type calls rather than Svix's bulk import: see docs/decisions/per-type-catalog-sync.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from notifier.domain.catalog import Change, EventType, RegisteredEventType, event_types
from notifier.domain.ports import EventTypeRegistry
from notifier.usecases.catalog_openapi import payload_schema

# One schema version, updated in place: the one Svix takes the App Portal's example from
# (``schemas["1"]["examples"][0]``), so customers see one current schema per type.
SVIX_SCHEMA_VERSION = "1"


def svix_event_type(event_type: EventType) -> dict[str, Any]:
    """The body Svix's create (``EventTypeIn``) and update (``EventTypeUpdate``) take."""
    return {
        "name": event_type.name,
        "description": event_type.description,
        "archived": False,
        "deprecated": False,
        "groupName": event_type.group,
        "schemas": {SVIX_SCHEMA_VERSION: payload_schema(event_type)},
    }


def plan_sync(
    wanted: Iterable[EventType], current: Iterable[RegisteredEventType], *, prune: bool
) -> list[Change]:
    """The calls that make Svix hold the catalog: create what is missing, update what differs
    (description, schemas, group), unarchive what comes back; archive the rest only with prune.
    ``deprecated`` and ``featureFlags`` set by hand in Svix are carried over, not reset."""
    registered = {item.name: item for item in current}
    changes: list[Change] = []
    catalogued: set[str] = set()
    for event_type in sorted(wanted, key=lambda t: t.name):
        catalogued.add(event_type.name)
        body = svix_event_type(event_type)
        found = registered.get(event_type.name)
        if found is None:
            changes.append(Change("create", event_type.name, (), body))
            continue
        body = _carry_over(body, found)
        if found.archived:
            changes.append(Change("unarchive", event_type.name, _differs(body, found), body))
            continue
        differs = _differs(body, found)
        if differs:
            update = {key: value for key, value in body.items() if key != "name"}
            changes.append(Change("update", event_type.name, differs, update))
    if prune:
        for name in sorted(set(registered) - catalogued):
            if not registered[name].archived:
                changes.append(Change("archive", name))
    return changes


def sync(
    registry: EventTypeRegistry,
    *,
    dry_run: bool,
    prune: bool,
    types: Iterable[EventType] | None = None,
) -> list[Change]:
    """Plans against what Svix holds and, unless ``dry_run``, applies the plan in order.
    Idempotent: a second sync plans nothing. Returns the plan (what changed or would)."""
    changes = plan_sync(event_types() if types is None else types, registry.list_all(), prune=prune)
    if dry_run:
        return changes
    for change in changes:
        if change.action == "archive":
            registry.archive(change.event_type)
        elif change.action == "update":
            registry.update(change.event_type, change.body or {})
        else:  # create, unarchive: Svix's create unarchives an archived type of that name
            registry.create(change.body or {})
    return changes


def _differs(body: Mapping[str, Any], found: RegisteredEventType) -> tuple[str, ...]:
    differs: list[str] = []
    if body["description"] != found.description:
        differs.append("description")
    if body["schemas"] != found.schemas:  # JSON equality: 10 == 10.0, key order aside
        differs.append("schemas")
    if body["groupName"] != found.group_name:
        differs.append("groupName")
    return tuple(differs)


def _carry_over(body: dict[str, Any], found: RegisteredEventType) -> dict[str, Any]:
    """Svix's create and PUT set every field they are given a default for; keep hand-set ones."""
    carried = {**body, "deprecated": found.deprecated}
    if found.feature_flags:
        carried["featureFlags"] = list(found.feature_flags)
    return carried
