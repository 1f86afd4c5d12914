"""The event schema, loaded and compiled once per process (validation is on the hot path).

Every event is first asked of jsonschema-rs (when installed: microseconds, where jsonschema takes
tens of them); only an event it does not pass goes to jsonschema, which decides and words the
errors. Formats are checked by jsonschema's own checker either way, so the verdict is
jsonschema's (a property test holds the two to it).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "event.schema.json"
_MAX_MESSAGE = 200


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return loaded


@cache
def validator() -> Draft202012Validator:
    """The envelope's validator, compiled on first use (its metaschema checked once)."""
    schema = _schema()
    Draft202012Validator.check_schema(schema)
    # Only date-time is checked: the schema uses no other format, and this skips the rest.
    return Draft202012Validator(schema, format_checker=FormatChecker(formats=["date-time"]))


@cache
def quick_check() -> Callable[[Any], bool] | None:
    """True only for an event jsonschema would pass too: jsonschema-rs without formats, then
    jsonschema's format checker on the top-level fields that have one. None: no jsonschema-rs,
    or a schema with formats below the top level (jsonschema alone then)."""
    validator()  # the metaschema is checked once, before either is compiled
    schema = _schema()
    formats = {
        name: spec["format"] for name, spec in schema["properties"].items() if "format" in spec
    }
    nested_formats = json.dumps(schema).count('"format"') != len(formats)
    if nested_formats or importlib.util.find_spec("jsonschema_rs") is None:
        return None
    import jsonschema_rs  # in requirements.txt; loaded on the first event, never at import

    compiled = jsonschema_rs.validator_for(schema, validate_formats=False)
    conforms = FormatChecker(formats=list(set(formats.values()))).conforms

    def passes(document: Any) -> bool:
        try:
            if not compiled.is_valid(document):
                return False
        except Exception:  # noqa: BLE001 - what it cannot take in (a lone surrogate): jsonschema's
            return False
        return all(conforms(document.get(name), kind) for name, kind in formats.items())

    return passes


def validation_errors(document: Any) -> list[str]:
    """Every violation as ``/path: message``, sorted, each short enough to store and return."""
    quick = quick_check()
    if quick is not None and quick(document):
        return []
    found = []
    for error in validator().iter_errors(document):
        path = "/" + "/".join(str(part)[:_MAX_MESSAGE] for part in error.absolute_path)
        found.append(f"{path[:_MAX_MESSAGE]}: {_message(error)[:_MAX_MESSAGE]}")
    return sorted(found)


def _message(error: ValidationError) -> str:
    """What the schema expected, never the value found: that may be personal data (the raw
    message is kept apart, in ``rejected.raw``, for whoever must inspect it)."""
    expected = error.validator_value
    messages = {
        "type": f"must be of type {expected}",
        "pattern": f"must match {expected}",
        "format": f"must be a valid {expected}",
        "const": f"must be {expected!r}",
        "minLength": f"must be at least {expected} character(s) long",
        "maxLength": f"must be at most {expected} characters long",
    }
    if error.validator == "required":
        return error.message  # names the missing property, which comes from the schema
    return messages.get(str(error.validator), f"fails {error.validator}")
