"""Applications and messages: v1/endpoints/application.rs, message.rs and auth.rs (portal).

Application creation is check-then-insert as in `create_application` and
`create_message_inner`: the lookup and the insert are separate steps, so two requests can both
miss the lookup; the uid's unique index then fails the loser with `http_error_on_conflict`
(409 `conflict` / "A conflict has occurred"). `race_seconds` widens the gap between the steps.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
import string
import threading
import time
from collections.abc import Callable
from typing import Any

from devstack.svix_twin import validation as v
from devstack.svix_twin.answers import (
    Answer,
    Refusal,
    conflict,
    http_error,
    item,
    json_answer,
    no_content,
    not_found,
    validation,
)
from devstack.svix_twin.clock import Clock

EVENT_ID_WINDOW_SECONDS = 24 * 3600.0  # hosted: "verified to be unique only up to a day" (spec)
MAX_PAYLOAD_BYTES = 1024 * 1024  # spec, v1.message.create: "payload sizes of up to 1MiB"
_BASE62 = string.digits + string.ascii_letters
LISTED_MESSAGE_KEYS = (
    "app_id",
    "app_uid",
    "id",
    "eventId",
    "eventType",
    "payload",
    "idempotency_key",
    "timestamp",
)


def new_id(prefix: str) -> str:
    """KSUID-like: 27 base62 characters after the type's prefix (core/types/mod.rs)."""
    return prefix + "".join(secrets.choice(_BASE62) for _ in range(27))


def new_secret() -> str:
    """EndpointSecretInternal::generate_symmetric: 24 random bytes, `whsec_` + base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def prefixed_secret(secret: str) -> str:
    return secret if secret.startswith("whsec_") else "whsec_" + secret


def new_endpoint(clock: Clock, data: dict[str, Any], settings: tuple[str, ...]) -> dict[str, Any]:
    """An endpoint's record: id, times, its secret (given or generated) and its settings."""
    now = clock.iso()
    return {
        "id": new_id("ep_"),
        "createdAt": now,
        "updatedAt": now,
        "secret": prefixed_secret(data["secret"]) if data["secret"] else new_secret(),
        **{k: data[k] for k in settings},
    }


class Db:
    """All state, behind one lock; each step below takes it briefly, as a database would."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.race_seconds = 0.0
        self.on_message: Callable[[dict[str, Any]], None] = lambda message: None
        # (event type, data): an operational webhook to send (operational.py)
        self.emit_operational: Callable[[str, dict[str, Any]], None] = lambda type_, data: None
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.apps: dict[str, dict[str, Any]] = {}
            self.app_uids: dict[str, str] = {}  # the unique index on (org, uid)
            self.messages: list[dict[str, Any]] = []
            self.app_messages: dict[str, list[dict[str, Any]]] = {}
            self.endpoints: dict[str, dict[str, dict[str, Any]]] = {}  # app id -> ep id -> ep
            self.event_types: dict[str, dict[str, Any]] = {}
            self.op_endpoints: dict[str, dict[str, Any]] = {}  # operational-webhook endpoints

    # --- applications (application.rs) ---------------------------------------------------

    def find_app(self, ref: str | None) -> dict[str, Any] | None:
        """secure_find_by_id_or_uid / fetch_with_metadata: by id or uid, never a deleted app."""
        if ref is None:
            return None
        with self.lock:
            app = self.apps.get(ref) or self.apps.get(self.app_uids.get(ref, ""))
            return app if app is not None and not app["deleted"] else None

    def insert_app(self, app_in: dict[str, Any]) -> dict[str, Any]:
        """create_app_from_app_in: the insert; a taken uid is the unique index's conflict."""
        with self.lock:
            uid = app_in.get("uid")
            if uid is not None and uid in self.app_uids:
                raise Refusal(conflict())
            now = self.clock.iso()
            app = {
                "id": new_id("app_"),
                "uid": uid,
                "name": app_in["name"],
                "throttleRate": app_in.get("throttleRate") or app_in.get("rateLimit"),
                "metadata": dict(app_in.get("metadata") or {}),
                "createdAt": now,
                "updatedAt": now,
                "deleted": False,
            }
            self.apps[app["id"]] = app
            self.app_messages[app["id"]] = []
            self.endpoints[app["id"]] = {}
            if uid is not None:
                self.app_uids[uid] = app["id"]
            return app

    def _race_gap(self) -> None:
        if self.race_seconds:
            time.sleep(self.race_seconds)

    def create_app(self, body: Any, get_if_exists: bool) -> Answer:
        app_in, errors = v.application_in(body, ["body"])
        if errors:
            raise Refusal(validation(errors))
        if app_in["uid"] is not None:
            existing = self.find_app(app_in["uid"])
            if existing is not None and get_if_exists:
                return json_answer(200, app_out(existing))  # JsonStatusUpsert::Updated
            if existing is not None:
                raise Refusal(conflict(detail="An application with that id or uid already exists"))
            self._race_gap()
        return json_answer(201, app_out(self.insert_app(app_in)))

    def get_app(self, ref: str) -> Answer:
        app = self.find_app(ref)
        if app is None:
            raise Refusal(not_found())
        return json_answer(200, app_out(app))

    def update_app(self, ref: str, body: Any) -> Answer:
        """update_application: PUT is an upsert (200/201); the body's uid replaces the old one."""
        app_in, errors = v.application_in(body, ["body"])
        if errors:
            raise Refusal(validation(errors))
        existing = self.find_app(ref)
        if existing is None:
            return json_answer(201, app_out(self.insert_app(app_in)))
        with self.lock:
            uid = app_in["uid"]
            if uid is not None and self.app_uids.get(uid, existing["id"]) != existing["id"]:
                raise Refusal(conflict())
            if existing["uid"] is not None:
                self.app_uids.pop(existing["uid"], None)
            if uid is not None:
                self.app_uids[uid] = existing["id"]
            existing.update(
                uid=uid,
                name=app_in["name"],
                throttleRate=app_in["throttleRate"] or app_in["rateLimit"],
                metadata=app_in["metadata"],
                updatedAt=self.clock.iso(),
            )
            return json_answer(200, app_out(existing))

    def delete_app(self, ref: str) -> Answer:
        """delete_application: marks it deleted, frees its uid; its messages become unreachable."""
        with self.lock:
            app = self.find_app(ref)
            if app is None:
                raise Refusal(not_found())
            app["deleted"] = True
            if app["uid"] is not None:
                self.app_uids.pop(app["uid"], None)
            app["uid"] = None
        return no_content()

    def list_apps(self, limit: int, iterator: str | None) -> Answer:
        with self.lock:
            apps = sorted(
                (a for a in self.apps.values() if not a["deleted"]), key=lambda a: a["id"]
            )
        return json_answer(200, list_response([app_out(a) for a in apps], "id", limit, iterator))

    def app_for_create(self, path_ref: str, app_in: dict[str, Any] | None) -> dict[str, Any]:
        """message.rs::create_message_inner, auth.rs::app_portal_access: find or create inline."""
        v.app_path(path_ref)
        app = self.find_app(path_ref)
        if app is not None:
            return app
        if app_in is None:
            raise Refusal(not_found("Application not found"))
        validate_create_app_uid(path_ref, app_in)
        self._race_gap()
        return self.insert_app(app_in)

    # --- messages (message.rs) ------------------------------------------------------------

    def create_message(
        self, path_ref: str, body: Any, with_content: bool, key: str | None
    ) -> Answer:
        message_in = v.message_in(body)
        app = self.app_for_create(path_ref, message_in["application"])
        payload = json.dumps(message_in["payload"], separators=(",", ":"), ensure_ascii=False)
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise Refusal(http_error(413))
        with self.lock:
            event_id = message_in["eventId"]
            if event_id is not None and self._recent_event_id(app["id"], event_id):
                raise Refusal(conflict())  # the insert's unique violation, http_error_on_conflict
            message = {
                "app_id": app["id"],
                "app_uid": app["uid"],
                "id": new_id("msg_"),
                "eventId": event_id,
                "eventType": message_in["eventType"],
                "payload": message_in["payload"],
                "raw_payload": payload,
                "channels": message_in["channels"],
                "tags": message_in["tags"],
                "idempotency_key": key,
                "timestamp": self.clock.iso(),
                "created": self.clock.now(),
            }
            self.messages.append(message)
            self.app_messages[app["id"]].append(message)
        self.on_message(message)
        return json_answer(202, message_out(message, with_content))

    def _recent_event_id(self, app_id: str, event_id: str) -> bool:
        horizon = self.clock.now() - EVENT_ID_WINDOW_SECONDS
        return any(
            m["eventId"] == event_id and m["created"] > horizon for m in self.app_messages[app_id]
        )

    def get_message(self, app_ref: str, msg_ref: str, with_content: bool) -> Answer:
        """get_message: by id or eventId (the newest, once the window let a second one in)."""
        app = self.find_app(app_ref)
        if app is None:
            raise Refusal(not_found())
        with self.lock:
            found = [m for m in self.app_messages[app["id"]] if msg_ref in (m["id"], m["eventId"])]
        if not found:
            raise Refusal(not_found())
        return json_answer(200, message_out(found[-1], with_content))

    def list_messages(self) -> list[dict[str, Any]]:
        """What Svix holds: messages of applications that still exist."""
        with self.lock:
            return [
                copy.deepcopy({k: m[k] for k in LISTED_MESSAGE_KEYS})
                for m in self.messages
                if not self.apps[m["app_id"]]["deleted"]
            ]

    def listed_apps(self) -> list[dict[str, Any]]:
        with self.lock:
            return [app_out(a) for a in self.apps.values() if not a["deleted"]]

    # --- app portal (auth.rs) -------------------------------------------------------------

    def portal_access(self, path_ref: str, body: Any, base_url: str) -> Answer:
        portal_in = v.portal_access_in(body)
        app = self.app_for_create(path_ref, portal_in["application"])
        token = "appsk_" + secrets.token_urlsafe(24)
        return json_answer(
            200, {"url": f"{base_url}/portal/{app['id']}#key={token}", "token": token}
        )


def validate_create_app_uid(path_ref: str, app_in: dict[str, Any]) -> None:
    """message.rs::validate_create_app_uid."""
    if app_in.get("uid") is None:
        msg, type_ = "Application UID not set in body", "application_uid_missing"
    elif app_in["uid"] != path_ref:
        msg, type_ = "Application UID in the path and body must match", "application_uid_mismatch"
    else:
        return
    raise Refusal(validation([item(["body", "application", "uid"], msg, type_)]))


def app_out(app: dict[str, Any]) -> dict[str, Any]:
    """ApplicationOut: `uid` only when set, `throttleRate` always (null when unset)."""
    out = {
        k: copy.deepcopy(app[k])
        for k in ("name", "throttleRate", "id", "createdAt", "updatedAt", "metadata")
    }
    if app["uid"] is not None:
        out = {"uid": app["uid"], **out}
    return out


def message_out(message: dict[str, Any], with_content: bool) -> dict[str, Any]:
    """MessageOut::from_msg_and_payload: payload `{}` unless with_content."""
    return {
        "eventId": message["eventId"],
        "eventType": message["eventType"],
        "payload": copy.deepcopy(message["payload"]) if with_content else {},
        "channels": message["channels"],
        "id": message["id"],
        "timestamp": message["timestamp"],
    }


def list_response(
    items: list[dict[str, Any]], key: str, limit: int, iterator: str | None
) -> dict[str, Any]:
    """v1/utils ListResponse: ascending by key after `iterator`, `done` when nothing is left."""
    after = [i for i in items if iterator is None or i[key] > iterator]
    page = after[:limit]
    return {
        "data": page,
        "iterator": page[-1][key] if page else None,
        "prevIterator": f"-{page[0][key]}" if page else None,
        "done": len(after) <= limit,
    }
