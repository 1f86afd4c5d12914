"""The event catalog: one JSON Schema per event type for its ``data``, kept in the repository.

The catalog is the single source of truth for three readers: Svix (event types the App Portal
shows and endpoints subscribe by), the public docs (an OpenAPI 3.1 document with ``webhooks``)
and the function itself (drift: an event off the catalog is sent all the same, then reported).
Pure: no cloud SDK, no svix; the Svix calls go through the :class:`EventTypeRegistry` port.

Svix's shape of an event type (``EventTypeIn`` in ``server/svix-server/src/v1/endpoints/
event_type.rs`` and ``codegen/lib-openapi.json``): ``name``, ``description``, ``archived``,
``deprecated``, ``schemas`` (a map of version -> JSON Schema; the server compiles each value as
JSON Schema draft 7, and reads the App Portal's example from ``schemas["1"]["examples"][0]``),
``groupName`` and ``featureFlags`` (the hosted API and SDK 2.9.1; the open-source server still
has a single ``featureFlag`` and no groups, and ignores fields it does not know). A Svix message's
payload is the whole event (notifier sends the envelope, not just ``data``), so the schema given
to Svix is the envelope with the type's ``data`` schema and ``type`` const, as in the OpenAPI
document, and its example is a whole event. One version, ``"1"``, updated in place: it is the
version Svix takes the example from, and customers see one current schema per type.

Per-type calls, not Svix's bulk import (``POST /api/v1/event-type/import/openapi``). The import
exists only in the hosted Svix: the open-source server's source has no such route, so its rules
can only be taken from its documentation (create or update each webhook of the document,
unarchive an archived type it updates, archive every other type with ``replaceAll``, report with
``dryRun``) and the stand-in could not copy it from source. It derives each type's schema and
example from the document by its own rules, so a sync could not tell whether Svix already holds
what the catalog says (no honest idempotency, no precise dry run), and ``replaceAll`` prunes all
or nothing. Per-type calls are the documented primitives with their source at hand: list
(``include_archived``, ``with_content``), create (which also unarchives an archived type), update
(PUT, which also clears ``archived``) and delete (archives unless ``expunge``). The planner
compares each field and sends only what differs; a dozen types cost a dozen calls at most, once
per deploy.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import SchemaError

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"
EVENTS_DIR = SCHEMAS_DIR / "events"
ENVELOPE_PATH = SCHEMAS_DIR / "event.schema.json"
SVIX_SCHEMA_VERSION = "1"
# Formats the catalog uses that jsonschema can check with what requirements.txt installs.
CHECKED_FORMATS = ("date", "date-time", "email")
_MAX_PATHS = 20
_ENVELOPE_EXAMPLE = {
    "object": "event",
    "id": "evt_Example0000000000000000000001",
    "datacontenttype": "application/json",
    "project": "acme",
    "source": "https://api.example.com",
    "specversion": "1.0",
    "time": "2023-03-24T15:50:41Z",
    "version": "2023-01-30",
}

DriftCause = Literal["unknown_type", "schema_drift"]
ChangeAction = Literal["create", "update", "unarchive", "archive"]


class CatalogError(ValueError):
    """The catalog in the repository is broken; fix the named schema file (nothing was synced)."""


@dataclass(frozen=True)
class EventType:
    """One catalogued event type: its name, group (the resource) and the schema of its ``data``."""

    name: str
    group: str
    description: str
    data_schema: Mapping[str, Any] = field(repr=False)

    @property
    def examples(self) -> list[Any]:
        """The ``data`` examples the type's schema carries (OpenAPI document, tests)."""
        return list(self.data_schema.get("examples", []))


@dataclass(frozen=True)
class Drift:
    """Why an event is off the catalog; ``schema_paths`` point into the schema, never at values."""

    event_type: str
    cause: DriftCause
    schema_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisteredEventType:
    """An event type as Svix holds it (``EventTypeOut`` listed with ``with_content``)."""

    name: str
    description: str
    archived: bool = False
    deprecated: bool = False
    schemas: Mapping[str, Any] | None = None
    group_name: str | None = None
    feature_flags: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Change:
    """One call a sync makes: ``body`` is the Svix ``EventTypeIn``/``EventTypeUpdate`` JSON
    (None for archive); ``fields`` names what differs from Svix (for an update)."""

    action: ChangeAction
    event_type: str
    fields: tuple[str, ...] = ()
    body: Mapping[str, Any] | None = field(default=None, repr=False)


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


@dataclass(frozen=True)
class Catalog:
    """The event types, by name, and the compiled validators of their ``data``."""

    types: Mapping[str, EventType]
    _validators: Mapping[str, Draft202012Validator] = field(repr=False, compare=False)
    _fast_checks: Mapping[str, Callable[[Any], bool]] = field(repr=False, compare=False)

    def get(self, name: str) -> EventType | None:
        """The event type called ``name``, or None when the catalog does not have it."""
        return self.types.get(name)

    def names(self) -> list[str]:
        """Every catalogued type's name, sorted."""
        return sorted(self.types)

    def drift(self, event_type: str, data: Any) -> Drift | None:
        """None when ``event_type`` is catalogued and ``data`` matches its schema."""
        fast_check = self._fast_checks.get(event_type)
        if fast_check is None:
            return Drift(event_type, "unknown_type")
        if fast_check(data):  # the hot path: no error objects built for valid data
            return None
        # Rare: the reference validator names the paths, and has the last word on validity.
        errors = self._validators[event_type].iter_errors(data)
        paths = sorted({_schema_path(error) for error in errors})
        if not paths:
            return None
        return Drift(event_type, "schema_drift", tuple(paths[:_MAX_PATHS]))


def load(events_dir: Path = EVENTS_DIR, *, accelerate: bool = True, verify: bool = True) -> Catalog:
    """Reads ``<events_dir>/<group>/<type>.json``; each must be a valid schema with a description
    and examples that match it (a broken catalog fails here, not in a customer's App Portal).
    With ``accelerate`` and ``jsonschema-rs`` installed, valid data is recognised by its compiled
    validator (microseconds, where ``jsonschema`` takes up to ~2 ms on a subscription).
    ``verify=False`` (the function, see :func:`runtime`) skips checking each schema against the
    metaschema and its examples against it: the tests and every sync have done so, and the
    metaschema check alone costs tens of milliseconds."""
    types: dict[str, EventType] = {}
    validators: dict[str, Draft202012Validator] = {}
    fast_checks: dict[str, Callable[[Any], bool]] = {}
    for path in sorted(events_dir.glob("*/*.json")):
        event_type, checker = _load_one(path, verify=verify)
        if event_type.name in types:
            raise CatalogError(f"{path}: event type {event_type.name} is catalogued twice")
        types[event_type.name] = event_type
        validators[event_type.name] = checker
        fast_checks[event_type.name] = _fast_check(event_type, checker, accelerate=accelerate)
    return Catalog(types, validators, fast_checks)


def accelerated() -> bool:
    """Whether drift checks run on ``jsonschema-rs`` (compiled) rather than ``jsonschema``."""
    return importlib.util.find_spec("jsonschema_rs") is not None


def _fast_check(
    event_type: EventType, checker: Draft202012Validator, *, accelerate: bool
) -> Callable[[Any], bool]:
    if not (accelerate and accelerated()):
        return checker.is_valid
    try:
        import jsonschema_rs  # in requirements.txt; the check works without it, only slower
    except ImportError:  # installed for another platform: the same answers, from jsonschema
        return checker.is_valid
    compiled = jsonschema_rs.validator_for(dict(event_type.data_schema), validate_formats=True)
    return compiled.is_valid


@cache
def catalog() -> Catalog:
    """The repository's catalog, loaded and compiled once per process."""
    return load()


@cache
def runtime() -> Catalog:
    """The repository's catalog as the function checks events against it: loaded once per
    process, on the first check, unverified (see :func:`load`), compiled by ``jsonschema-rs``."""
    return load(verify=False)


def drift(event_type: str, data: Any) -> Drift | None:
    """None when the type is catalogued and ``data`` validates; else why, with schema paths."""
    return catalog().drift(event_type, data)


def event_types() -> list[EventType]:
    """The repository's event types, sorted by name."""
    current = catalog()
    return [current.types[name] for name in current.names()]


def payload_schema(event_type: EventType) -> dict[str, Any]:
    """The whole event of this type: the envelope with ``type`` fixed and this ``data``."""
    envelope = _strip_ids(copy.deepcopy(_envelope()))
    properties = envelope["properties"]
    properties["type"] = {**properties["type"], "const": event_type.name}
    properties["type"].pop("examples", None)
    properties["data"] = _strip_ids(copy.deepcopy(dict(event_type.data_schema)))
    envelope["title"] = event_type.name
    envelope["description"] = event_type.description
    envelope["examples"] = payload_examples(event_type)
    return envelope


def payload_examples(event_type: EventType) -> list[dict[str, Any]]:
    """Whole events around the catalogued ``data`` examples (the other fields are invented)."""
    return [
        {**_ENVELOPE_EXAMPLE, "type": event_type.name, "data": example}
        for example in event_type.examples
    ]


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


def openapi_document(
    types: Iterable[EventType] | None = None, *, version: str = "1.0.0"
) -> dict[str, Any]:
    """OpenAPI 3.1 with one ``webhooks`` entry per type (Svix's importer reads the same shape,
    with its ``x-svix-group-name`` extension)."""
    webhooks: dict[str, Any] = {}
    for event_type in sorted(event_types() if types is None else types, key=lambda t: t.name):
        schema = payload_schema(event_type)
        examples = schema.pop("examples")
        webhooks[event_type.name] = {
            "post": {
                "operationId": event_type.name,
                "summary": event_type.name,
                "description": event_type.description,
                "tags": [event_type.group],
                "x-svix-group-name": event_type.group,
                "requestBody": {
                    "description": event_type.description,
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": schema,
                            "examples": {
                                f"example{index}": {"value": example}
                                for index, example in enumerate(examples, start=1)
                            },
                        }
                    },
                },
                "responses": {
                    "200": {"description": "Any 2xx status acknowledges the webhook."},
                },
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Platform webhooks",
            "version": version,
            "description": (
                "The events the platform sends to your webhook endpoints, one per event type. "
                "Every event has the same envelope; `data` depends on `type`."
            ),
        },
        "webhooks": webhooks,
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


def _load_one(path: Path, *, verify: bool = True) -> tuple[EventType, Draft202012Validator]:
    try:
        schema = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CatalogError(f"{path}: not readable JSON ({error})") from error
    if not isinstance(schema, dict):
        raise CatalogError(f"{path}: a schema must be a JSON object")
    name, group = path.stem, path.parent.name
    if verify:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as error:
            raise CatalogError(f"{path}: not a valid JSON Schema: {error}") from error
    description = schema.get("description")
    if not isinstance(description, str) or not description.strip():
        raise CatalogError(f"{path}: the schema needs a description (Svix shows it)")
    checker = Draft202012Validator(schema, format_checker=FormatChecker(formats=CHECKED_FORMATS))
    examples = schema.get("examples")
    if not isinstance(examples, list) or not examples:
        raise CatalogError(f"{path}: the schema needs at least one example")
    for index, example in enumerate(examples if verify else ()):
        failed = sorted({_schema_path(error) for error in checker.iter_errors(example)})
        if failed:
            raise CatalogError(f"{path}: example {index} does not match the schema at {failed}")
    return EventType(name, group, description, schema), checker


def _schema_path(error: ValidationError) -> str:
    """JSON Pointer into the schema of the keyword that failed; a missing property points at its
    entry in ``required``. Built from the schema only, so it never carries a value."""
    parts = [str(part) for part in error.absolute_schema_path]
    required = error.validator_value
    if (
        error.validator == "required"
        and isinstance(error.instance, dict)
        and isinstance(required, list)
    ):
        # one error per missing property; its message starts with the name, taken from the schema
        named = [
            index
            for index, name in enumerate(required)
            if name not in error.instance and error.message.startswith(repr(name))
        ]
        if named:
            parts.append(str(named[0]))
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@cache
def _envelope() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(ENVELOPE_PATH.read_text())
    return loaded


def _strip_ids(schema: dict[str, Any]) -> dict[str, Any]:
    """Embedded schemas carry no ``$schema``/``$id``: Svix compiles them as draft 7, and an
    ``$id`` inside an OpenAPI document would change how references resolve."""
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return schema
