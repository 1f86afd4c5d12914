"""Operational-webhook endpoints: the hosted API `/api/v1/operational-webhook/endpoint...`
(spec `v1.operational-webhook.endpoint.*`; svix-server has no such API: it posts operational
webhooks as messages to another Svix server, core/operational_webhooks.rs). Shapes follow the
spec's OperationalWebhookEndpointIn/UpsertIn/Out; secrets and their rotation follow the
regular endpoints' (endpoint/secrets.rs::rotate_key).
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.svix_twin import validation as v
from devstack.svix_twin.answers import (
    Answer,
    Refusal,
    conflict,
    http_error,
    json_answer,
    no_content,
    not_found,
)
from devstack.svix_twin.store import Db, list_response, new_endpoint, new_secret, prefixed_secret

DEFAULT_GRACE_SECONDS = 86_400  # endpoint/mod.rs::default_grace_period_seconds
MAX_OLD_KEYS = 10  # core/types/mod.rs::ExpiringSigningKeys::MAX_OLD_KEYS
SETTINGS = ("url", "description", "uid", "disabled", "eventTypes", "metadata", "throttleRate")


def find(db: Db, ref: str) -> dict[str, Any] | None:
    """By id or uid."""
    with db.lock:
        for endpoint in db.op_endpoints.values():
            if ref in (endpoint["id"], endpoint["uid"]):
                return endpoint
    return None


def _found(db: Db, ref: str) -> dict[str, Any]:
    endpoint = find(db, ref)
    if endpoint is None:
        raise Refusal(not_found())
    return endpoint


def endpoint_out(endpoint: dict[str, Any]) -> dict[str, Any]:
    """Spec OperationalWebhookEndpointOut."""
    out = {k: copy.deepcopy(endpoint[k]) for k in ("id", *SETTINGS)}
    return {**out, "createdAt": endpoint["createdAt"], "updatedAt": endpoint["updatedAt"]}


def _insert(db: Db, data: dict[str, Any]) -> dict[str, Any]:
    with db.lock:
        if data["uid"] is not None and find(db, data["uid"]) is not None:
            raise Refusal(conflict())
        endpoint = new_endpoint(db.clock, data, SETTINGS)
        endpoint["old_secrets"] = []  # (secret, expires on db.clock.now())
        endpoint["headers"] = dict(data["headers"])
        db.op_endpoints[endpoint["id"]] = endpoint
        return endpoint


def create(db: Db, body: Any) -> Answer:
    """v1.operational-webhook.endpoint.create: 201."""
    data = v.operational_endpoint_in(body, upsert=False)
    return json_answer(201, endpoint_out(_insert(db, data)))


def get(db: Db, ref: str) -> Answer:
    return json_answer(200, endpoint_out(_found(db, ref)))


def list_(db: Db, limit: int, iterator: str | None) -> Answer:
    with db.lock:
        endpoints = sorted(db.op_endpoints.values(), key=lambda e: e["id"])
    return json_answer(
        200, list_response([endpoint_out(e) for e in endpoints], "id", limit, iterator)
    )


def upsert(db: Db, ref: str, body: Any) -> Answer:
    """v1.operational-webhook.endpoint.upsert: the spec answers 200 for update and create;
    the secret and headers are kept (UpsertIn has neither)."""
    data = v.operational_endpoint_in(body, upsert=True)
    with db.lock:
        endpoint = find(db, ref)
        if endpoint is None:
            return json_answer(200, endpoint_out(_insert(db, data)))
        taken = find(db, data["uid"]) if data["uid"] is not None else None
        if taken is not None and taken is not endpoint:
            raise Refusal(conflict())
        for k in SETTINGS:
            endpoint[k] = data[k]
        endpoint["updatedAt"] = db.clock.iso()
        return json_answer(200, endpoint_out(endpoint))


def delete(db: Db, ref: str) -> Answer:
    with db.lock:
        endpoint = _found(db, ref)
        del db.op_endpoints[endpoint["id"]]
    return no_content()


def secret(db: Db, ref: str) -> Answer:
    """v1.operational-webhook.endpoint.get-secret: `{"key": "whsec_..."}`."""
    return json_answer(200, {"key": _found(db, ref)["secret"]})


def rotate_secret(db: Db, ref: str, body: Any) -> Answer:
    """secrets.rs::rotate_key: the old key stays valid for the grace period (default 24 h);
    more than MAX_OLD_KEYS unexpired old keys -> 400 `limit_reached`; 204."""
    data = v.secret_rotate_in(body)
    grace = data["gracePeriodSeconds"]
    grace = DEFAULT_GRACE_SECONDS if grace is None else grace
    with db.lock:
        endpoint = _found(db, ref)
        now = db.clock.now()
        old = [(key, until) for key, until in endpoint["old_secrets"] if until > now]
        if grace > 0:
            old.append((endpoint["secret"], now + grace))
        old.sort(key=lambda entry: entry[1])
        if len(old) > MAX_OLD_KEYS:
            detail = (
                f"You can only rotate a key {MAX_OLD_KEYS} times; "
                "please wait for old keys to expire."
            )
            raise Refusal(http_error(400, "limit_reached", detail))
        endpoint["old_secrets"] = old
        endpoint["secret"] = prefixed_secret(data["key"]) if data["key"] else new_secret()
        endpoint["updatedAt"] = db.clock.iso()
    return no_content()


def signing_secrets(db: Db, endpoint: dict[str, Any]) -> list[str]:
    """message_app.rs::valid_signing_keys: the current key and the unexpired old ones."""
    with db.lock:
        now = db.clock.now()
        return [endpoint["secret"], *(k for k, until in endpoint["old_secrets"] if until > now)]


def get_headers(db: Db, ref: str) -> Answer:
    """v1.operational-webhook.endpoint.get-headers: `{headers, sensitive}`."""
    return json_answer(200, {"headers": dict(_found(db, ref)["headers"]), "sensitive": []})


def set_headers(db: Db, ref: str, body: Any) -> Answer:
    """v1.operational-webhook.endpoint.set-headers: replaces them; 204."""
    headers = v.headers_in(body)
    with db.lock:
        _found(db, ref)["headers"] = headers
    return no_content()


def targets(db: Db, event_type: str) -> list[dict[str, Any]]:
    """The operational endpoints an event goes to: enabled, and subscribed to its type (or all)."""
    with db.lock:
        endpoints = list(db.op_endpoints.values())
    return [
        e
        for e in endpoints
        if not e["disabled"] and (e["eventTypes"] is None or event_type in e["eventTypes"])
    ]
