"""The operator tools (``python -m notifier status | replay | redrive``) on the real emulators.

Records are made by the real pipeline (the function as bootstrap builds it) talking to the Svix
twin, with faults to leave some failed or pending; the CLI then runs in-process, as an operator
would run it, and the tests check what the operator would check: Firestore, Svix, Pub/Sub.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import pubsub_v1
from svix.api import MessageIn, Svix, SvixOptions

from devstack.push_relay import ensure_topic_and_subscription, publish
from notifier import bootstrap
from notifier.adapters.firestore.keys import document_key
from notifier.adapters.firestore.store import FirestoreStore
from notifier.cli import main
from notifier.domain.decoding import event_from
from notifier.domain.errors import Rejected
from notifier.domain.events import Delivery
from notifier.usecases.replay import Criteria, replay, select
from tests import factories
from tests.conftest import PROJECT, TOKEN
from tests.integration.conftest import settings_on
from tests.support import run_cli, run_cli_json, unique_suffix


class Clock:
    def __init__(self):
        self.now = datetime.now(UTC)

    def __call__(self):
        return self.now


class Pipeline:
    """The function as bootstrap builds it, on a store whose clock can make records as old as a
    test needs."""

    def __init__(self, db, svix, lease_seconds=10.0):
        self.db, self.svix, self.clock = db, svix, Clock()
        self.store = FirestoreStore(
            db, lease_seconds=lease_seconds, ttl_days=30, raw_limit=1024, clock=self.clock
        )
        settings = settings_on(
            svix, svix_timeout_seconds=2.0, svix_retry_schedule=(0.01,), retry_budget_seconds=0.0
        )
        self.notifier = bootstrap.build(settings, store=self.store).notifier

    def deliver(self, age=timedelta(0), fault=None, **overrides):
        """An event through the pipeline as if ``age`` ago; ``fault``: Svix's answer, e.g. 503."""
        self.clock.now = datetime.now(UTC) - age
        if fault:
            self.svix.set_faults([{"op": "msg.create", "status": fault}])
        document = factories.event(**overrides)
        event = event_from(json.loads(json.dumps(document)), max_bytes=2**20)
        try:
            self.notifier.deliver(event, Delivery(message_id=str(uuid.uuid4().int)[:12]))
        finally:
            self.svix.clear_faults()
        return document["id"]

    def sent(self, **kw):
        return self.deliver(**kw)

    def failed(self, **kw):
        return self.deliver(fault=422, **kw)

    def pending(self, **kw):
        return self.deliver(fault=503, **kw)


@pytest.fixture
def pipeline(db, svix):
    return Pipeline(db, svix)


def record(db, event_id):
    return db.collection("notifications").document(document_key(event_id)).get().to_dict()


def everything(db):
    """Every document with its update time: what "changed nothing" is checked against."""
    return {
        (c, snap.id): (snap.to_dict(), snap.update_time)
        for c in ("notifications", "applications", "rejected")
        for snap in db.collection(c).stream()
    }


def assert_nothing_private(*outputs):
    for text in outputs:
        assert TOKEN not in text
        assert not any(value in text for value in factories.PII.values())


# -- status ---------------------------------------------------------------------------------------


def test_status_counts_by_status_and_project_with_the_oldest_pending_and_latest_failures(
    env, pipeline, capsys
):
    pipeline.sent(project="acme")
    pipeline.sent(project="acme")
    pipeline.sent(project="globex")
    old_failure = pipeline.failed(project="acme", age=timedelta(hours=3))
    new_failure = pipeline.failed(project="globex", type="payment.succeeded")
    oldest = pipeline.pending(project="acme", age=timedelta(hours=2))
    fresh = pipeline.pending(project="initech")
    pipeline.store.reject(Rejected("not_json"), Delivery(message_id="77"), b"{")
    env.delenv("SVIX_API_KEY")  # status only reads Firestore

    code, report, _ = run_cli_json(capsys, "status")

    assert code == 1  # failed and stuck ones wait for an operator
    assert report["totals"] == {"pending": 2, "sent": 3, "failed": 2, "total": 7}
    assert report["by_project"] == {
        "acme": {"pending": 1, "sent": 2, "failed": 1, "total": 4},
        "globex": {"pending": 0, "sent": 1, "failed": 1, "total": 2},
        "initech": {"pending": 1, "sent": 0, "failed": 0, "total": 1},
    }
    assert (report["rejected"], report["stuck_pending"]) == (1, 1)  # the fresh one is not stuck
    pending = report["oldest_pending"]
    assert (pending["event_id"], pending["project"]) == (oldest, "acme")
    assert 2 * 3600 <= pending["age_seconds"] < 2 * 3600 + 120
    assert pending["last_error"].startswith("svix_unavailable 503")
    failures = report["latest_failures"]
    assert [f["event_id"] for f in failures] == [new_failure, old_failure]  # latest first
    assert (failures[0]["project"], failures[0]["event_type"]) == ("globex", "payment.succeeded")
    assert failures[0]["last_error"].startswith("svix_rejected 422")
    assert fresh != oldest

    code, table, _ = run_cli(capsys, "status", "--failures", "1")
    lines = table.splitlines()
    assert code == 1
    assert lines[0].startswith("heartbeat late: none has arrived")  # status opens with it
    assert lines[2].split() == ["project", "pending", "sent", "failed", "total"]
    assert lines[3].split() == ["acme", "1", "2", "1", "4"]
    assert next(line for line in lines if line.startswith("all")).split() == [
        "all",
        *("2", "3", "2", "7"),
    ]
    assert f"oldest pending: {oldest}" in table
    assert "latest failures (1 of 2):" in table and new_failure in table
    assert old_failure not in table
    assert_nothing_private(table)


def test_status_reads_the_project_the_flags_name(env, pipeline, capsys):
    pipeline.sent()
    env.delenv("GOOGLE_CLOUD_PROJECT")
    code, _, err = run_cli(capsys, "status")
    assert code == 2 and "GOOGLE_CLOUD_PROJECT is not set" in err

    code, report, _ = run_cli_json(capsys, "status", "--gcp-project", PROJECT)
    assert (code, report["gcp_project"], report["totals"]["sent"]) == (0, PROJECT, 1)

    code, report, _ = run_cli_json(capsys, "status", "--gcp-project", "another-project")
    assert code == 0
    assert report["totals"] == {"pending": 0, "sent": 0, "failed": 0, "total": 0}
    assert (report["by_project"], report["oldest_pending"], report["latest_failures"]) == (
        {},
        None,
        [],
    )


# -- replay ---------------------------------------------------------------------------------------


def test_a_failed_event_is_replayed_once_under_a_new_idempotency_key(env, pipeline, svix, capsys):
    event_id = pipeline.failed()
    assert svix.messages() == []

    code, out, err = run_cli_json(capsys, "replay", "--status", "failed")

    assert code == 0
    [result] = out["results"]
    assert (result["event_id"], result["was"], result["outcome"], result["replays"]) == (
        event_id,
        "failed",
        "sent",
        1,
    )
    [message] = svix.messages()
    assert (message["eventId"], message["idempotency_key"]) == (
        event_id,
        f"notifier-{event_id}-replay1",
    )
    keys = [c["idempotency_key"] for c in svix.calls() if c["op"] == "msg.create"]
    assert keys[0] == f"notifier-{event_id}" and set(keys[1:]) == {f"notifier-{event_id}-replay1"}
    saved = record(pipeline.db, event_id)
    assert (saved["status"], saved["replays"], saved["svix_message_id"]) == (
        "sent",
        1,
        message["id"],
    )
    assert "payload" not in saved
    assert_nothing_private(json.dumps(out), err)

    code, again, _ = run_cli_json(capsys, "replay")
    assert (code, again["selected"], len(svix.messages())) == (0, 0, 1)


def test_a_replay_that_fails_again_stays_failed_and_says_so(env, pipeline, svix, capsys):
    event_id = pipeline.failed()
    svix.set_faults([{"op": "msg.create", "status": 400}])
    code, out, _ = run_cli_json(capsys, "replay")
    assert code == 1
    [result] = out["results"]
    assert (result["outcome"], result["svix_status"]) == ("failed", 400)
    assert record(pipeline.db, event_id)["status"] == "failed"
    svix.clear_faults()
    code, out, _ = run_cli_json(capsys, "replay")  # the next replay gets the next key
    assert (code, out["results"][0]["outcome"], out["results"][0]["replays"]) == (0, "sent", 2)
    assert svix.messages()[0]["idempotency_key"] == f"notifier-{event_id}-replay2"


def test_a_dry_run_lists_what_would_be_replayed_and_changes_nothing(env, pipeline, svix, capsys):
    failed = pipeline.failed(age=timedelta(hours=1))
    stuck = pipeline.pending(age=timedelta(minutes=30))
    env.delenv("SVIX_API_KEY")  # a dry run needs no token
    before, calls = everything(pipeline.db), len(svix.calls())

    code, out, _ = run_cli_json(capsys, "replay", "--dry-run")
    code_table, table, _ = run_cli(capsys, "replay", "--dry-run")

    assert (code, code_table) == (0, 0)
    assert out["dry_run"] is True
    assert [(r["event_id"], r["status"]) for r in out["records"]] == [
        (failed, "failed"),
        (stuck, "pending"),
    ]
    assert "would replay 2 notification(s)" in table and failed in table and stuck in table
    assert everything(pipeline.db) == before
    assert len(svix.calls()) == calls


def test_stuck_pending_events_are_taken_but_not_fresh_or_held_ones(env, pipeline, svix, capsys):
    stuck = pipeline.pending(age=timedelta(hours=1))
    fresh = pipeline.pending()  # released just now: Pub/Sub is still retrying it
    holder = Pipeline(pipeline.db, svix, lease_seconds=7200)
    holder.clock.now = datetime.now(UTC) - timedelta(hours=1)
    held_event = event_from(factories.event(), max_bytes=2**20)
    holder.store.claim(held_event, Delivery())  # an old claim whose lease is still live

    code, out, _ = run_cli_json(capsys, "replay", "--status", "pending")

    assert code == 1  # the fresh and the held ones were left, and it says so
    assert sorted(r["event_id"] for r in out["skipped"]) == sorted([fresh, held_event.id])
    assert [(r["event_id"], r["outcome"], r["replays"]) for r in out["results"]] == [
        (stuck, "sent", 0)
    ]
    [message] = svix.messages()
    assert (message["eventId"], message["idempotency_key"]) == (stuck, f"notifier-{stuck}")
    assert record(pipeline.db, fresh)["status"] == "pending"
    assert record(pipeline.db, held_event.id)["status"] == "pending"

    code, out, _ = run_cli_json(capsys, "replay", "--status", "pending", "--older-than", "0s")
    assert [r["event_id"] for r in out["results"]] == [fresh]  # the live lease is still skipped
    assert record(pipeline.db, fresh)["status"] == "sent"


def test_a_replayed_event_svix_already_has_is_recorded_sent_not_sent_twice(
    env, pipeline, svix, capsys
):
    event_id = pipeline.failed()
    existing = Svix(TOKEN, SvixOptions(server_url=svix.url)).message.create(
        "acme", MessageIn(event_type="user.created", event_id=event_id, payload={"early": 1})
    )

    code, out, _ = run_cli_json(capsys, "replay")

    assert code == 0
    [result] = out["results"]
    assert (result["outcome"], result["svix_status"], result["svix_message_id"]) == (
        "sent",
        409,
        existing.id,
    )
    assert [m["id"] for m in svix.messages()] == [existing.id]
    saved = record(pipeline.db, event_id)
    assert (saved["status"], saved["svix_message_id"]) == ("sent", existing.id)


def lost_long_ago(pipeline, hours):
    """A pending event whose answers were all lost (Svix holds its message), first sent
    ``hours`` ago: the twin's clock moves on by as much."""
    pipeline.svix.set_faults([{"op": "msg.create", "lost": True}])
    try:
        event_id = pipeline.deliver(age=timedelta(hours=hours), project="lossy")
    finally:
        pipeline.svix.clear_faults()
    pipeline.svix.advance_clock(hours * 3600)
    [message] = pipeline.svix.messages()
    assert record(pipeline.db, event_id)["status"] == "pending"
    return event_id, message["id"]


def test_a_replay_after_svix_windows_closed_looks_the_event_up_and_sends_nothing(
    env, pipeline, svix, capsys
):
    event_id, held = lost_long_ago(pipeline, 25)  # past the 12 h key and the 24 h eventId

    code, out, _ = run_cli_json(capsys, "replay", "--status", "pending", "--older-than", "0s")

    assert code == 0
    [result] = out["results"]
    assert (result["outcome"], result["svix_status"], result["svix_message_id"]) == (
        "sent",
        200,
        held,
    )
    assert [m["id"] for m in svix.messages()] == [held]
    assert record(pipeline.db, event_id)["svix_message_id"] == held


def test_a_record_that_cannot_be_rebuilt_is_reported_and_left_alone(env, pipeline, svix, capsys):
    event_id = pipeline.failed()
    ref = pipeline.db.collection("notifications").document(document_key(event_id))
    ref.update({"payload": b"not zlib"})
    before = ref.get().update_time

    code, out, _ = run_cli_json(capsys, "replay")

    assert code == 1
    [result] = out["results"]
    assert (result["outcome"], result["error"].split(":")[0]) == ("unreadable", "error")
    assert ref.get().update_time == before  # not reopened
    assert svix.messages() == []


def test_replay_filters_by_project_type_time_status_and_limit(env, pipeline, svix, capsys):
    a1 = pipeline.failed(project="acme", type="user.created", age=timedelta(hours=3))
    a2 = pipeline.failed(project="acme", type="payment.succeeded", age=timedelta(hours=2))
    g1 = pipeline.failed(project="globex", type="user.created", age=timedelta(hours=1))
    a3 = pipeline.failed(project="acme", type="user.created", age=timedelta(minutes=30))

    def chosen(*flags):
        code, out, _ = run_cli_json(capsys, "replay", "--dry-run", *flags)
        assert code == 0
        return [r["event_id"] for r in out["records"]]

    assert chosen() == [a1, a2, g1, a3]  # oldest first
    assert chosen("--project", "acme") == [a1, a2, a3]
    assert chosen("--event-type", "user.created") == [a1, g1, a3]
    assert chosen("--project", "acme", "--event-type", "user.created") == [a1, a3]
    assert chosen("--since", "150m") == [a2, g1, a3]
    assert chosen("--until", "45m") == [a1, a2, g1]
    now = datetime.now(UTC)
    since = (now - timedelta(hours=2, minutes=30)).isoformat()
    until = (now - timedelta(minutes=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert chosen("--since", since, "--until", until) == [a2, g1]
    assert chosen("--limit", "2") == [a1, a2]
    assert chosen("--status", "pending") == []

    code, out, _ = run_cli_json(capsys, "replay", "--project", "globex")
    assert (code, [r["event_id"] for r in out["results"]]) == (0, [g1])
    assert [m["eventId"] for m in svix.messages()] == [g1]
    assert {record(pipeline.db, i)["status"] for i in (a1, a2, a3)} == {"failed"}


def test_replay_usage_errors(env, capsys):
    code, _, err = run_cli(capsys, "replay", "--since", "1h", "--until", "2h")
    assert code == 2 and "--since must be before --until" in err
    with pytest.raises(SystemExit) as caught:
        main(["replay", "--since", "yesterday"])
    assert caught.value.code == 2
    env.delenv("SVIX_API_KEY")
    code, _, err = run_cli(capsys, "replay")  # a real replay sends: it needs the token
    assert code == 2 and "SVIX_API_KEY is not set" in err


def test_long_replays_show_progress_on_stderr(env, pipeline, capsys):
    for _ in range(5):
        pipeline.failed()
    code, out, err = run_cli(capsys, "replay", "--progress-every", "2")
    assert code == 0
    assert [line for line in err.splitlines() if line.startswith("replay:")] == [
        "replay: 2/5 (sent 2)",
        "replay: 4/5 (sent 4)",
        "replay: 5/5 (sent 5)",
    ]
    assert out.startswith("replayed 5 notification(s): sent 5")


def test_two_operators_replaying_at_once_send_each_event_once(env, pipeline, svix):
    ids = [pipeline.failed() for _ in range(6)]
    selected = select(pipeline.store, Criteria(), now=datetime.now(UTC))
    outcomes = []

    def operator():
        outcomes.extend(
            replay(
                selected,
                store=pipeline.store,
                notifier=pipeline.notifier,
                max_bytes=2**20,
                workers=3,
            )
        )

    threads = [threading.Thread(target=operator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(m["eventId"] for m in svix.messages()) == sorted(ids)
    assert sorted(o.event_id for o in outcomes if o.outcome == "sent") == sorted(ids)
    assert {o.outcome for o in outcomes} <= {"sent", "skipped", "duplicate", "retried"}
    assert {record(pipeline.db, i)["status"] for i in ids} == {"sent"}


# -- redrive --------------------------------------------------------------------------------------


@pytest.fixture
def topics(pubsub_emulator, env):
    """A fresh events topic with a subscription to watch it, and its dead letters as deployed."""
    suffix = unique_suffix()
    topic = f"events-{suffix}"
    ensure_topic_and_subscription(PROJECT, topic, f"watch-{suffix}")
    ensure_topic_and_subscription(PROJECT, f"{topic}-dead-letter", f"{topic}-dead-letter-sub")
    env.setenv("NOTIFIER_TOPIC", topic)  # as deploy.sh names them
    return topic, f"watch-{suffix}", f"{topic}-dead-letter-sub"


def drain(subscription, wait=1.0):
    """What a subscription holds now, taken (acknowledged)."""
    path = f"projects/{PROJECT}/subscriptions/{subscription}"
    messages = []
    with pubsub_v1.SubscriberClient() as subscriber:
        while True:
            response = subscriber.pull(
                request={"subscription": path, "max_messages": 100}, timeout=wait, retry=None
            )
            if not response.received_messages:
                return messages
            messages += [m.message for m in response.received_messages]
            ack_ids = [m.ack_id for m in response.received_messages]
            subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})


def release_all(subscription, messages_expected):
    """Pulls and releases, to look without taking (the next pull sees them again)."""
    path = f"projects/{PROJECT}/subscriptions/{subscription}"
    with pubsub_v1.SubscriberClient() as subscriber:
        seen = []
        while len(seen) < messages_expected:
            response = subscriber.pull(
                request={"subscription": path, "max_messages": 100}, timeout=1.0, retry=None
            )
            if not response.received_messages:
                break
            seen += list(response.received_messages)
        if seen:
            subscriber.modify_ack_deadline(
                request={
                    "subscription": path,
                    "ack_ids": [m.ack_id for m in seen],
                    "ack_deadline_seconds": 0,
                }
            )
    return [m.message for m in seen]


def dead_letters(topic, payloads, **attributes):
    attributes = {"CloudPubSubDeadLetterSourceDeliveryCount": "10", **attributes}
    return publish(PROJECT, f"{topic}-dead-letter", payloads, attributes)


def test_redrive_to_topic_publishes_every_dead_letter_back_then_acknowledges_it(topics, capsys):
    topic, watch, dead = topics
    events = [factories.event() for _ in range(3)]
    payloads = [json.dumps(e).encode() for e in events]
    ids = dead_letters(topic, payloads, origin="billing")

    code, out, err = run_cli_json(capsys, "redrive", "--to-topic", "--wait", "1")

    assert code == 0
    assert (out["summary"], out["acked"], out["left"]) == ({"republished": 3}, 3, 0)
    assert out["subscription"] == f"projects/{PROJECT}/subscriptions/{dead}"
    assert sorted(r["event_id"] for r in out["results"]) == sorted(e["id"] for e in events)
    assert {r["source_attempts"] for r in out["results"]} == {10}
    back = drain(watch)
    assert sorted(m.data for m in back) == sorted(payloads)
    for message in back:
        assert dict(message.attributes) == {
            "origin": "billing",
            "notifier_redriven_from": message.attributes["notifier_redriven_from"],
        }
    assert sorted(m.attributes["notifier_redriven_from"] for m in back) == sorted(ids)
    assert drain(dead) == []
    assert_nothing_private(json.dumps(out), err)


def test_redrive_dry_run_shows_the_dead_letters_and_acknowledges_none(topics, svix, capsys):
    topic, watch, dead = topics
    event = factories.event(project="globex", type="payment.succeeded")
    dead_letters(topic, [json.dumps(event).encode(), b"not json"])
    calls = len(svix.calls())

    code, out, _ = run_cli_json(capsys, "redrive", "--dry-run", "--wait", "1")

    assert code == 0
    assert (out["summary"], out["acked"], out["dry_run"]) == ({"dry_run": 2}, 0, True)
    described = {r["event_id"]: r for r in out["results"]}
    assert described[event["id"]]["project"] == "globex"
    assert described[None]["detail"] == "invalid: not_json"
    assert len(release_all(dead, 2)) == 2  # still there, and available right away
    assert drain(watch) == [] and len(svix.calls()) == calls
    code, table, _ = run_cli(capsys, "redrive", "--to-topic", "--dry-run", "--wait", "1")
    assert code == 0 and "would redrive 2 message(s)" in table and event["id"] in table
    assert len(drain(dead)) == 2


def test_redrive_direct_runs_the_function_and_acknowledges_only_final_outcomes(
    topics, db, svix, capsys
):
    topic, watch, dead = topics
    events = [factories.event(project="acme"), factories.event(project="globex")]
    dead_letters(topic, [json.dumps(e).encode() for e in events] + [b"not json"])
    svix.set_faults([{"op": "msg.create", "status": 503}])  # Svix still down

    code, out, err = run_cli_json(capsys, "redrive", "--direct", "--wait", "1")

    assert code == 1
    outcomes = sorted((r["event_id"] or "-", r["outcome"], r["acked"]) for r in out["results"])
    left = [(e["id"], "retried", False) for e in events]
    assert outcomes == sorted([*left, ("-", "rejected", True)])
    assert len(list(db.collection("rejected").stream())) == 1
    assert {record(db, e["id"])["status"] for e in events} == {"pending"}
    assert svix.messages() == []
    assert "event retried" in err  # the function's own WARNING lines, on stderr

    svix.clear_faults()
    code, out, err = run_cli_json(capsys, "redrive", "--direct", "--wait", "1")

    assert code == 0
    assert sorted((r["event_id"], r["outcome"], r["acked"]) for r in out["results"]) == sorted(
        (e["id"], "sent", True) for e in events
    )
    assert sorted(m["eventId"] for m in svix.messages()) == sorted(e["id"] for e in events)
    assert {record(db, e["id"])["status"] for e in events} == {"sent"}
    assert drain(dead) == [] and drain(watch) == []
    assert_nothing_private(json.dumps(out), err)


def test_redrive_needs_a_mode_and_direct_needs_the_token(topics, env, capsys):
    code, _, err = run_cli(capsys, "redrive")
    assert code == 2 and "choose --to-topic or --direct" in err
    env.delenv("SVIX_API_KEY")
    code, _, err = run_cli(capsys, "redrive", "--direct", "--wait", "1")
    assert code == 2 and "SVIX_API_KEY" in err


def test_a_redrive_after_svix_windows_closed_sends_no_second_message(
    topics, pipeline, db, svix, capsys
):
    topic, _watch, dead = topics
    event_id, held = lost_long_ago(pipeline, 30)
    document = factories.event(project="lossy", id=event_id)
    dead_letters(topic, [json.dumps(document).encode()])

    code, out, _ = run_cli_json(capsys, "redrive", "--direct", "--wait", "1")

    assert code == 0
    assert [(r["event_id"], r["outcome"], r["acked"]) for r in out["results"]] == [
        (event_id, "sent", True)
    ]
    assert [m["id"] for m in svix.messages()] == [held]
    assert (record(db, event_id)["status"], record(db, event_id)["svix_message_id"]) == (
        "sent",
        held,
    )
    assert drain(dead) == []
