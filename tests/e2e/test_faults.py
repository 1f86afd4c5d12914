"""The fault run: hundreds of events through everything that can go wrong at once, end to end.

Pub/Sub emulator -> push relay (Eventarc's POSTs, exponential backoff) -> functions-framework ->
Firestore emulator -> Svix twin. Events of several projects are published, many of them more
than once and concurrently, while the twin answers a share of calls with 429 + Retry-After,
5xx, non-JSON 502s, answers slower than the client's timeout (which Svix still executes) and
answers lost after the message was accepted; mid-run the function is SIGKILLed and started again.

Afterwards every event must be in Svix exactly once, in its project's application, and ``sent`` in
Firestore; claims held by the killed process must have been taken over once their lease ran out;
and neither the function nor the relay may have called again sooner than its backoff (or Svix's
Retry-After) allows, nor waited beyond its budget. The figures go to ``.run/fault-run.json`` and
docs/reliability.md. ``NOTIFIER_HEAVY=1`` adds a heavier run.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from devstack.function_server import ROOT, FunctionServer
from devstack.push_relay import PushRelay, ensure_topic_and_subscription, publish
from notifier.adapters.firestore.keys import natural_id
from notifier.config import Settings
from tests import factories
from tests.conftest import PROJECT, TOKEN
from tests.e2e.conftest import function_env, log_lines
from tests.support import eventually, unique_suffix

HEAVY = os.environ.get("NOTIFIER_HEAVY") == "1"
RETRY_AFTER = 1  # seconds, as a 429's Retry-After header says (Svix sends whole seconds)
# Small budgets so that every path runs within the test: the longest delivery is
# 2 + 3 x 0.5 + 0.15 = 3.65 s; the lease is the shortest allowed, renewed past a third of it.
SETTINGS = {
    "NOTIFIER_RETRY_BUDGET_SECONDS": "2",
    "NOTIFIER_SVIX_TIMEOUT_SECONDS": "0.5",
    "NOTIFIER_SVIX_RETRY_SCHEDULE": "0.05,0.1",
    "NOTIFIER_LEASE_SECONDS": "10",
}
FAULTS = [
    {"op": "app.create", "status": 503, "times": 2},
    {"op": "msg.create", "status": 429, "retry_after": RETRY_AFTER, "rate": 0.12},
    {"op": "msg.create", "status": 503, "rate": 0.05},
    {"op": "msg.create", "status": 502, "body": "<html>Bad gateway</html>", "rate": 0.03},
    {"op": "msg.create", "delay": 0.8, "rate": 0.04},  # beyond the 0.5 s timeout; still executed
    {"op": "msg.create", "lost": True, "rate": 0.05},  # executed, then the connection dropped
    {"op": "msg.create", "delay": 0.15, "rate": 0.3},  # slow but in time: claims are in flight
]
RELAY_BACKOFF = (1.0, 4.0)  # min >= Retry-After: a redelivery never comes sooner than Svix asks
TOLERANCE = 0.03  # seconds: timer and scheduling slack when comparing gaps with waits


@dataclass(frozen=True)
class Load:
    events: int
    projects: int
    duplicated: float  # share of events published more than once
    max_copies: int
    relay_concurrency: int
    threads: int  # functions-framework's worker threads


DEFAULT = Load(
    events=300, projects=5, duplicated=0.4, max_copies=3, relay_concurrency=12, threads=8
)
HEAVY_LOAD = Load(
    events=1500, projects=12, duplicated=0.5, max_copies=4, relay_concurrency=32, threads=16
)


def test_fault_run(pubsub_emulator, firestore_emulator, db, svix, tmp_path, capsys):
    figures = run_faults(DEFAULT, pubsub_emulator, firestore_emulator, db, svix, tmp_path)
    report("fault-run.json", figures, capsys)


@pytest.mark.slow
@pytest.mark.skipif(not HEAVY, reason="set NOTIFIER_HEAVY=1")
def test_fault_run_heavy(pubsub_emulator, firestore_emulator, db, svix, tmp_path, capsys):
    figures = run_faults(HEAVY_LOAD, pubsub_emulator, firestore_emulator, db, svix, tmp_path)
    report("fault-run-heavy.json", figures, capsys)


# --- the run ------------------------------------------------------------------------------------


def run_faults(load: Load, pubsub_emulator, firestore_emulator, db, svix, tmp_path) -> dict:
    rng = random.Random(20260301)
    events = [
        factories.event(project=f"tenant-{n % load.projects}", type=f"user.kind{n % 7}")
        for n in range(load.events)
    ]
    by_id = {e["id"]: e for e in events}
    # Copies of a duplicated event are either published together (delivered concurrently) or
    # scattered through the run (one arrives after the event was sent).
    units = []
    for event in events:
        copies = 1 if rng.random() >= load.duplicated else rng.randint(2, load.max_copies)
        together = rng.random() < 0.5
        payload = json.dumps(event).encode()
        units += [[payload] * copies] if together else [[payload] for _ in range(copies)]
    rng.shuffle(units)
    payloads = [payload for unit in units for payload in unit]

    suffix = unique_suffix()
    topic, subscription = f"faults-{suffix}", f"faults-{suffix}"
    ensure_topic_and_subscription(PROJECT, topic, subscription, ack_deadline=60)
    env = function_env(firestore_emulator, svix, **SETTINGS)
    settings = Settings.from_env(env)
    log_path = tmp_path / "function.log"
    svix.set_faults(FAULTS)
    clock_offset = time.time() - time.monotonic()  # twin times are this process's monotonic

    with contextlib.ExitStack() as stack:
        server = FunctionServer("on_event", env, log_path, threads=load.threads).start()
        stack.callback(lambda: server.stop())
        started = time.monotonic()
        relay = PushRelay(
            PROJECT,
            subscription,
            server.url,
            concurrency=load.relay_concurrency,
            min_backoff=RELAY_BACKOFF[0],
            max_backoff=RELAY_BACKOFF[1],
        )
        stack.enter_context(relay)
        with ThreadPoolExecutor(8) as pool:  # duplicates published concurrently, like a retry storm
            chunks = [payloads[i : i + 10] for i in range(0, len(payloads), 10)]
            list(pool.map(lambda chunk: publish(PROJECT, topic, chunk), chunks))

        # Mid-run, while deliveries hold claims (in a Svix call or waiting out a 429): SIGKILL.
        a_third = load.events // 3
        third = eventually(lambda: len(svix.messages()) >= a_third, timeout=120, every=0.05)
        assert third, "timed out waiting for a third of the events"
        in_flight = eventually(lambda: len(live_claims(db)) >= 3, timeout=60, every=0.05)
        assert in_flight, "timed out waiting for claims in flight"
        server.kill()
        killed_at = datetime.now(UTC)
        killed_after = time.monotonic() - started
        time.sleep(1.0)  # writes the process sent just before dying may still land: let them
        orphaned = {i: r for i, r in live_claims(db).items() if r["lease_expires_at"] > killed_at}
        server = FunctionServer("on_event", env, log_path, port=server.port, threads=load.threads)
        server.start()

        assert relay.wait_idle(timeout=180, expected_acks=len(payloads)), relay.stats["outstanding"]
        stats = relay.stats
    wall = time.monotonic() - started

    records = {natural_id(d.id): d.to_dict() for d in db.collection("notifications").stream()}
    messages = svix.messages()
    calls = svix.calls()
    lines = [e for e in log_lines(log_path) if e.get("outcome")]

    # Nothing lost, nothing sent twice: every event once in Svix, in its project's application.
    assert Counter(m["eventId"] for m in messages) == Counter(list(by_id))
    for message in messages:
        event = by_id[message["eventId"]]
        assert (message["app_uid"], message["eventType"]) == (event["project"], event["type"])
        assert message["payload"] == event
    msg_ids = {m["eventId"]: m["id"] for m in messages}
    assert {i: (r["status"], r.get("svix_message_id")) for i, r in records.items()} == {
        i: ("sent", msg_ids[i]) for i in by_id
    }
    assert not any("payload" in r or "lease_expires_at" in r for r in records.values())
    assert list(db.collection("rejected").limit(1).stream()) == []
    # Every published copy was acknowledged, after a last 200.
    assert stats["acks"] == len(payloads)
    assert all(m["statuses"][-1] == 200 for m in stats["per_message"].values())

    # Claims held by the killed process were taken over once their lease ran out, and sent.
    assert orphaned, "the kill found no claim in flight"
    for event_id, before in orphaned.items():
        after = records[event_id]
        assert after["attempts"] > before["attempts"]
        assert after["sent_at"] >= before["lease_expires_at"]

    # Nobody spun: the relay kept its backoff per message; the function its waits per delivery.
    for message in stats["per_message"].values():
        for failures, (a, b) in enumerate(itertools.pairwise(message["times"]), start=1):
            assert b - a >= relay.backoff_for(failures) - TOLERANCE, message
    creates = defaultdict(list)
    for call in calls:
        if call["op"] == "msg.create":
            creates[call["idempotency_key"]].append(call)
    for seq in creates.values():
        seq.sort(key=lambda c: c["at"])  # calls are listed as answered; a slow one comes late
    key_event = {m["idempotency_key"]: m["eventId"] for m in messages}
    assert set(creates) == set(key_event)
    deliveries = delivery_calls(lines, creates, key_event, clock_offset)
    for seq in deliveries:
        check_waits(seq, settings)
    # After a 429 the delivery waits as told, or (out of budget) leaves the event to Pub/Sub with
    # its claim held until the Retry-After has passed: no copy of the event may call sooner.
    delivery_of = {id(call): n for n, seq in enumerate(deliveries) for call in seq}
    # Only the killed process's calls cannot be placed (it never logged): the checks cover the rest.
    assert len(delivery_of) >= 0.8 * sum(len(seq) for seq in creates.values())
    waited = left = sooner = 0
    for seq in creates.values():
        for a, b in itertools.pairwise(seq):
            if a["status"] != 429:
                continue
            gap = b["at"] - a["at"]
            if delivery_of.get(id(a), -1) == delivery_of.get(id(b), -2):
                assert gap >= RETRY_AFTER - TOLERANCE, (a, b)
                waited += 1
            else:
                left += 1
                sooner += gap < RETRY_AFTER - TOLERANCE
    assert sooner == 0, f"{sooner} calls came sooner than Svix's Retry-After"

    # Every kind of fault happened.
    statuses = Counter(c["status"] for c in calls if c["op"] == "msg.create")
    relay_statuses = Counter(s for m in stats["per_message"].values() for s in m["statuses"])
    timeouts = sum(
        1
        for seq in creates.values()
        for a, b in itertools.pairwise(seq)
        if isinstance(a["status"], int)
        and a["status"] < 300
        and b["retry_count"] > a["retry_count"]
    )
    figures = {
        "events": load.events,
        "projects": load.projects,
        "published": len(payloads),
        "deliveries": stats["deliveries"],
        "redeliveries": stats["nacks"],
        "answered_503": relay_statuses[503],
        "refused_while_down": stats["errors"],
        "svix_calls": len(calls),
        "message_creates": sum(statuses.values()),
        "answers_429": statuses[429],
        "retry_after_waited_in_process": waited,
        "retry_after_left_to_pubsub": left,
        "other_copy_sooner_than_retry_after": sooner,
        "answers_5xx": sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500),
        "timeouts": timeouts,
        "answers_lost": statuses["lost"],
        "replayed_by_idempotency_key": sum(1 for c in calls if c["replayed"]),
        "sdk_retries": sum(1 for c in calls if c["retry_count"]),
        "in_process_retries": sum(e.get("retries") or 0 for e in lines),
        "duplicates_acked_without_svix": sum(1 for e in lines if e["outcome"] == "duplicate"),
        "claims_held_elsewhere": sum(1 for e in lines if e.get("reason") == "claim_held"),
        "takeovers": len(orphaned),
        "records_with_attempts_over_1": sum(1 for r in records.values() if r["attempts"] > 1),
        "killed_after_seconds": round(killed_after, 1),
        "wall_seconds": round(wall, 1),
        "heavy": load is HEAVY_LOAD,
        "load": asdict(load),
        "settings": SETTINGS,
        "faults": FAULTS,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    assert statuses[429] and statuses[503] and statuses[502] and statuses["lost"] and timeouts
    assert waited and waited + left == statuses[429]
    assert figures["replayed_by_idempotency_key"]  # lost and late answers were replayed, not redone
    assert figures["duplicates_acked_without_svix"] and figures["claims_held_elsewhere"]

    # Neither the token nor any personal data reached the function's output.
    output = log_path.read_text(errors="replace")
    for secret in (TOKEN, *factories.PII.values()):
        assert secret not in output
    return figures


# --- helpers ------------------------------------------------------------------------------------


def live_claims(db) -> dict[str, dict]:
    """Pending records whose lease has not run out: a delivery is working on them right now."""
    now = datetime.now(UTC)
    pending = db.collection("notifications").where(filter=FieldFilter("status", "==", "pending"))
    found = {natural_id(d.id): d.to_dict() for d in pending.stream()}
    return {
        i: r for i, r in found.items() if r.get("lease_expires_at") and r["lease_expires_at"] > now
    }


def delivery_calls(lines, creates, key_event, clock_offset) -> list[list[dict]]:
    """The msg.create calls of each logged delivery: those of its event's key made while it ran.

    Only the claim holder calls Svix for an event, so the calls inside a delivery's time window
    are its own (the killed process's deliveries have no line, and are left out).
    """
    by_event = defaultdict(list)
    for key, seq in creates.items():
        by_event[key_event[key]].extend(seq)
    found = []
    for line in lines:
        if line["outcome"] in ("duplicate",) or line.get("reason") == "claim_held":
            continue
        end = datetime.fromisoformat(line["time"]).timestamp() - clock_offset
        start = end - line["duration_ms"] / 1000
        seq = [c for c in by_event[line["event_id"]] if start - 0.01 <= c["at"] <= end + 0.01]
        if seq:
            found.append(sorted(seq, key=lambda c: c["at"]))
    assert found
    return found


def check_waits(seq: list[dict], settings: Settings) -> None:
    """One delivery's calls: the SDK's quick retries kept their schedule, each in-process retry
    waited its backoff (or the Retry-After a 429 asked for), and all of it fit in the budget."""
    backoff = 0.5  # exactly_once's first backoff, doubled after every retry
    at_once = True  # but the first 409 without the message (an application race): at once
    for a, b in itertools.pairwise(seq):
        gap = b["at"] - a["at"]
        if b["retry_count"]:  # the SDK's own retry of a 5xx or transport error
            assert gap >= settings.svix_retry_schedule[b["retry_count"] - 1] - TOLERANCE, (a, b)
        elif a["status"] == 409 and at_once:
            at_once = False
        else:  # the service's retry
            wait = RETRY_AFTER if a["status"] == 429 else backoff
            assert gap >= wait - TOLERANCE, (a, b)
            backoff = min(backoff * 2, 8.0)
    assert seq[-1]["at"] - seq[0]["at"] <= settings.longest_delivery_seconds + 0.25, seq


def report(name: str, figures: dict, capsys) -> None:
    """One summary line on the terminal, and the figures as JSON for docs/reliability.md."""
    summary = (
        "fault run: {events} events ({published} published), {deliveries} deliveries, "
        "{svix_calls} Svix calls, {answers_429} x 429 ({retry_after_waited_in_process} waited "
        "in process, {retry_after_left_to_pubsub} left to Pub/Sub), {answers_5xx} x 5xx, "
        "{timeouts} timeouts, {answers_lost} lost answers, "
        "{sdk_retries} SDK + {in_process_retries} in-process retries, {redeliveries} "
        "redeliveries, {takeovers} takeovers after SIGKILL, {wall_seconds} s"
    ).format(**figures)
    path = Path(ROOT, ".run", name)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    with capsys.disabled():  # on the terminal even when pytest captures output
        print(f"\n{summary} (figures in .run/{name})")
