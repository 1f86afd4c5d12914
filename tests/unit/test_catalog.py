"""The event catalog: schemas from real events, drift, the OpenAPI document, the Svix sync plan."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from openapi_spec_validator import validate as validate_openapi
from svix.models import EventTypeIn, EventTypeUpsertIn

from notifier.domain import catalog
from notifier.domain.catalog import EventType, RegisteredEventType, drift, event_types
from notifier.domain.errors import CatalogError
from notifier.usecases.catalog_openapi import openapi_document, payload_schema
from notifier.usecases.catalog_sync import plan_sync, svix_event_type, sync

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_FILES = sorted((ROOT / "samples" / "events").glob("*.json")) + sorted(
    (ROOT / "samples" / "platform-events").glob("*.json")
)
SAMPLES = [json.loads(path.read_text()) for path in SAMPLE_FILES]
SCHEMA_FILES = sorted((ROOT / "schemas" / "events").glob("*/*.json"))
FORMATS = FormatChecker(formats=catalog.CHECKED_FORMATS)
# Svix's names: EventTypeName and the group name share this pattern (codegen/lib-openapi.json).
SVIX_NAME = r"^[a-zA-Z0-9\-_.]+$"


def sample_of(event_type: str) -> dict[str, Any]:
    """The richest sample of the type (the most fields)."""
    of_type = [event for event in SAMPLES if event["type"] == event_type]
    return copy.deepcopy(max(of_type, key=lambda event: len(json.dumps(event))))


def resolve(schema: Mapping[str, Any], pointer: str) -> Any:
    node: Any = schema
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


# --- the catalog in the repository -------------------------------------------------------------


def test_the_fixtures_hold_the_platform_samples_and_the_projects_own() -> None:
    assert len(list((ROOT / "samples" / "platform-events").glob("*.json"))) == 50
    assert len(SAMPLES) == 57


def test_every_sample_event_type_is_catalogued_and_its_data_validates() -> None:
    for path, event in zip(SAMPLE_FILES, SAMPLES, strict=True):
        assert drift(event["type"], event["data"]) is None, path.name


def test_the_catalog_holds_every_sampled_type_and_the_heartbeat() -> None:
    assert {event["type"] for event in SAMPLES} | {"notifier.heartbeat"} == {
        event_type.name for event_type in event_types()
    }


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.stem)
def test_each_schema_is_valid_described_and_its_examples_match(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert schema["description"].strip()
    assert schema["title"] == path.stem
    assert schema["examples"]
    for example in schema["examples"]:
        Draft202012Validator(schema, format_checker=FORMATS).validate(example)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda path: path.stem)
def test_each_type_lives_in_its_resource_group(path: Path) -> None:
    schema = json.loads(path.read_text())
    group = path.parent.name
    resource = schema["properties"].get("object", {}).get("const", "notifier")
    assert group == resource
    assert catalog.catalog().types[path.stem].group == group


@pytest.mark.parametrize("event_type", sorted({event["type"] for event in SAMPLES}))
def test_required_fields_are_the_ones_every_sample_of_the_type_has(event_type: str) -> None:
    schema = catalog.catalog().types[event_type].data_schema
    present = [set(event["data"]) for event in SAMPLES if event["type"] == event_type]
    assert set(schema["required"]) == set.intersection(*present)


def test_formats_are_checked_where_they_apply() -> None:
    data = sample_of("user.created")["data"]
    for field, bad in (
        ("email", "not an email"),
        ("createdAt", "yesterday"),
        ("birthday", "12/03"),
    ):
        found = drift("user.created", {**data, field: bad})
        assert found is not None
        assert f"/properties/{field}/format" in found.schema_paths
    payment = sample_of("payment.succeeded")["data"]
    payment["amount"]["currency"] = "usd"
    found = drift("payment.succeeded", payment)
    assert found is not None
    assert found.schema_paths == ("/properties/amount/properties/currency/pattern",)


def test_nullable_where_samples_show_null_and_nowhere_else() -> None:
    data = sample_of("subscription.updated")["data"]
    assert drift("subscription.updated", {**data, "canceledAt": None, "porting": None}) is None
    found = drift("subscription.updated", {**data, "createdAt": None})
    assert found is not None
    assert found.schema_paths == ("/properties/createdAt/type",)


# --- drift ---------------------------------------------------------------------------------------


def test_an_unknown_type_drifts_without_paths() -> None:
    found = drift("invoice.paid", {"anything": 1})
    assert found == catalog.Drift("invoice.paid", "unknown_type", ())


def test_drift_names_the_schema_paths_that_failed_never_the_values() -> None:
    data = sample_of("payment.succeeded")["data"]
    del data["invoiceNumber"]
    data["failedAttempts"] = "secret-value-42"
    data["user"] = {**data["user"], "email": "jane@secret.example", "emailVerified": "secret-yes"}
    found = drift("payment.succeeded", data)
    assert found is not None and found.cause == "schema_drift"
    schema = catalog.catalog().types["payment.succeeded"].data_schema
    missing = [path for path in found.schema_paths if "/required/" in path]
    assert [resolve(schema, path) for path in missing] == ["invoiceNumber"]
    assert "/properties/failedAttempts/type" in found.schema_paths
    assert "/properties/user/oneOf" in found.schema_paths  # neither an id nor a valid user
    assert not any("secret" in path for path in found.schema_paths)


def test_every_missing_required_field_points_at_its_own_name() -> None:
    found = drift("user.created", {"object": "user", "id": "usr_Example1"})
    assert found is not None
    schema = catalog.catalog().types["user.created"].data_schema
    names = sorted(resolve(schema, path) for path in found.schema_paths)
    assert names == sorted(set(schema["required"]) - {"object", "id"})


def test_drift_of_data_that_is_not_an_object() -> None:
    found = drift("user.created", ["not", "an", "object"])
    assert found is not None and found.schema_paths == ("/type",)


def test_the_catalog_is_loaded_once() -> None:
    assert catalog.catalog() is catalog.catalog()


# --- a broken catalog fails when loaded, not in the App Portal ----------------------------------


def write_type(root: Path, group: str, name: str, schema: dict[str, Any]) -> None:
    (root / group).mkdir(parents=True, exist_ok=True)
    (root / group / f"{name}.json").write_text(json.dumps(schema))


GOOD = {
    "type": "object",
    "description": "A thing happened.",
    "properties": {"at": {"type": "string", "format": "date-time"}},
    "required": ["at"],
    "examples": [{"at": "2026-11-30T10:00:00Z"}],
}


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        ({**GOOD, "description": " "}, "needs a description"),
        ({key: value for key, value in GOOD.items() if key != "examples"}, "at least one example"),
        ({**GOOD, "examples": [{"at": "yesterday"}]}, "/properties/at/format"),
        ({**GOOD, "type": "thing"}, "not a valid JSON Schema"),
    ],
)
def test_a_broken_schema_is_refused_with_its_file(
    tmp_path: Path, broken: dict[str, Any], complaint: str
) -> None:
    write_type(tmp_path, "thing", "thing.happened", broken)
    with pytest.raises(CatalogError, match=r"thing\.happened\.json") as raised:
        catalog.load(tmp_path)
    assert complaint in str(raised.value)


def test_a_type_catalogued_twice_is_refused(tmp_path: Path) -> None:
    write_type(tmp_path, "one", "thing.happened", GOOD)
    write_type(tmp_path, "two", "thing.happened", GOOD)
    with pytest.raises(CatalogError, match="twice"):
        catalog.load(tmp_path)


# --- the OpenAPI document ------------------------------------------------------------------------


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    validate_openapi(document)
    assert document["openapi"] == "3.1.0"
    assert sorted(document["webhooks"]) == sorted(t.name for t in event_types())
    json.dumps(document)  # what `notifier catalog openapi` writes


def webhook_schema(document: Mapping[str, Any], event_type: str) -> Any:
    body = document["webhooks"][event_type]["post"]["requestBody"]
    return body["content"]["application/json"]


def test_every_sample_event_validates_against_its_webhook_in_the_document() -> None:
    document = openapi_document()
    for path, event in zip(SAMPLE_FILES, SAMPLES, strict=True):
        schema = webhook_schema(document, event["type"])["schema"]
        errors = list(Draft202012Validator(schema, format_checker=FORMATS).iter_errors(event))
        assert errors == [], path.name


def test_a_webhook_refuses_an_event_of_another_type_or_without_its_envelope() -> None:
    schema = webhook_schema(openapi_document(), "user.created")["schema"]
    checker = Draft202012Validator(schema, format_checker=FORMATS)
    assert checker.is_valid(sample_of("user.created"))
    assert not checker.is_valid({**sample_of("user.created"), "type": "user.deleted"})
    assert not checker.is_valid(sample_of("user.created")["data"])


def test_each_webhook_has_examples_that_are_whole_events_of_its_type() -> None:
    document = openapi_document()
    for name, webhook in document["webhooks"].items():
        content = webhook_schema(document, name)
        assert webhook["post"]["x-svix-group-name"] == catalog.catalog().types[name].group
        assert content["examples"]
        for example in content["examples"].values():
            Draft202012Validator(content["schema"], format_checker=FORMATS).validate(
                example["value"]
            )
            assert example["value"]["type"] == name


# --- the Svix shape ------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", event_types(), ids=lambda t: t.name)
def test_the_svix_body_is_what_event_type_in_takes(event_type: EventType) -> None:
    body = svix_event_type(event_type)
    accepted = {field.alias or name for name, field in EventTypeIn.model_fields.items()}
    assert set(body) <= accepted
    assert EventTypeIn.model_validate(body).group_name == event_type.group
    update = {key: value for key, value in body.items() if key != "name"}
    assert set(update) <= {f.alias or n for n, f in EventTypeUpsertIn.model_fields.items()}
    for name in (body["name"], body["groupName"]):
        assert Draft202012Validator({"pattern": SVIX_NAME, "maxLength": 256}).is_valid(name)


@pytest.mark.parametrize("event_type", event_types(), ids=lambda t: t.name)
def test_the_svix_schema_is_draft_7_versioned_1_with_a_whole_event_example(
    event_type: EventType,
) -> None:
    schemas = svix_event_type(event_type)["schemas"]
    assert list(schemas) == ["1"]  # Svix reads the App Portal's example from version "1"
    schema = schemas["1"]
    assert "$schema" not in schema and "$id" not in schema
    Draft7Validator.check_schema(schema)  # svix-server compiles schemas as draft 7
    example = schema["examples"][0]
    Draft7Validator(schema, format_checker=FORMATS).validate(example)
    assert example["type"] == event_type.name and example["data"] == event_type.examples[0]
    for event in SAMPLES:
        if event["type"] == event_type.name:
            Draft7Validator(schema, format_checker=FORMATS).validate(event)


def test_draft_7_refuses_what_the_svix_schema_refuses() -> None:
    schema = svix_event_type(catalog.catalog().types["tax.created"])["schemas"]["1"]
    event = sample_of("tax.created")
    event["data"]["value"]["amount"] = 1.5
    assert not Draft7Validator(schema).is_valid(event)
    with pytest.raises(SchemaError):
        Draft7Validator.check_schema({"type": "thing"})


# --- the sync plan -------------------------------------------------------------------------------


class Conflict(Exception):
    """409 event_type_exists."""


class NotFound(Exception):
    """404."""


class InMemoryEventTypes:
    """Svix's event-type semantics as event_type.rs writes them: create inserts, or unarchives an
    archived type and sets every field from the body; PUT sets every field (``archived`` defaults
    to false) or inserts; DELETE archives; list returns archived ones too when asked."""

    def __init__(self, existing: Sequence[RegisteredEventType] = ()) -> None:
        self.types = {item.name: item for item in existing}
        self.calls: list[tuple[str, str]] = []

    def list_all(self) -> list[RegisteredEventType]:
        return sorted(self.types.values(), key=lambda item: item.name)

    def create(self, body: Mapping[str, Any]) -> None:
        self.calls.append(("create", body["name"]))
        found = self.types.get(body["name"])
        if found is not None and not found.archived:
            raise Conflict(body["name"])
        self.types[body["name"]] = self._from_body(body["name"], body)

    def update(self, name: str, body: Mapping[str, Any]) -> None:
        self.calls.append(("update", name))
        self.types[name] = self._from_body(name, body)

    def archive(self, name: str) -> None:
        self.calls.append(("archive", name))
        if name not in self.types:
            raise NotFound(name)
        self.types[name] = replace(self.types[name], archived=True)

    @staticmethod
    def _from_body(name: str, body: Mapping[str, Any]) -> RegisteredEventType:
        flags = body.get("featureFlags")
        return RegisteredEventType(
            name=name,
            description=body["description"],
            archived=body.get("archived", False),
            deprecated=body.get("deprecated", False),
            schemas=json.loads(json.dumps(body.get("schemas"))),  # stored as JSON
            group_name=body.get("groupName"),
            feature_flags=tuple(flags) if flags else None,
        )


def registered(event_type: EventType, **changes: Any) -> RegisteredEventType:
    body = svix_event_type(event_type)
    found = RegisteredEventType(
        name=body["name"],
        description=body["description"],
        schemas=body["schemas"],
        group_name=body["groupName"],
    )
    return replace(found, **changes)


def test_a_first_sync_creates_every_type_and_a_second_changes_nothing() -> None:
    svix = InMemoryEventTypes()
    changes = sync(svix, dry_run=False, prune=False)
    assert [(c.action, c.event_type) for c in changes] == [
        ("create", t.name) for t in event_types()
    ]
    assert [item.name for item in svix.list_all()] == [t.name for t in event_types()]
    stored = svix.types["payment.succeeded"]
    assert stored.group_name == "payment" and stored.schemas is not None
    assert stored.schemas["1"]["examples"][0]["type"] == "payment.succeeded"
    svix.calls.clear()
    assert sync(svix, dry_run=False, prune=True) == []
    assert svix.calls == []


def test_a_dry_run_says_what_would_change_and_changes_nothing() -> None:
    svix = InMemoryEventTypes()
    changes = sync(svix, dry_run=True, prune=True)
    assert len(changes) == len(event_types())
    assert svix.types == {} and svix.calls == []


def test_a_changed_description_schema_or_group_is_updated_and_nothing_else() -> None:
    types = event_types()
    user = catalog.catalog().types["user.created"]
    stale_schemas = {"1": {"type": "object"}}
    svix = InMemoryEventTypes(
        [registered(t) for t in types if t.name != "user.created"]
        + [registered(user, description="old", schemas=stale_schemas, group_name=None)]
    )
    changes = sync(svix, dry_run=False, prune=False)
    assert [(c.action, c.event_type, c.fields) for c in changes] == [
        ("update", "user.created", ("description", "schemas", "groupName"))
    ]
    assert svix.calls == [("update", "user.created")]
    assert changes[0].body is not None and "name" not in changes[0].body
    assert sync(svix, dry_run=False, prune=False) == []


def test_numbers_stored_as_integers_are_not_a_change() -> None:
    tax_rate = catalog.catalog().types["taxRate.updated"]
    as_stored = copy.deepcopy(svix_event_type(tax_rate)["schemas"])
    example = as_stored["1"]["examples"][0]["data"]
    assert isinstance(example["percentage"], float)
    example["percentage"] = int(example["percentage"])  # how a JSON store may give 10.0 back
    assert plan_sync([tax_rate], [registered(tax_rate, schemas=as_stored)], prune=False) == []


def test_a_type_that_comes_back_is_unarchived_with_the_catalogs_fields() -> None:
    types = event_types()
    addon = catalog.catalog().types["addon.created"]
    svix = InMemoryEventTypes(
        [registered(t) for t in types if t.name != "addon.created"]
        + [registered(addon, archived=True, description="old")]
    )
    changes = sync(svix, dry_run=False, prune=True)
    assert [(c.action, c.event_type, c.fields) for c in changes] == [
        ("unarchive", "addon.created", ("description",))
    ]
    assert svix.calls == [("create", "addon.created")]  # Svix unarchives through create
    assert not svix.types["addon.created"].archived
    assert svix.types["addon.created"].description == addon.description
    assert sync(svix, dry_run=False, prune=True) == []


def test_a_type_that_left_the_catalog_is_archived_only_with_prune() -> None:
    gone = RegisteredEventType(name="invoice.paid", description="An invoice was paid.")
    svix = InMemoryEventTypes([registered(t) for t in event_types()] + [gone])
    assert sync(svix, dry_run=False, prune=False) == []
    assert not svix.types["invoice.paid"].archived
    changes = sync(svix, dry_run=False, prune=True)
    assert [(c.action, c.event_type) for c in changes] == [("archive", "invoice.paid")]
    assert svix.types["invoice.paid"].archived
    assert sync(svix, dry_run=False, prune=True) == []  # already archived: nothing to do


def test_hand_set_deprecation_and_feature_flags_survive_an_update() -> None:
    tax = catalog.catalog().types["tax.created"]
    svix = InMemoryEventTypes(
        [registered(tax, description="old", deprecated=True, feature_flags=("beta",))]
    )
    sync(svix, dry_run=False, prune=False, types=[tax])
    assert svix.types["tax.created"].deprecated is True
    assert svix.types["tax.created"].feature_flags == ("beta",)
    assert sync(svix, dry_run=False, prune=False, types=[tax]) == []


def test_a_payload_schema_fixes_the_type_and_keeps_the_envelope() -> None:
    heartbeat = catalog.catalog().types["notifier.heartbeat"]
    schema = payload_schema(heartbeat)
    assert schema["properties"]["type"]["const"] == "notifier.heartbeat"
    assert schema["properties"]["data"]["required"] == ["published_at"]
    envelope = json.loads((ROOT / "schemas" / "event.schema.json").read_text())
    assert schema["required"] == envelope["required"]


def test_a_heartbeat_as_on_event_makes_it_is_on_the_catalog() -> None:
    for publish_time in ("2026-11-30T10:00:00Z", "2026-11-30T10:00:00.123456789Z"):
        assert drift("notifier.heartbeat", {"published_at": publish_time}) is None
    assert drift("notifier.heartbeat", {"published_at": "now"}) is not None


# --- the compiled fast path agrees with the reference validator ---------------------------------


def variants(data: dict[str, Any]) -> list[Any]:
    """The data, then each field removed, nulled, or given a number or a malformed string."""
    found: list[Any] = [data]
    for key in data:
        found.append({k: v for k, v in data.items() if k != key})
        found.extend({**data, key: odd} for odd in (None, 12345, "not-a-date@@"))
    return found


def test_drift_is_the_same_with_or_without_the_compiled_validators() -> None:
    fast = catalog.load(accelerate=True)
    reference = catalog.load(accelerate=False)
    drifted = 0
    for event_type in sorted({event["type"] for event in SAMPLES}):
        for data in variants(sample_of(event_type)["data"]):
            expected = reference.drift(event_type, data)
            assert fast.drift(event_type, data) == expected, (event_type, expected)
            drifted += expected is not None
    assert drifted > 300  # the variants do drift: the comparison is not between two Nones


def test_the_development_environment_runs_the_compiled_validators() -> None:
    assert catalog.accelerated()  # jsonschema-rs is in requirements.txt
