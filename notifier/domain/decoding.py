"""From a Pub/Sub delivery to a validated platform event, or a rejection that says why.

This is the only place that reads untrusted bytes. It either returns an :class:`Event` or raises
:class:`~notifier.domain.errors.Rejected`; any other exception escaping it is a bug.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

from notifier.domain.errors import Rejected
from notifier.domain.events import SAFE_ID, SVIX_RESERVED_PREFIXES, Delivery, Event, Identity
from notifier.domain.schema import validation_errors

# Real events nest a few levels. Svix's JSON parser stops at 128 levels, the SDK's serialiser at
# 255, many customers' parsers at 100: anything deeper could never be delivered.
MAX_DEPTH = 64


def delivery_of(envelope: object) -> Delivery:
    """Reads the delivery metadata, tolerating any shape: a bad envelope must still be recorded."""
    if not isinstance(envelope, Mapping):
        return Delivery()
    message = envelope.get("message")
    message = message if isinstance(message, Mapping) else {}
    attempt = message.get("deliveryAttempt", envelope.get("deliveryAttempt"))
    return Delivery(
        message_id=str(message.get("messageId") or message.get("message_id") or "")[:128],
        publish_time=str(message.get("publishTime") or message.get("publish_time") or "")[:64],
        delivery_attempt=attempt if isinstance(attempt, int) else None,
        subscription=str(envelope.get("subscription") or "")[:256],
    )


def message_data(envelope: object) -> bytes:
    """The Pub/Sub message's payload: base64 in ``message.data``, decoded strictly."""
    if not isinstance(envelope, Mapping) or not isinstance(envelope.get("message"), Mapping):
        raise Rejected("bad_envelope", "the delivery has no Pub/Sub message")
    data = envelope["message"].get("data")
    if data is None or data in ("", b""):
        raise Rejected("no_data", "the Pub/Sub message has no data")
    if isinstance(data, bytes | bytearray):
        return bytes(data)
    if not isinstance(data, str):
        raise Rejected("not_base64", "message.data is not a base64 string")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("not_base64", "message.data is not valid base64") from None


def parse_event(raw: bytes, *, max_bytes: int) -> Event:
    """Bytes -> JSON object -> schema-valid event with safe ids, within Svix's payload limit."""
    if len(raw) > max_bytes:
        raise Rejected("too_large", f"the event is {len(raw)} bytes; the limit is {max_bytes}")
    # Fewer brackets than the depth limit cannot nest past it: no need to walk the document.
    shallow = raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH
    return event_from(parse_object(raw), max_bytes=max_bytes, shallow=shallow)


def parse_object(raw: bytes) -> dict[str, Any]:
    """Strict UTF-8, strict JSON (no NaN, no infinities, no key twice in an object: parsers
    disagree on which one wins, so ambiguous JSON is not an event), and an object at the top."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("not_utf8", "the message is not UTF-8 text") from None
    try:
        document = json.loads(
            text, parse_constant=_not_json, parse_float=_finite, object_pairs_hook=_unique_keys
        )
    except DuplicateKey:
        raise Rejected("duplicate_key", "a JSON object holds the same key twice") from None
    except RecursionError:
        raise Rejected("too_deep", "the JSON is nested too deeply to process") from None
    except ValueError as exc:
        # Not only JSONDecodeError: an over-long integer or NaN raises a plain ValueError.
        why = getattr(exc, "msg", None) or str(exc).split(":", 1)[0]
        raise Rejected("not_json", f"the message is not JSON ({why[:100]})") from None
    if not isinstance(document, dict):
        raise Rejected("not_object", f"the JSON is a {type(document).__name__}, not an object")
    return document


def event_from(document: dict[str, Any], *, max_bytes: int, shallow: bool = False) -> Event:
    """Validates a parsed event; also the entry for callers that already hold JSON (HTTP).
    ``shallow``: the caller knows it nests less than ``MAX_DEPTH`` (from its bytes)."""
    if not shallow and _too_deep(document):
        raise Rejected("too_deep", f"the JSON is nested more than {MAX_DEPTH} levels deep")
    errors = validation_errors(document)
    if errors:
        raise Rejected("schema_invalid", f"{len(errors)} schema error(s)", errors=errors)
    for name in ("id", "project", "type"):
        if not SAFE_ID.fullmatch(document[name]):
            raise Rejected(
                "unsafe_id",
                f"{name} is not a safe identifier",
                errors=[f"/{name}: must match {SAFE_ID.pattern}"],
            )
    for name, prefix in SVIX_RESERVED_PREFIXES.items():
        if document[name].startswith(prefix):
            raise Rejected(
                "unsafe_id",
                f"{name} starts with {prefix!r}, which Svix reserves for its own ids",
                errors=[f"/{name}: must not start with {prefix!r}"],
            )
    try:
        body = json.dumps(
            document, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except UnicodeEncodeError:
        raise Rejected("not_utf8", "the event holds text that is not valid Unicode") from None
    except (RecursionError, ValueError):
        raise Rejected("not_json", "the event holds values that JSON cannot carry") from None
    if len(body) > max_bytes:
        raise Rejected("too_large", f"the event is {len(body)} bytes; the limit is {max_bytes}")
    return Event(
        id=document["id"],
        project=document["project"],
        type=document["type"],
        time=document["time"],
        payload=document,
        body=body,
    )


class DuplicateKey(ValueError):
    """A key seen twice in one JSON object (not named: a key may be data too)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise DuplicateKey()
    return document


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _too_deep(document: Any) -> bool:
    """Iterative, so that the check itself cannot exhaust the stack."""
    stack = [(document, 1)] if isinstance(document, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode(envelope: object, *, max_bytes: int) -> Event:
    """A Pub/Sub envelope (``{"message": {...}, "subscription": ...}``) to an event."""
    return parse_event(message_data(envelope), max_bytes=max_bytes)


def identity_of(envelope: object) -> Identity | None:
    """The ids a message says it carries, read without validating it (one plain parse): enough
    to look its record up. None for anything else; :func:`decode` then says what is wrong."""
    try:
        document = json.loads(message_data(envelope).decode("utf-8"))
    except (Rejected, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    if not isinstance(document, dict):
        return None
    ids = [document.get(name) for name in ("id", "project", "type")]
    safe = [value for value in ids if isinstance(value, str) and SAFE_ID.fullmatch(value)]
    return Identity(*safe) if len(safe) == len(ids) else None
