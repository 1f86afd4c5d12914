"""The Scheduler's heartbeat message through on_event, in-process with fakes: it becomes the
heartbeat event and then goes the way every event goes (claim, one Svix message)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

from devstack.cloudevents import pubsub_request
from notifier import bootstrap
from notifier.config import ConfigError, Settings
from notifier.domain.errors import SvixUnavailable
from notifier.handlers.dependencies import Dependencies
from tests import fakes

MAIN = str(Path(__file__).resolve().parents[2] / "main.py")
# What the Cloud Scheduler job publishes (deploy.sh): fixed data and attribute on every run.
SCHEDULER_DATA = b'{"object":"heartbeat"}'
SCHEDULER_ATTRIBUTES = {"notifier": "heartbeat"}


def serve(deps: Dependencies) -> Iterator[Any]:
    with bootstrap.provided(deps):
        yield create_app(target="on_event", source=MAIN, signature_type="cloudevent").test_client()


@pytest.fixture
def deps() -> Dependencies:
    return fakes.dependencies()


@pytest.fixture
def on_event(deps) -> Iterator[Any]:
    yield from serve(deps)


def publish(client: Any, message_id: str, data: bytes | None = SCHEDULER_DATA, **kw: Any) -> Any:
    headers, body = pubsub_request(data, message_id, attributes=SCHEDULER_ATTRIBUTES, **kw)
    return client.post("/", headers=headers, data=body), json.loads(body)["message"]


def test_each_scheduler_publish_becomes_its_own_heartbeat_sent_once(on_event, deps):
    first, message = publish(on_event, "8123456789012345")
    second, _ = publish(on_event, "8123456789012346")
    assert (first.status_code, second.status_code) == (200, 200)
    assert list(deps.sender.messages) == ["hb-8123456789012345", "hb-8123456789012346"]
    payload = deps.sender.messages["hb-8123456789012345"]["payload"]
    assert payload["type"] == "notifier.heartbeat"
    assert payload["project"] == "notifier-heartbeat"
    assert payload["time"] == message["publishTime"]
    assert payload["data"] == {"published_at": message["publishTime"]}
    assert deps.sender.apps == ["notifier-heartbeat"]  # its application, made on first use
    record = deps.store.notifications["hb-8123456789012345"]
    assert (record["status"], record["event_type"]) == ("sent", "notifier.heartbeat")
    assert deps.store.rejected == {}


def test_a_redelivered_heartbeat_is_not_sent_twice(on_event, deps):
    publish(on_event, "777")
    again, _ = publish(on_event, "777", delivery_attempt=2)
    assert again.status_code == 200
    assert list(deps.sender.messages) == ["hb-777"]


def test_an_attribute_only_heartbeat_request_is_a_heartbeat_too(on_event, deps):
    response, _ = publish(on_event, "778", data=None)
    assert response.status_code == 200
    assert list(deps.sender.messages) == ["hb-778"]


def test_with_svix_down_the_heartbeat_is_redelivered_like_any_event(on_event, deps):
    deps.sender.script.append(SvixUnavailable("down", status=503))
    down, _ = publish(on_event, "779")
    assert down.status_code == 503
    assert deps.store.notifications["hb-779"]["status"] == "pending"
    assert deps.sender.messages == {}


def test_the_heartbeat_project_comes_from_the_settings():
    deps = fakes.dependencies(heartbeat_project="hb-staging")
    for client in serve(deps):
        publish(client, "780")
    assert deps.sender.messages["hb-780"]["payload"]["project"] == "hb-staging"
    assert deps.sender.apps == ["hb-staging"]


BASE = {"GOOGLE_CLOUD_PROJECT": "demo", "SVIX_API_KEY": "testsk_x"}


def test_the_heartbeat_project_setting_defaults_and_is_read_from_the_environment():
    assert Settings.from_env(BASE).heartbeat_project == "notifier-heartbeat"
    env = {**BASE, "NOTIFIER_HEARTBEAT_PROJECT": " hb-prod "}
    assert Settings.from_env(env).heartbeat_project == "hb-prod"


@pytest.mark.parametrize("bad", ["../x", "a b", "app_heartbeat", "-x", "x" * 129])
def test_a_heartbeat_project_that_is_no_safe_id_is_a_misconfiguration(bad):
    with pytest.raises(ConfigError, match="NOTIFIER_HEARTBEAT_PROJECT"):
        Settings.from_env({**BASE, "NOTIFIER_HEARTBEAT_PROJECT": bad})
