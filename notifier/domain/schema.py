"""The event schema, loaded and compiled once per process (validation is on the hot path)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, ValidationError

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "event.schema.json"
_MAX_MESSAGE = 200


@cache
def validator() -> Draft202012Validator:
    """The envelope's validator, compiled on first use (its metaschema checked once)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    # Only date-time is checked: the schema uses no other format, and this skips the rest.
    return Draft202012Validator(schema, format_checker=FormatChecker(formats=["date-time"]))


def validation_errors(document: Any) -> list[str]:
    """Every violation as ``/path: message``, sorted, each short enough to store and return."""
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
