"""Request validation as svix-server does it: serde first (one `value_error.jsondecode` item),
then the `validator` rules (every failing field, `value_error`), with its locations.

Locations follow `v1/utils/mod.rs::validation_errors`: `["body", <field>, ...]`, where the field
is the Rust name unless the field has its own `serde(rename)` (validator_derive honours only
that), and id types add `"__all__"` (`core/types/mod.rs::ALL_ERROR`).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from devstack.svix_twin.answers import Refusal, item, validation

_LIMITED = re.compile(r"^[a-zA-Z0-9\-_.]+$")
MAX_LIMITED_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def limited_str_errors(value: str) -> list[str]:
    """core/types/mod.rs::validate_limited_str."""
    if not value:
        return ["String must be at least one character"]
    if len(value.encode()) > MAX_LIMITED_LENGTH:
        return ["String too long"]
    if not _LIMITED.fullmatch(value):
        return ["String must match the following pattern: [a-zA-Z0-9\\-_.]."]
    return []


def uid_errors(value: str, id_prefix: str) -> list[str]:
    """core/types/mod.rs::BaseUid::validate_: limited string, and not the id's own prefix."""
    errors = limited_str_errors(value)
    if value.startswith(id_prefix):
        errors.append("Uids are not allowed to have the same prefix as the ID. Prefix with _?")
    return errors


def _all(loc: list[str], messages: list[str]) -> list[dict[str, Any]]:
    return [item([*loc, "__all__"], msg) for msg in messages]


def decode_error(path: list[str], msg: str) -> Refusal:
    """v1/utils/mod.rs::ValidatedJson: serde_path_to_error's path, split on '.'."""
    return Refusal(validation([item(["body", *(path or ["", ""])], msg, "value_error.jsondecode")]))


def parse_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise decode_error([], f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    return "sequence" if isinstance(value, list) else "map"


class Fields:
    """Typed access to a JSON object, failing like serde: the first mismatch is the answer."""

    def __init__(self, data: Any, path: list[str] | None = None) -> None:
        self.path = path or []
        if not isinstance(data, dict):
            raise decode_error(self.path, f"invalid type: {_type_name(data)}, expected a struct")
        self.data = data

    def _bad(self, name: str, value: Any, expected: str) -> Refusal:
        return decode_error(
            [*self.path, name], f"invalid type: {_type_name(value)}, expected {expected}"
        )

    def str(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required and name not in self.data:
                raise decode_error(self.path, f"missing field `{name}`")
            if required:
                raise self._bad(name, value, "a string")
            return default
        if not isinstance(value, str):
            raise self._bad(name, value, "a string")
        return value

    def int(self, name: str, low: int = 0, high: int = 65535) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self._bad(name, value, "u16" if high == 65535 else "i64")
        return value

    def bool(self, name: str) -> bool:
        value = self.data.get(name, False)
        if value is None or not isinstance(value, bool):
            raise self._bad(name, value, "a boolean")
        return value

    def str_list(self, name: str) -> list[str] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self._bad(name, value, "a sequence")
        for index, entry in enumerate(value):
            if not isinstance(entry, str):
                raise decode_error(
                    [*self.path, name, f"[{index}]"],
                    f"invalid type: {_type_name(entry)}, expected a string",
                )
        return list(dict.fromkeys(value))

    def str_map(self, name: str) -> dict[str, str]:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._bad(name, value, "a map")
        for key, entry in value.items():
            if not isinstance(entry, str):
                raise decode_error(
                    [*self.path, name, key], f"invalid type: {_type_name(entry)}, expected a string"
                )
        return dict(value)


def application_in(data: Any, loc: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """v1/endpoints/application.rs::ApplicationIn: (parsed, validator errors)."""
    fields = Fields(data, loc[1:])
    app = {
        "name": fields.str("name", required=True),
        "uid": fields.str("uid"),
        "throttleRate": fields.int("throttleRate"),
        "rateLimit": fields.int("rateLimit"),
        "metadata": fields.str_map("metadata"),
    }
    errors: list[dict[str, Any]] = []
    if not app["name"]:
        errors.append(item([*loc, "name"], "Application names must be at least one character"))
    elif _CONTROL.search(app["name"]):
        errors.append(item([*loc, "name"], "Control characters 0x00-0x1f are not allowed"))
    if app["throttleRate"] == 0:
        errors.append(
            item([*loc, "throttle_rate"], "Application throttle rate must be at least 1 if set")
        )
    if app["rateLimit"] == 0:
        errors.append(
            item([*loc, "rate_limit"], "Application rate limits must be at least 1 if set")
        )
    if app["uid"] is not None:
        errors += _all([*loc, "uid"], uid_errors(app["uid"], "app_"))
    return app, errors


def message_in(data: Any) -> dict[str, Any]:
    """v1/endpoints/message.rs::MessageIn."""
    fields = Fields(data)
    payload = data.get("payload", data.get("data")) if isinstance(data, dict) else None
    if isinstance(data, dict) and "payload" not in data and "data" not in data:
        raise decode_error([], "missing field `payload`")
    message = {
        "eventId": fields.str("eventId"),
        "eventType": fields.str("eventType", required=True),
        "payload": payload,
        "channels": fields.str_list("channels"),
        "payloadRetentionPeriod": fields.int("payloadRetentionPeriod", -(2**63), 2**63 - 1) or 90,
        "tags": fields.str_list("tags"),
    }
    errors: list[dict[str, Any]] = []
    if message["eventId"] is not None:
        errors += _all(["body", "eventId"], uid_errors(message["eventId"], "msg_"))
    errors += _all(["body", "event_type"], limited_str_errors(message["eventType"] or ""))
    if not isinstance(payload, dict):
        errors.append(item(["body", "payload"], "Payload must be an object."))
    channels = message["channels"]
    if channels is not None:
        errors += channel_count_errors(channels, most=5)
        for channel in channels:
            errors += _all(["body", "channels"], limited_str_errors(channel))
    if not 5 <= message["payloadRetentionPeriod"] <= 90:
        errors.append(item(["body", "payload_retention_period"], "Validation error"))
    if isinstance(data, dict) and data.get("application") is not None:
        message["application"], app_errors = application_in(
            data["application"], ["body", "application"]
        )
        errors += app_errors
    else:
        message["application"] = None
    if errors:
        raise Refusal(validation(errors))
    return message


def channel_count_errors(channels: list[str], *, most: int) -> list[dict[str, Any]]:
    """The ``channels`` list's size rule (MessageIn: at most 5; EndpointIn: at most 10)."""
    if 1 <= len(channels) <= most:
        return []
    message = f"Channels must have at least 1 and at most {most} items, or be set to null."
    return [item(["body", "channels"], message)]


def portal_access_in(data: Any) -> dict[str, Any]:
    """v1/endpoints/auth.rs::AppPortalAccessIn (expiry: spec, 1 h .. 7 days)."""
    fields = Fields(data)
    expiry = fields.int("expiry", 0, 2**63 - 1)
    errors: list[dict[str, Any]] = []
    if expiry is not None and not 3600 <= expiry <= 604800:
        errors.append(item(["body", "expiry"], "Validation error"))
    app = None
    if data.get("application") is not None:
        app, app_errors = application_in(data["application"], ["body", "application"])
        errors += app_errors
    if errors:
        raise Refusal(validation(errors))
    return {"expiry": expiry, "application": app}


def app_path(value: str) -> None:
    """message.rs::create_message_inner: the path's id-or-uid is a limited string."""
    if errors := limited_str_errors(value):
        raise Refusal(validation(_all(["path", "app_id_or_uid"], errors)))


def endpoint_in(data: Any) -> dict[str, Any]:
    """v1/endpoints/endpoint/mod.rs::EndpointIn."""
    fields = Fields(data)
    filter_types = fields.str_list("filterTypes")
    if filter_types is None:
        filter_types = fields.str_list("eventTypes")
    endpoint = {
        "url": fields.str("url", required=True),
        "description": fields.str("description", default=""),
        "uid": fields.str("uid"),
        "disabled": fields.bool("disabled"),
        "filterTypes": filter_types,
        "channels": fields.str_list("channels"),
        "secret": fields.str("secret"),
        "metadata": fields.str_map("metadata"),
        "throttleRate": fields.int("throttleRate"),
        "version": fields.int("version") or 1,
    }
    errors = _url_errors(endpoint["url"])
    if endpoint["uid"] is not None:
        errors += _all(["body", "uid"], uid_errors(endpoint["uid"], "ep_"))
    errors += _event_types_errors(filter_types)
    if endpoint["channels"] is not None:
        errors += channel_count_errors(endpoint["channels"], most=10)
    errors += _throttle_errors(endpoint["throttleRate"])
    errors += _secret_errors(endpoint["secret"], "key")
    if errors:
        raise Refusal(validation(errors))
    return endpoint


def _event_types_errors(names: list[str] | None) -> list[dict[str, Any]]:
    """EndpointIn.event_types: null, or 1+ limited strings."""
    if names is None:
        return []
    errors: list[dict[str, Any]] = []
    if not names:
        msg = "eventTypes can't be empty, it must have at least one item."
        errors.append(item(["body", "event_types"], msg))
    for name in names:
        errors += _all(["body", "event_types"], limited_str_errors(name))
    return errors


def _throttle_errors(rate: int | None) -> list[dict[str, Any]]:
    if rate != 0:
        return []
    return [item(["body", "throttle_rate"], "Endpoint throttle rate must be at least one if set")]


def secret_bytes(secret: str) -> bytes | None:
    """core/types/mod.rs::EndpointSecret: base64 of 24..75 bytes, optionally after `whsec_`."""
    try:
        raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except ValueError:
        return None
    return raw if 24 <= len(raw) <= 75 else None


def event_type_in(data: Any, with_name: bool) -> dict[str, Any]:
    """v1/endpoints/event_type.rs::EventTypeIn / EventTypeUpdate."""
    fields = Fields(data)
    event_type = {
        "description": fields.str("description", required=True),
        "archived": fields.bool("archived"),
        "deprecated": fields.bool("deprecated"),
        "schemas": data.get("schemas"),
        "featureFlag": fields.str("featureFlag"),
        "groupName": fields.str("groupName"),  # spec (hosted): EventTypeIn.groupName
        "featureFlags": fields.str_list("featureFlags"),  # spec (hosted): EventTypeIn.featureFlags
    }
    if event_type["schemas"] is not None and not isinstance(event_type["schemas"], dict):
        raise decode_error(
            ["schemas"], f"invalid type: {_type_name(event_type['schemas'])}, expected a map"
        )
    errors: list[dict[str, Any]] = []
    if with_name:
        event_type["name"] = fields.str("name", required=True)
        errors += _all(["body", "name"], limited_str_errors(event_type["name"]))
    if event_type["groupName"] is not None:
        errors += _all(["body", "groupName"], limited_str_errors(event_type["groupName"]))
    if _CONTROL.search(event_type["description"]):
        errors.append(item(["body", "description"], "Control characters 0x00-0x1f are not allowed"))
    if errors:
        raise Refusal(validation(errors))
    return event_type


def _url_errors(url_text: str | None) -> list[dict[str, Any]]:
    url = urllib.parse.urlsplit(url_text or "")
    if not url.scheme or not url.netloc:
        raise decode_error(["url"], "relative URL without a base")
    if url.scheme not in ("http", "https"):
        return [item(["body", "url"], "Endpoint URL schemes must be http or https")]
    return []


def operational_endpoint_in(data: Any, *, upsert: bool) -> dict[str, Any]:
    """Spec OperationalWebhookEndpointIn (create) / OperationalWebhookEndpointUpsertIn (PUT:
    no secret, no headers); checked with EndpointIn's rules, which the hosted API shares."""
    fields = Fields(data)
    endpoint = {
        "url": fields.str("url", required=True),
        "description": fields.str("description", default=""),
        "uid": fields.str("uid"),
        "disabled": fields.bool("disabled"),
        "eventTypes": fields.str_list("eventTypes"),
        "metadata": fields.str_map("metadata"),
        "throttleRate": fields.int("throttleRate"),
        "secret": None if upsert else fields.str("secret"),
        "headers": {} if upsert else fields.str_map("headers"),
    }
    errors = _url_errors(endpoint["url"])
    if endpoint["uid"] is not None:
        errors += _all(["body", "uid"], uid_errors(endpoint["uid"], "ep_"))
    errors += _event_types_errors(endpoint["eventTypes"])
    errors += _throttle_errors(endpoint["throttleRate"])
    errors += _secret_errors(endpoint["secret"], "key")
    if errors:
        raise Refusal(validation(errors))
    return endpoint


def _secret_errors(secret: str | None, field: str) -> list[dict[str, Any]]:
    if secret is None or secret_bytes(secret) is not None:
        return []
    msg = "Secret must be 24 to 75 bytes, base64 encoded, optionally prefixed with whsec_"
    return [item(["body", field], msg)]


def secret_rotate_in(data: Any) -> dict[str, Any]:
    """endpoint/mod.rs::EndpointSecretRotateIn (spec OperationalWebhookEndpointSecretIn alike)."""
    fields = Fields(data)
    rotate = {
        "key": fields.str("key"),
        "gracePeriodSeconds": fields.int("gracePeriodSeconds", 0, 2**32 - 1),
    }
    errors = _secret_errors(rotate["key"], "key")
    grace = rotate["gracePeriodSeconds"]
    if grace is not None and grace > 604_800:
        errors.append(
            item(["body", "grace_period_seconds"], "Duration must be between 0 and 7 days")
        )
    if errors:
        raise Refusal(validation(errors))
    return rotate


def headers_in(data: Any) -> dict[str, str]:
    """endpoint/mod.rs::EndpointHeadersIn: `{"headers": {name: value}}`."""
    fields = Fields(data)
    if isinstance(data, dict) and "headers" not in data:
        raise decode_error([], "missing field `headers`")
    return fields.str_map("headers")


def _datetime(fields: Fields, name: str, required: bool) -> datetime | None:
    """chrono's DateTime<Utc> from RFC 3339: an offset is required."""
    text = fields.str(name, required=required)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise decode_error([*fields.path, name], "input contains invalid characters") from None
    if parsed.tzinfo is None:
        raise decode_error([*fields.path, name], "premature end of input")
    return parsed.astimezone(UTC)


def recover_in(data: Any) -> dict[str, Any]:
    """endpoint/mod.rs::RecoverIn: `since` required, `until` optional (RFC 3339 date-times)."""
    fields = Fields(data)
    return {"since": _datetime(fields, "since", True), "until": _datetime(fields, "until", False)}
