"""The heartbeat end to end: the Scheduler's message on the Pub/Sub emulator, pushed as Eventarc
does to on_event (functions-framework), one Svix message in the twin, a signed delivery to the
canary (functions-framework), its arrival in the Firestore emulator; and what must not arrive."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from devstack.emulators import free_port
from devstack.function_server import FunctionServer
from devstack.push_relay import PushRelay, ensure_topic_and_subscription, publish
from notifier.cli import main
from tests import factories
from tests.conftest import PROJECT, TOKEN
from tests.e2e.conftest import log_lines
from tests.support import eventually, unique_suffix

# What deploy.sh's Cloud Scheduler job publishes, every time the same.
SCHEDULER_DATA = b'{"object":"heartbeat"}'
SCHEDULER_ATTRIBUTES = {"notifier": "heartbeat"}


class Canary:
    def __init__(self, server: FunctionServer, secret: str) -> None:
        self.server, self.secret, self.url = server, secret, server.url

    def lines(self) -> list[dict]:
        return log_lines(self.server.log_path)


@pytest.fixture
def canary(function, firestore_emulator, tmp_path, monkeypatch) -> Iterator[Canary]:
    """``heartbeat setup`` against the twin (as deploy.sh runs it), then the canary served with
    the secret it wrote, as Secret Manager mounts it, and no Svix token."""
    port = free_port()
    secret_file = tmp_path / "canary-secret"
    with monkeypatch.context() as setup_env:
        setup_env.setenv("SVIX_API_KEY", TOKEN)
        setup_env.setenv("SVIX_SERVER_URL", function.env["SVIX_SERVER_URL"])
        argv = ["heartbeat", "setup", f"--canary-url=http://127.0.0.1:{port}/",
                f"--secret-file={secret_file}"]  # fmt: skip
        assert main(argv) == 0
    env = {
        **firestore_emulator.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "NOTIFIER_CANARY_SECRET": secret_file.read_text(),  # with its newline
    }
    with FunctionServer(
        "canary", env, tmp_path / "canary.log", signature_type="http", port=port
    ) as server:
        yield Canary(server, secret_file.read_text().strip())


@pytest.fixture
def relay(pubsub_emulator, function) -> Iterator[tuple[str, PushRelay]]:
    """A topic whose messages reach on_event as Eventarc pushes them (binary CloudEvents)."""
    suffix = unique_suffix()
    topic, subscription = f"events-{suffix}", f"notifier-{suffix}"
    ensure_topic_and_subscription(PROJECT, topic, subscription)
    with PushRelay(PROJECT, subscription, function.url, min_backoff=0.2, max_backoff=1.0) as push:
        yield topic, push


def heartbeats(db) -> dict[str, dict]:
    return {d.id: d.to_dict() for d in db.collection("heartbeats").stream()}


def status_json() -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["status", "--json"]) == 0
    return json.loads(out.getvalue())


def test_scheduled_heartbeats_arrive_at_the_canary_verified_with_their_latency(
    canary, relay, db, svix
):
    topic, _ = relay
    ids = [publish(PROJECT, topic, [SCHEDULER_DATA], SCHEDULER_ATTRIBUTES)[0] for _ in range(2)]
    event_ids = {f"hb-{message_id}" for message_id in ids}  # one per publish, same payload
    assert eventually(lambda: set(heartbeats(db)) == event_ids, timeout=45)

    for event_id, kept in heartbeats(db).items():
        assert kept["event_id"] == event_id
        assert kept["published_at"] <= kept["arrived_at"]
        measured = (kept["arrived_at"] - kept["published_at"]).total_seconds() * 1000
        assert kept["latency_ms"] == pytest.approx(measured, abs=1)
        assert kept["expires_at"] > kept["arrived_at"] + timedelta(days=29)
    arrived = [line for line in canary.lines() if line["message"] == "heartbeat arrived"]
    assert sorted(line["event_id"] for line in arrived) == sorted(event_ids)
    assert all(isinstance(line["heartbeat_latency_ms"], float) for line in arrived)
    # One Svix message each, in the heartbeat application, delivered to the canary with a 200.
    messages = [m for m in svix.messages() if m["eventId"] in event_ids]
    assert len(messages) == 2
    assert svix.wait_for_deliveries(10)
    delivered = [a for a in svix.attempts() if a["event_id"] in event_ids]
    assert sorted(a["status_code"] for a in delivered) == [200, 200]
    records = [
        d.to_dict()
        for d in db.collection("notifications").stream()
        if (d.to_dict() or {}).get("event_id") in event_ids
    ]
    assert [(r["status"], r["project"]) for r in records] == [("sent", "notifier-heartbeat")] * 2
    beat = status_json()["heartbeat"]
    assert (beat["state"], beat["last_event_id"] in event_ids) == ("healthy", True)
    assert canary.secret not in canary.server.log_path.read_text()


def test_forged_unsigned_and_stale_requests_are_refused_and_recorded_nowhere(canary, db):
    now = datetime.now(UTC)
    body = factories.heartbeat_body("hb-e2e-1", now.isoformat().replace("+00:00", "Z"))
    other_key = "whsec_" + base64.b64encode(b"somebody-else-entirely-012345678").decode()

    def headers(secret: str, at: datetime) -> dict[str, str]:
        return factories.svix_signed(body, secret, msg_id="msg_forged", at=at)

    requests = {
        "bad_signature": headers(other_key, now),  # forged: signed with another key
        "unsigned": {"content-type": "application/json"},
        "stale": headers(canary.secret, now - timedelta(minutes=6)),  # a replay, past tolerance
    }
    with httpx.Client(timeout=30) as client:
        for reason, sent in requests.items():
            answer = client.post(canary.url, content=body, headers=sent)
            assert (reason, answer.status_code) == (reason, 401)
        # The same body, signed now with the canary's key, is accepted: the check can pass.
        assert client.post(canary.url, content=body, headers=headers(canary.secret, now)).is_success
    # Had a refused request been kept, this one would be "already recorded", not "arrived".
    assert list(heartbeats(db)) == ["hb-e2e-1"]
    messages = [line["message"] for line in canary.lines()]
    assert [m for m in messages if m.startswith("canary refused")] == [
        f"canary refused: {reason}" for reason in requests
    ]
    assert messages.count("heartbeat arrived") == 1
    text = Path(canary.server.log_path).read_text()
    assert canary.secret.removeprefix("whsec_") not in text and "published_at" not in text


def test_with_svix_failing_no_heartbeat_arrives_and_status_says_late(canary, relay, db, svix):
    topic, push = relay
    svix.set_faults([{"op": "msg.create", "status": 503}])
    [message_id] = publish(PROJECT, topic, [SCHEDULER_DATA], SCHEDULER_ATTRIBUTES)

    def redelivered() -> bool:
        tried = push.stats["per_message"].get(message_id, {}).get("statuses", [])
        return len(tried) >= 2

    assert eventually(redelivered, timeout=45)
    assert set(push.stats["per_message"][message_id]["statuses"]) == {503}  # Pub/Sub retries
    assert heartbeats(db) == {}
    assert svix.messages() == [] and svix.attempts() == []
    assert not any(line["message"] == "heartbeat arrived" for line in canary.lines())
    beat = status_json()["heartbeat"]
    assert (beat["state"], beat["healthy"], beat["arrived_at"]) == ("late", False, None)
