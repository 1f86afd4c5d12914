"""The event catalog: one JSON Schema per event type for its ``data``, kept in the repository.

The catalog is the single source of truth for three readers: Svix (event types the App Portal
shows and endpoints subscribe by, :mod:`notifier.usecases.catalog_sync`), the public docs (an
OpenAPI 3.1 document with ``webhooks``, :mod:`notifier.usecases.catalog_openapi`) and the function
itself (drift: an event off the catalog is sent all the same, then reported). Here: the catalog
loaded and checked, and the words the sync plans in; no cloud SDK, no svix.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import SchemaError

from notifier.domain.errors import CatalogError

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
EVENTS_DIR = SCHEMAS_DIR / "events"
ENVELOPE_PATH = SCHEMAS_DIR / "event.schema.json"
# Formats the catalog uses that jsonschema can check with what requirements.txt installs.
CHECKED_FORMATS = ("date", "date-time", "email")
_MAX_PATHS = 20

DriftCause = Literal["unknown_type", "schema_drift"]
ChangeAction = Literal["create", "update", "unarchive", "archive"]


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
