"""devstack against the real emulators: lifecycle, Firestore reset, and the Pub/Sub push relay.

The relay is what integration and load tests use to drive the function, so its wire format is
checked against what functions-framework actually parses, and its retry timing against the
configured backoff.
"""

from __future__ import annotations

import base64
import json
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cloudevents.http import from_http

from devstack import emulators, push_relay
from devstack.push_relay import CE_TYPE, PushRelay, ensure_topic_and_subscription, publish
from tests.support import eventually, unique_suffix


class PushTarget:
    """A stdlib HTTP server recording every POST; ``respond(record) -> status`` decides."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.respond: Callable[[dict], int] = lambda record: 200
        self._cv = threading.Condition()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                record = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "json": json.loads(body),
                    "time": time.time(),
                }
                status = target.respond(record)
                record["status"] = status
                with target._cv:
                    target.requests.append(record)
                    target._cv.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float) -> list[dict]:
        with self._cv:
            self._cv.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target() -> Iterator[PushTarget]:
    server = PushTarget()
    yield server
    server.close()


@pytest.fixture
def names() -> tuple[str, str]:
    suffix = unique_suffix()
    return f"events-{suffix}", f"relay-{suffix}"


# --- emulators ----------------------------------------------------------------------------------


def test_prerequisites_pass_here_and_explain_what_is_missing(monkeypatch, tmp_path):
    emulators.check_prerequisites()
    monkeypatch.setattr(emulators, "_prerequisites_ok", False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(emulators.PrerequisiteError) as error:
        emulators.check_prerequisites()
    assert "gcloud is not on PATH" in str(error.value)
    assert "java is not on PATH" in str(error.value)


# The emulators are shared with the rest of the session: reset tests use projects of their own.


def test_firestore_write_read_and_reset(firestore_emulator):
    from google.cloud import firestore

    assert firestore_emulator.env == {"FIRESTORE_EMULATOR_HOST": firestore_emulator.host_port}
    project = "devstack-reset"
    client = firestore.Client(project=project)
    ref = client.collection("devstack").document("probe")
    ref.set({"n": 1, "s": "x"})
    client.collection("devstack").document("sub").collection("c").document("d").set({"n": 2})
    assert ref.get().to_dict() == {"n": 1, "s": "x"}

    firestore_emulator.reset(project)

    assert not ref.get().exists
    assert list(client.collection("devstack").stream()) == []
    assert list(client.collection_group("c").stream()) == []


def test_pubsub_reset_deletes_topics_and_subscriptions(pubsub_emulator, names):
    topic, sub = names
    host, project = pubsub_emulator.host_port, "devstack-reset"
    assert pubsub_emulator.env == {
        "PUBSUB_EMULATOR_HOST": host,
        "PUBSUB_PROJECT_ID": pubsub_emulator.project,
    }
    ensure_topic_and_subscription(project, topic, sub, emulator_host=host)
    ensure_topic_and_subscription(project, topic, sub, emulator_host=host)  # idempotent

    pubsub_emulator.reset(project)

    with push_relay.subscriber_client(host) as subscriber:
        assert list(subscriber.list_subscriptions(project=f"projects/{project}")) == []
    publisher = push_relay.publisher_client(host)
    assert list(publisher.list_topics(project=f"projects/{project}")) == []


def test_stop_kills_the_whole_process_group(tmp_path):
    log_path = tmp_path / "firestore.log"
    with emulators.start_firestore("devstack-stop", log_path=log_path) as emulator:
        pgid = emulator.pgid
        assert len(emulator.pids()) >= 2  # the gcloud wrapper and the JVM it starts
        assert emulator.startup_seconds < emulators.READY_TIMEOUT
        host, port = emulator.host_port.split(":")
    assert emulators.group_pids(pgid) == []
    assert emulator.process.returncode is not None
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=1):
        pass
    assert "API endpoint" in log_path.read_text()
    emulator.stop()  # idempotent


def test_failed_start_raises_with_the_log_tail(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(emulators.EmulatorError) as error:
            emulators.start_pubsub("devstack-busy", port=port, log_path=tmp_path / "p.log")
    assert "last lines" in str(error.value)
    assert str(port) in str(error.value)


# --- relay --------------------------------------------------------------------------------------


def test_relay_retries_with_backoff_and_delivers_cloud_events(pubsub_emulator, target, names):
    project, host = pubsub_emulator.project, pubsub_emulator.host_port
    topic, sub = names
    ensure_topic_and_subscription(project, topic, sub, emulator_host=host)
    failures: dict[str, int] = {}

    def respond(record: dict) -> int:
        message = record["json"]["message"]
        if message.get("attributes", {}).get("fail") == "twice":
            seen = failures[message["messageId"]] = failures.get(message["messageId"], 0) + 1
            return 500 if seen <= 2 else 200
        return 204

    target.respond = respond
    ids = publish(project, topic, [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'], emulator_host=host)
    (failing,) = publish(project, topic, [b"boom"], {"fail": "twice"}, emulator_host=host)
    (no_data,) = publish(project, topic, [b""], {"only": "attributes"}, emulator_host=host)
    ids += [failing, no_data]

    relay = PushRelay(
        project,
        sub,
        target.url + "/",
        concurrency=4,
        min_backoff=0.2,
        max_backoff=1.0,
        emulator_host=host,
    )
    with relay:
        assert relay.wait_idle(timeout=30, expected_acks=5)
        assert relay.wait_idle(timeout=5)  # and a later pull found nothing left
        stats = relay.stats

    assert (stats["acks"], stats["nacks"], stats["deliveries"]) == (5, 2, 7)
    assert stats["outstanding"] == 0 and stats["duplicates"] == 0
    assert set(stats["per_message"]) == set(ids)
    retried = stats["per_message"][failing]
    assert retried["statuses"] == [500, 500, 200] and retried["acked"]
    gaps = [b - a for a, b in zip(retried["times"], retried["times"][1:], strict=False)]
    assert gaps[0] >= relay.backoff_for(1) == 0.2
    assert gaps[1] >= relay.backoff_for(2) == 0.4
    for message_id in set(ids) - {failing}:
        assert stats["per_message"][message_id]["statuses"] == [204]

    by_id: dict[str, list[dict]] = {}
    for record in target.requests:
        by_id.setdefault(record["headers"]["ce-id"], []).append(record)
    assert {k: len(v) for k, v in by_id.items()} == {i: 3 if i == failing else 1 for i in ids}
    subscription = f"projects/{project}/subscriptions/{sub}"
    for message_id, records in by_id.items():
        for attempt, record in enumerate(records, start=1):
            headers, body = record["headers"], record["json"]
            message = body["message"]
            assert headers["ce-specversion"] == "1.0"
            assert headers["ce-type"] == CE_TYPE
            assert (
                headers["ce-source"] == f"//pubsub.googleapis.com/projects/{project}/topics/{topic}"
            )
            assert headers["ce-time"] == message["publishTime"]
            assert headers["content-type"] == "application/json"
            assert set(body) == {"message", "subscription"}
            assert body["subscription"] == subscription
            assert message["messageId"] == message["message_id"] == message_id
            assert message["publishTime"].endswith("Z")
            assert message["deliveryAttempt"] == attempt
            # What functions-framework does with the request before calling the function:
            event = from_http(headers, record["body"])
            assert event["id"] == message_id and event["type"] == CE_TYPE
            assert event.data == body
    assert "data" not in by_id[no_data][0]["json"]["message"]
    assert by_id[no_data][0]["json"]["message"]["attributes"] == {"only": "attributes"}
    assert base64.b64decode(by_id[failing][0]["json"]["message"]["data"]) == b"boom"
    assert by_id[failing][0]["json"]["message"]["attributes"] == {"fail": "twice"}


def test_relay_backs_off_exponentially_and_stops_cleanly(pubsub_emulator, target, names):
    project, host = pubsub_emulator.project, pubsub_emulator.host_port
    topic, sub = names
    ensure_topic_and_subscription(project, topic, sub, emulator_host=host)
    target.respond = lambda record: 503
    publish(project, topic, [b"a", b"b"], emulator_host=host)
    relay = PushRelay(
        project, sub, target.url, min_backoff=0.1, max_backoff=0.3, emulator_host=host
    )
    with relay:
        assert eventually(lambda: relay.stats["deliveries"] >= 10, timeout=10, every=0.05)
        assert not relay.wait_idle(timeout=0.2)
    stats = relay.stats
    assert stats["acks"] == 0 and stats["nacks"] >= 10
    for entry in stats["per_message"].values():
        gaps = [b - a for a, b in zip(entry["times"], entry["times"][1:], strict=False)]
        expected = [relay.backoff_for(n) for n in range(1, len(gaps) + 1)]
        assert expected[:3] == [0.1, 0.2, 0.3]
        assert all(gap >= want for gap, want in zip(gaps, expected, strict=True))

    # stop() nacked what it held, so a new relay gets both messages again at once.
    target.respond = lambda record: 200
    with PushRelay(project, sub, target.url, emulator_host=host) as again:
        assert again.wait_idle(timeout=10, expected_acks=2)


def test_relay_into_functions_framework(pubsub_emulator, names, tmp_path, monkeypatch):
    import functions_framework
    from werkzeug.serving import make_server

    sink = tmp_path / "events.jsonl"
    source = tmp_path / "main.py"
    source.write_text(
        textwrap.dedent(
            """
            import json, os
            import functions_framework

            @functions_framework.cloud_event
            def handle(event):
                line = {"attrs": dict(event.get_attributes()), "data": event.data}
                with open(os.environ["DEVSTACK_TEST_SINK"], "a") as sink:
                    sink.write(json.dumps(line) + "\\n")
            """
        )
    )
    monkeypatch.setenv("DEVSTACK_TEST_SINK", str(sink))
    app = functions_framework.create_app("handle", str(source), "cloudevent")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    project, host = pubsub_emulator.project, pubsub_emulator.host_port
    topic, sub = names
    try:
        ensure_topic_and_subscription(project, topic, sub, emulator_host=host)
        ids = publish(project, topic, [b"hello", b""], {"k": "v"}, emulator_host=host)
        url = f"http://127.0.0.1:{server.server_port}/"
        with PushRelay(project, sub, url, emulator_host=host, delivery_attempt=False) as relay:
            assert relay.wait_idle(timeout=20, expected_acks=2)
    finally:
        server.shutdown()

    events = {
        json.loads(line)["attrs"]["id"]: json.loads(line) for line in sink.read_text().splitlines()
    }
    assert set(events) == set(ids)
    hello, empty = events[ids[0]], events[ids[1]]
    assert hello["attrs"]["source"] == f"//pubsub.googleapis.com/projects/{project}/topics/{topic}"
    assert hello["attrs"]["type"] == CE_TYPE
    assert hello["attrs"]["time"] == hello["data"]["message"]["publishTime"]
    assert hello["data"] == {
        "message": {
            "data": base64.b64encode(b"hello").decode(),
            "attributes": {"k": "v"},
            "messageId": ids[0],
            "message_id": ids[0],
            "publishTime": hello["data"]["message"]["publishTime"],
            "publish_time": hello["data"]["message"]["publishTime"],
        },
        "subscription": f"projects/{project}/subscriptions/{sub}",
    }
    assert "data" not in empty["data"]["message"]


def test_emulator_push_subscription_posts_the_raw_envelope(pubsub_emulator, target, names):
    project, host = pubsub_emulator.project, pubsub_emulator.host_port
    topic, sub = names
    ensure_topic_and_subscription(
        project,
        topic,
        sub,
        push_endpoint=target.url + "/push",
        min_backoff=1,
        max_backoff=2,
        emulator_host=host,
    )
    ids = publish(project, topic, [b"pushed", b""], {"a": "1"}, emulator_host=host)
    records = target.wait_for(2, timeout=20)
    ensure_topic_and_subscription(project, topic, sub, emulator_host=host)  # back to pull: stop
    with push_relay.subscriber_client(host) as subscriber:
        config = subscriber.get_subscription(subscription=f"projects/{project}/subscriptions/{sub}")
    assert config.push_config.push_endpoint == ""
    assert config.ack_deadline_seconds == 60

    assert {r["json"]["message"]["messageId"] for r in records} == set(ids)
    for record in records:
        body = record["json"]
        assert record["path"] == "/push"
        assert not any(key.startswith("ce-") for key in record["headers"])
        assert set(body) == {"message", "subscription"}
        assert body["subscription"] == f"projects/{project}/subscriptions/{sub}"
        assert body["message"]["attributes"] == {"a": "1"}
    pushed = next(r for r in records if r["json"]["message"]["messageId"] == ids[0])
    assert base64.b64decode(pushed["json"]["message"]["data"]) == b"pushed"
    empty = next(r for r in records if r["json"]["message"]["messageId"] == ids[1])
    # Emulator quirk: it sends "data": "" where real Pub/Sub leaves the key out.
    assert empty["json"]["message"].get("data", "") == ""
