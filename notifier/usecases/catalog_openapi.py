"""The catalog as an OpenAPI 3.1 document (``webhooks``, for the public docs), and each type's
whole event as a schema with examples (what Svix and the document show customers).

A Svix message's payload is the whole event (notifier sends the envelope, not just ``data``), so a
type's schema is the envelope with the type's ``data`` schema and ``type`` const, and its examples
are whole events.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from notifier.domain.catalog import ENVELOPE_PATH, EventType, event_types

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
