"""Endpoints: v1/endpoints/endpoint/crud.rs and secrets.rs, answers per the spec's EndpointOut."""

from __future__ import annotations

import copy
from typing import Any

from devstack.svix_twin import operational
from devstack.svix_twin import validation as v
from devstack.svix_twin.answers import (
    Answer,
    Refusal,
    conflict,
    item,
    json_answer,
    no_content,
    not_found,
    validation,
)
from devstack.svix_twin.store import Db, list_response, new_endpoint


def owning_app(db: Db, app_ref: str) -> dict[str, Any]:
    app = db.find_app(app_ref)
    if app is None:
        raise Refusal(not_found())
    return app


def _validate_event_types(db: Db, names: list[str] | None) -> None:
    """crud.rs::validate_event_types: every filter type must exist and not be archived."""
    if not names:
        return
    with db.lock:
        known = {n for n, t in db.event_types.items() if not t["archived"]}
    missing = [n for n in names if n not in known]
    if missing:
        msg = f"The following event types don't exist: {', '.join(missing)}"
        raise Refusal(validation([item(["body", "eventTypes"], msg)]))


def find(db: Db, app_id: str, ref: str) -> dict[str, Any] | None:
    with db.lock:
        for endpoint in db.endpoints[app_id].values():
            if ref in (endpoint["id"], endpoint["uid"]):
                return endpoint
    return None


# EndpointIn's fields an endpoint keeps as given: set on create, replaced by update (PUT).
SETTINGS = (
    "url",
    "description",
    "uid",
    "disabled",
    "filterTypes",
    "channels",
    "metadata",
    "throttleRate",
    "version",
)


def _insert(db: Db, app: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    with db.lock:
        if data["uid"] is not None and find(db, app["id"], data["uid"]) is not None:
            raise Refusal(conflict())  # unique (app, uid) index, http_error_on_conflict
        endpoint = new_endpoint(db.clock, data, SETTINGS)
        db.endpoints[app["id"]][endpoint["id"]] = endpoint
        return endpoint


def endpoint_out(endpoint: dict[str, Any]) -> dict[str, Any]:
    """EndpointOut: EndpointOutCommon (eventTypes and filterTypes alike) + id + metadata."""
    return {
        "description": endpoint["description"],
        "throttleRate": endpoint["throttleRate"],
        "uid": endpoint["uid"],
        "url": endpoint["url"],
        "version": endpoint["version"],
        "disabled": endpoint["disabled"],
        "eventTypes": copy.copy(endpoint["filterTypes"]),
        "filterTypes": copy.copy(endpoint["filterTypes"]),
        "channels": copy.copy(endpoint["channels"]),
        "createdAt": endpoint["createdAt"],
        "updatedAt": endpoint["updatedAt"],
        "id": endpoint["id"],
        "metadata": dict(endpoint["metadata"]),
    }


def create(db: Db, app_ref: str, body: Any) -> Answer:
    app = owning_app(db, app_ref)
    data = v.endpoint_in(body)
    _validate_event_types(db, data["filterTypes"])
    return _created(db, app, data)


def get(db: Db, app_ref: str, ref: str) -> Answer:
    endpoint = find(db, owning_app(db, app_ref)["id"], ref)
    if endpoint is None:
        raise Refusal(not_found())
    return json_answer(200, endpoint_out(endpoint))


def list_(db: Db, app_ref: str, limit: int, iterator: str | None) -> Answer:
    app = owning_app(db, app_ref)
    with db.lock:
        endpoints = sorted(db.endpoints[app["id"]].values(), key=lambda e: e["id"])
    return json_answer(
        200, list_response([endpoint_out(e) for e in endpoints], "id", limit, iterator)
    )


def update(db: Db, app_ref: str, ref: str, body: Any) -> Answer:
    """update_endpoint: an upsert (200 updated, 201 created); the secret is kept on update."""
    app = owning_app(db, app_ref)
    data = v.endpoint_in(body)
    _validate_event_types(db, data["filterTypes"])
    with db.lock:
        endpoint = find(db, app["id"], ref)
        if endpoint is None:
            return _created(db, app, data)
    return _apply(db, app, endpoint, data)


def patch(db: Db, app_ref: str, ref: str, body: Any) -> Answer:
    """patch_endpoint: the fields given replace the endpoint's (EndpointPatch); 200."""
    app = owning_app(db, app_ref)
    endpoint = find(db, app["id"], ref)
    if endpoint is None:
        raise Refusal(not_found())
    if not isinstance(body, dict):
        v.endpoint_in(body)  # serde's "expected a struct"
    merged = {**{k: endpoint[k] for k in SETTINGS}, **body}
    if "eventTypes" in body:
        merged["filterTypes"] = body["eventTypes"]
    data = v.endpoint_in(merged)
    if "eventTypes" in body or "filterTypes" in body:
        _validate_event_types(db, data["filterTypes"])
    return _apply(db, app, endpoint, data)


def _apply(db: Db, app: dict[str, Any], endpoint: dict[str, Any], data: dict[str, Any]) -> Answer:
    """update_endp_from_data: save, then endpoint.updated (crud.rs); when `disabled` flips,
    also the spec's endpoint.enabled, or endpoint.disabled with trigger `manual`."""
    with db.lock:
        if (
            data["uid"] is not None
            and data["uid"] != endpoint["uid"]
            and find(db, app["id"], data["uid"])
        ):
            raise Refusal(conflict())
        was_disabled = endpoint["disabled"]
        for k in SETTINGS:
            endpoint[k] = data[k]
        endpoint["updatedAt"] = db.clock.iso()
        out = endpoint_out(endpoint)
    event = operational.endpoint_event(db, app["id"], endpoint)
    db.emit_operational("endpoint.updated", event)
    if was_disabled and not endpoint["disabled"]:
        db.emit_operational("endpoint.enabled", event)
    elif endpoint["disabled"] and not was_disabled:
        disabled = operational.disabled_event(db, app["id"], endpoint, None, "manual")
        db.emit_operational("endpoint.disabled", disabled)
    return json_answer(200, out)


def _created(db: Db, app: dict[str, Any], data: dict[str, Any]) -> Answer:
    """create_endp_from_data: the insert, then endpoint.created."""
    endpoint = _insert(db, app, data)
    db.emit_operational("endpoint.created", operational.endpoint_event(db, app["id"], endpoint))
    return json_answer(201, endpoint_out(endpoint))


def delete(db: Db, app_ref: str, ref: str) -> Answer:
    app = owning_app(db, app_ref)
    with db.lock:
        endpoint = find(db, app["id"], ref)
        if endpoint is None:
            raise Refusal(not_found())
        del db.endpoints[app["id"]][endpoint["id"]]
    db.emit_operational("endpoint.deleted", operational.endpoint_event(db, app["id"], endpoint))
    return no_content()


def secret(db: Db, app_ref: str, ref: str) -> Answer:
    """secrets.rs::get_endpoint_secret: `{"key": "whsec_..."}`."""
    endpoint = find(db, owning_app(db, app_ref)["id"], ref)
    if endpoint is None:
        raise Refusal(not_found())
    return json_answer(200, {"key": endpoint["secret"]})


def targets(db: Db, message: dict[str, Any]) -> list[dict[str, Any]]:
    """message_app.rs::filtered_endpoints: enabled, and matching event type and channels."""
    with db.lock:
        endpoints = list(db.endpoints.get(message["app_id"], {}).values())
    channels = set(message["channels"] or ())
    return [
        e
        for e in endpoints
        if not e["disabled"]
        and (e["filterTypes"] is None or message["eventType"] in e["filterTypes"])
        and (e["channels"] is None or not set(e["channels"]).isdisjoint(channels))
    ]
