"""Event types: v1/endpoints/event_type.rs (create unarchives, PUT upserts, DELETE archives)."""

from __future__ import annotations

import copy
from typing import Any

from devstack.svix_twin import validation as v
from devstack.svix_twin.answers import Answer, Refusal, conflict, json_answer, no_content, not_found
from devstack.svix_twin.store import Db, list_response

_FIELDS = (
    "description",
    "archived",
    "deprecated",
    "schemas",
    "featureFlag",
    "groupName",
    "featureFlags",
)


def event_type_out(event_type: dict[str, Any], with_schemas: bool = True) -> dict[str, Any]:
    """EventTypeOut (`without_payload` drops the schemas in lists without with_content)."""
    out = {k: copy.deepcopy(event_type[k]) for k in ("name", *_FIELDS, "createdAt", "updatedAt")}
    if not with_schemas:
        out["schemas"] = None
    return out


def create(db: Db, body: Any) -> Answer:
    """create_event_type: 201; an archived one is restored and updated; a live one is 409."""
    data = v.event_type_in(body, with_name=True)
    with db.lock:
        existing = db.event_types.get(data["name"])
        if existing is not None and not existing["archived"]:
            raise Refusal(
                conflict("event_type_exists", "An event_type with this name already exists")
            )
        now = db.clock.iso()
        event_type = existing or {"name": data["name"], "createdAt": now}
        event_type.update({k: data[k] for k in _FIELDS}, updatedAt=now)
        db.event_types[data["name"]] = event_type
        return json_answer(201, event_type_out(event_type))


def get(db: Db, name: str) -> Answer:
    with db.lock:
        event_type = db.event_types.get(name)
        if event_type is None:
            raise Refusal(not_found())
        return json_answer(200, event_type_out(event_type))


def update(db: Db, name: str, body: Any) -> Answer:
    """update_event_type: 200 when it existed (archived follows the body), 201 when created."""
    data = v.event_type_in(body, with_name=False)
    with db.lock:
        now = db.clock.iso()
        existing = db.event_types.get(name)
        event_type = existing or {"name": name, "createdAt": now}
        event_type.update({k: data[k] for k in _FIELDS}, updatedAt=now)
        db.event_types[name] = event_type
        return json_answer(200 if existing else 201, event_type_out(event_type))


def patch(db: Db, name: str, body: Any) -> Answer:
    """patch_event_type: only the fields present change; 404 when missing."""
    fields = v.Fields(body)
    changes = {k: fields.bool(k) for k in ("archived", "deprecated") if k in body}
    if "description" in body:
        changes["description"] = fields.str("description", required=True)
    for k in ("schemas", "featureFlag", "groupName", "featureFlags"):
        if k in body:
            changes[k] = body[k]
    with db.lock:
        event_type = db.event_types.get(name)
        if event_type is None:
            raise Refusal(not_found())
        event_type.update(changes, updatedAt=db.clock.iso())
        return json_answer(200, event_type_out(event_type))


def delete(db: Db, name: str, expunge: bool) -> Answer:
    """delete_event_type: archive, or remove entirely with `expunge=true`; 204."""
    with db.lock:
        event_type = db.event_types.get(name)
        if event_type is None:
            raise Refusal(not_found())
        if expunge:
            del db.event_types[name]
        else:
            event_type.update(archived=True, updatedAt=db.clock.iso())
    return no_content()


def list_(
    db: Db, limit: int, iterator: str | None, include_archived: bool, with_content: bool
) -> Answer:
    with db.lock:
        types = sorted(
            (t for t in db.event_types.values() if include_archived or not t["archived"]),
            key=lambda t: t["name"],
        )
        out = [event_type_out(t, with_content) for t in types]
    return json_answer(200, list_response(out, "name", limit, iterator))
