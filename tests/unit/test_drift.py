"""Drift on the hot path: an event off the catalog is sent all the same, then warned about once per
type and cause (schema paths, never values), and marked on its outcome line for the metric.

The entry points run in-process (functions-framework's app on main.py) on in-memory fakes, with a
catalog loaded from the repository's schemas; the check itself is faked where it must misbehave.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from devstack.cloudevents import pubsub_request
from notifier import bootstrap, logs
from notifier.domain import catalog, errors
from notifier.domain.catalog import Drift
from notifier.domain.decoding import event_from
from notifier.domain.errors import Permanent
from notifier.domain.events import Event
from notifier.handlers.dependencies import Dependencies
from notifier.usecases.drift_watch import DriftWatch
from notifier.usecases.replay import Criteria, replay, select
from tests import fakes

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "main.py")
SAMPLES = ROOT / "samples" / "platform-events"


class Capture(logging.Handler):
    """The notifier's JSON lines, as Cloud Logging would get them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def warnings(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["message"].startswith("event off catalog")]

    def outcomes(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if "outcome" in line]


@pytest.fixture
def captured() -> Iterator[Capture]:
    root = logging.getLogger("notifier")
    saved = (root.handlers[:], root.level, root.propagate)
    handler = Capture()
    root.handlers, root.propagate = [handler], False
    root.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.handlers, root.propagate = saved[0], saved[2]
        root.setLevel(saved[1])


def sample(name: str, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    document.update(overrides)
    return document


def subscription(event_id: str, **overrides: Any) -> dict[str, Any]:
    return sample("event-02-subscription.renewed.json", id=event_id, **overrides)


def drifted(event_id: str) -> dict[str, Any]:
    """A subscription.renewed whose data lost a required field and holds a wrong type."""
    document = subscription(event_id)
    data = document["data"]
    del data["status"]
    data["activatedAt"] = (
        8642097531  # a number where the schema says a date-time (no log field has it by chance)
    )
    return document


def an_event(document: dict[str, Any]) -> Event:
    return event_from(json.loads(json.dumps(document)), max_bytes=2**21)


@pytest.fixture
def deps() -> Iterator[Dependencies]:
    """The fakes as bootstrap builds them: the drift check on the repository's catalog."""
    built = fakes.dependencies()
    with bootstrap.provided(built):
        yield built


def post_pubsub(event: dict[str, Any], message_id: str) -> int:
    app = create_app(target="on_event", source=MAIN, signature_type="cloudevent").test_client()
    headers, body = pubsub_request(json.dumps(event).encode(), message_id)
    return int(app.post("/", headers=headers, data=body).status_code)


def post_http(event: dict[str, Any]) -> int:
    app = create_app(target="notifications", source=MAIN, signature_type="http").test_client()
    return int(app.post("/", json=event).status_code)


# -- through the entry points ---------------------------------------------------------------------


def test_an_unknown_type_is_sent_and_warned_about_once(deps, captured):
    first = subscription("evt_unknown1", type="subscription.paused")
    second = subscription("evt_unknown2", type="subscription.paused")
    assert post_pubsub(first, "m1") == 200
    assert post_http(second) == 201
    assert sorted(deps.sender.messages) == ["evt_unknown1", "evt_unknown2"]  # both sent
    [warning] = captured.warnings()
    assert warning["severity"] == "WARNING"
    assert warning["message"] == "event off catalog: unknown_type"
    assert (warning["event_type"], warning["catalog_drift"]) == (
        "subscription.paused",
        "unknown_type",
    )
    assert warning["schema_paths"] == []
    assert "outcome" not in warning  # the metric counts outcome lines: one per event
    lines = captured.outcomes()
    assert [(o["outcome"], o.get("catalog_drift")) for o in lines] == [
        ("sent", "unknown_type"),
        ("sent", "unknown_type"),
    ]


def test_drifted_data_is_sent_and_warned_about_with_schema_paths_never_values(deps, captured):
    assert post_pubsub(drifted("evt_drift1"), "m1") == 200
    assert post_pubsub(drifted("evt_drift2"), "m2") == 200
    assert sorted(deps.sender.messages) == ["evt_drift1", "evt_drift2"]
    [warning] = captured.warnings()
    assert warning["message"] == "event off catalog: schema_drift"
    assert (warning["event_type"], warning["catalog_drift"]) == (
        "subscription.renewed",
        "schema_drift",
    )
    paths = warning["schema_paths"]
    assert paths and all(path.startswith("/") for path in paths)
    assert any(path.startswith("/required/") for path in paths)
    assert "/properties/activatedAt/type" in paths
    text = json.dumps(captured.lines)
    assert "8642097531" not in text  # the drifted value
    data = drifted("x")["data"]
    for personal in (data["phoneNumber"], data["id"], data["user"]["email"]):  # nor other values
        assert str(personal) not in text
    assert [o.get("catalog_drift") for o in captured.outcomes()] == ["schema_drift"] * 2


def test_an_unknown_type_and_drifted_data_make_one_warning_each(deps, captured):
    assert post_pubsub(subscription("evt_a", type="invoice.voided"), "m1") == 200
    assert post_pubsub(drifted("evt_b"), "m2") == 200
    assert post_pubsub(subscription("evt_c", type="invoice.voided"), "m3") == 200
    assert post_pubsub(drifted("evt_d"), "m4") == 200
    assert len(deps.sender.messages) == 4
    assert sorted((w["event_type"], w["catalog_drift"]) for w in captured.warnings()) == [
        ("invoice.voided", "unknown_type"),
        ("subscription.renewed", "schema_drift"),
    ]


def test_a_catalogued_event_is_not_marked(deps, captured):
    for index, path in enumerate(sorted(SAMPLES.glob("event-*.json"))):
        assert post_pubsub(json.loads(path.read_text()), f"m{index}") == 200
    assert len(deps.sender.messages) == 50
    assert captured.warnings() == []
    assert all("catalog_drift" not in line for line in captured.lines)


def test_a_duplicate_is_not_counted_again(deps, captured):
    event = subscription("evt_dup", type="subscription.paused")
    assert post_pubsub(event, "m1") == 200
    assert post_pubsub(event, "m2") == 200  # Pub/Sub's copy: nothing sent
    assert [(o["outcome"], o.get("catalog_drift")) for o in captured.outcomes()] == [
        ("sent", "unknown_type"),
        ("duplicate", None),
    ]


def test_an_event_svix_refuses_still_counts_as_drift(deps, captured):
    deps.sender.script.append(Permanent("archived event type", status=422))
    assert post_pubsub(subscription("evt_refused", type="subscription.paused"), "m1") == 200
    [outcome] = captured.outcomes()
    assert (outcome["outcome"], outcome["catalog_drift"]) == ("failed", "unknown_type")
    assert len(captured.warnings()) == 1


def drift_metric_counts(lines: list[dict[str, Any]]) -> int:
    """The lines deploy.sh's drift metric counts (monitoring/metrics/catalog_drift.json): its
    ``jsonPayload.FIELD:*`` clauses (present)."""
    template = json.loads((ROOT / "monitoring" / "metrics" / "catalog_drift.json").read_text())
    fields = re.findall(r"jsonPayload\.(\w+):\*", template["filter"])
    assert "catalog_drift" in fields
    return sum(all(field in line for field in fields) for line in lines)


def test_the_metric_counts_each_drifted_event_once(deps, captured):
    for index in range(3):
        event = subscription(f"evt_m{index}", type="subscription.paused")
        assert post_pubsub(event, f"m{index}") == 200
    assert post_pubsub(drifted("evt_m3"), "m3") == 200
    assert post_pubsub(subscription("evt_m0", type="subscription.paused"), "m9") == 200  # a copy
    assert post_pubsub(subscription("evt_ok"), "m10") == 200
    assert len(captured.warnings()) == 2
    assert drift_metric_counts(captured.lines) == 4


# -- never fails, never delays -------------------------------------------------------------------


class Exploding:
    """A catalog whose check raises with a value of the event in its message."""

    calls = 0

    def drift(self, event_type: str, data: Any) -> Drift | None:
        self.calls += 1
        raise ValueError(f"cannot check {data!r}")


def test_a_failing_check_never_fails_the_delivery_and_is_logged_once(captured):
    checker = Exploding()
    deps = fakes.dependencies(load_catalog=lambda: checker)
    with bootstrap.provided(deps):
        assert post_pubsub(drifted("evt_x1"), "m1") == 200
        assert post_http(drifted("evt_x2")) == 201
    assert sorted(deps.sender.messages) == ["evt_x1", "evt_x2"]
    assert checker.calls == 2
    failures = [line for line in captured.lines if line["message"] == "catalog drift check failed"]
    assert [(f["severity"], f["error_type"]) for f in failures] == [("WARNING", "ValueError")]
    assert "cannot check" not in json.dumps(captured.lines)  # the message may quote values
    assert all("catalog_drift" not in line for line in captured.outcomes())


def test_a_catalog_that_cannot_load_is_reported_once_and_events_flow(captured):
    loads = []

    def broken() -> Any:
        loads.append(1)
        raise errors.CatalogError("schemas/events/user/user.created.json: not readable JSON")

    deps = fakes.dependencies(load_catalog=broken)
    with bootstrap.provided(deps):
        for index in range(3):
            assert post_pubsub(subscription(f"evt_l{index}"), f"m{index}") == 200
    assert len(deps.sender.messages) == 3 and loads == [1]
    [error] = [line for line in captured.lines if line["message"].startswith("catalog not loaded")]
    assert (error["severity"], error["error_type"]) == ("ERROR", "CatalogError")


def test_the_catalog_is_loaded_on_the_first_check_not_when_built():
    loads = []

    def load() -> Any:
        loads.append(1)
        return catalog.runtime()

    watch = DriftWatch(load)
    assert loads == []
    watch.observe(an_event(subscription("evt_lazy1")))
    watch.observe(an_event(subscription("evt_lazy2")))
    assert loads == [1]


def test_one_warning_per_type_and_cause_across_threads(captured):
    watch = DriftWatch(catalog.runtime)
    events = [an_event(drifted(f"evt_t{index}")) for index in range(64)]
    barrier = threading.Barrier(16)
    causes: list[str | None] = []

    def observe(chunk: list[Event]) -> None:
        barrier.wait()
        causes.extend(watch.observe(event) for event in chunk)

    threads = [threading.Thread(target=observe, args=(events[i::16],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert causes == ["schema_drift"] * 64
    assert len(captured.warnings()) == 1


def test_each_instance_warns_for_itself():
    """Once per type and cause per instance: a new instance (a new watch) warns again."""
    event = an_event(subscription("evt_i", type="subscription.paused"))
    seen: list[str] = []

    class Log(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger = logging.getLogger("notifier.test_drift.instances")
    logger.addHandler(Log())
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for _ in range(2):
        watch = DriftWatch(catalog.runtime, logger=logger)
        watch.observe(event)
        watch.observe(event)
    assert seen == ["event off catalog: unknown_type"] * 2


# -- replay goes the same way --------------------------------------------------------------------


def test_a_replayed_event_off_the_catalog_is_checked_too(captured):
    store = fakes.MemoryStore()
    deps = fakes.dependencies(store=store)
    deps.sender.script.append(Permanent("refused", status=422))
    event = subscription("evt_replay", type="subscription.paused")
    outcome = deps.notifier.deliver(an_event(event))
    assert (outcome.kind.value, outcome.catalog_drift) == ("failed", "unknown_type")
    records = select(store, Criteria(), now=store.clock())
    [result] = replay(records, store=store, notifier=deps.notifier, max_bytes=2**21, workers=1)
    assert result.outcome == "sent"
    assert list(deps.sender.messages) == ["evt_replay"]
    assert len(captured.warnings()) == 1  # once per type and cause, replay included


def test_importing_main_loads_no_compiled_validator():
    """Cold start: jsonschema-rs and the catalog are loaded by the first check, not at import."""
    code = (
        "import json, sys\nimport main\nfrom notifier.domain import catalog\n"
        "print(json.dumps(['jsonschema_rs' in sys.modules, catalog.runtime.cache_info().currsize]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.splitlines()[-1]) == [False, 0]
