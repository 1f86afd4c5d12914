"""``make run`` / ``make serve``: the function on its real dependencies, shown working.

Starts the Firestore and Pub/Sub emulators and the Svix stand-in, serves ``on_event`` under
functions-framework, wires a Pub/Sub push subscription (with a retry policy) to it, publishes the
sample events plus a duplicate and two bad messages, and prints what happened to each. Everything
it started is stopped on the way out, by process group.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

from google.cloud.firestore_v1 import FieldFilter

from devstack import emulators
from devstack.function_server import ROOT, FunctionServer
from devstack.push_relay import ensure_topic_and_subscription, publish
from devstack.svix_standin import SvixStandin

PROJECT = "notifier-local"
TOPIC = "platform-events"
SUBSCRIPTION = "notifier-push"
TOKEN = "testsk_local-standin-token"
SAMPLES = ROOT / "samples" / "events"


@dataclass
class Published:
    label: str
    payload: bytes
    event_id: str | None  # None: a bad message, expected in `rejected`
    project: str = "-"
    event_type: str = "-"
    message_id: str = ""


def sample_messages() -> list[Published]:
    messages = []
    for path in sorted(SAMPLES.glob("*.json")):
        event = json.loads(path.read_text())
        messages.append(
            Published(path.name, path.read_bytes(), event["id"], event["project"], event["type"])
        )
    first = messages[0]
    messages.append(
        Published(
            f"{first.label} (again)", first.payload, first.event_id, first.project, first.event_type
        )
    )
    invalid = json.loads(messages[1].payload) | {"time": "last tuesday"}
    del invalid["version"]
    messages.append(Published("schema-invalid event", json.dumps(invalid).encode(), None))
    messages.append(Published("not JSON", b"this is not json {", None))
    return messages


def wait_for(db, messages: list[Published], timeout: float) -> bool:
    """Until every distinct event is sent and every bad message is rejected."""
    events = {m.event_id for m in messages if m.event_id}
    bad = sum(1 for m in messages if m.event_id is None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        query = db.collection("notifications").where(filter=FieldFilter("status", "==", "sent"))
        sent = {d.id for d in query.stream()}
        rejected = len(list(db.collection("rejected").stream()))
        if events <= sent and rejected >= bad:
            return True
        time.sleep(0.5)
    return False


def report(db, standin: SvixStandin, messages: list[Published]) -> bool:
    in_svix: dict[str, int] = {}
    for message in standin.messages():
        in_svix[message["eventId"]] = in_svix.get(message["eventId"], 0) + 1
    rejected = {
        d.get("pubsub_message_id"): d.get("reason")
        for d in (doc.to_dict() for doc in db.collection("rejected").stream())
    }
    rows, ok = [], True
    for m in messages:
        if m.event_id:
            record = db.collection("notifications").document(m.event_id).get().to_dict() or {}
            status, count = record.get("status", "missing"), in_svix.get(m.event_id, 0)
            good = status == "sent" and count == 1
            result = f"{status}, {count} Svix message" + ("" if count == 1 else "s")
        else:
            reason = rejected.get(m.message_id)
            good = reason is not None
            result = f"rejected: {reason}" if good else "not rejected"
        ok &= good
        rows.append((m.label, m.project, m.event_type, result, "ok" if good else "UNEXPECTED"))
    headers = ("message", "project", "event type", "what happened", "")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="keep the stack up until Ctrl-C")
    parser.add_argument("--timeout", type=float, default=90.0)
    args = parser.parse_args(argv)

    try:
        emulators.check_prerequisites()
    except emulators.PrerequisiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        print("starting the Firestore and Pub/Sub emulators and the Svix stand-in ...", flush=True)
        firestore = stack.enter_context(
            emulators.start_firestore(PROJECT, log_path=run_dir / "firestore.log")
        )
        pubsub = stack.enter_context(
            emulators.start_pubsub(PROJECT, log_path=run_dir / "pubsub.log")
        )
        standin = stack.enter_context(SvixStandin(TOKEN))
        os.environ.update({**firestore.env, **pubsub.env, "GOOGLE_CLOUD_PROJECT": PROJECT})
        env = {
            **firestore.env,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SVIX_API_KEY": TOKEN,
            "SVIX_SERVER_URL": standin.url,
        }
        function = stack.enter_context(FunctionServer("on_event", env, run_dir / "function.log"))
        ensure_topic_and_subscription(
            PROJECT,
            TOPIC,
            SUBSCRIPTION,
            push_endpoint=function.url,
            min_backoff=1.0,
            max_backoff=10.0,
        )
        print(f"on_event serves {function.url}; push subscription {SUBSCRIPTION} -> it")

        messages = sample_messages()
        ids = publish(PROJECT, TOPIC, [m.payload for m in messages])
        for message, message_id in zip(messages, ids, strict=True):
            message.message_id = message_id
        print(f"published {len(messages)} messages to {TOPIC}\n", flush=True)

        from google.cloud import firestore as fs

        db = fs.Client(project=PROJECT)
        settled = wait_for(db, messages, args.timeout)
        ok = report(db, standin, messages) and settled
        print(f"\nfunction log: {run_dir / 'function.log'}")
        print("all as expected" if ok else "SOMETHING WENT WRONG (see the logs above)")
        if args.serve:
            serve_until_interrupted(function, pubsub, standin)
        return 0 if ok else 1


def serve_until_interrupted(function: FunctionServer, pubsub, standin: SvixStandin) -> None:
    print(
        "\nThe stack stays up. Publish more events from another shell with:\n"
        f"  PUBSUB_EMULATOR_HOST={pubsub.host_port} .venv/bin/python -m devstack.publish "
        f"--project {PROJECT} --topic {TOPIC} samples/events/03-payment.succeeded.json\n"
        f"Svix stand-in: {standin.url}/_standin/messages lists what Svix received.\n"
        "Press Ctrl-C to stop everything.",
        flush=True,
    )
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    with contextlib.suppress(KeyboardInterrupt):
        while not stop:
            time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
