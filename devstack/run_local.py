"""``make run`` / ``make serve``: the functions on their real dependencies, shown working.

Starts the Firestore and Pub/Sub emulators and the Svix stand-in, serves ``on_event`` under
functions-framework, wires a Pub/Sub push subscription (with a retry policy) to it, publishes the
sample events plus a duplicate and two bad messages, and prints what happened to each. Then it
serves the HTTP functions ``notifications`` and ``app_portal`` and calls them as a client would
(a new event, the same again, a bad one, portal links). Everything it started is stopped on the
way out, by process group.
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

import httpx
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
    _table(("message", "project", "event type", "what happened", ""), rows)
    return ok


HTTP_FUNCTIONS = ("notifications", "app_portal")


def show_http(notifications_url: str, portal_url: str, standin: SvixStandin) -> bool:
    """Calls the HTTP functions as a client would; prints each answer and whether it is right."""
    event = json.loads((SAMPLES / "03-payment.succeeded.json").read_text())
    event["id"] = "evt_http_demo_1"  # new: not among the published events
    invalid = {**event, "id": "evt_http_demo_2", "time": "last tuesday"}
    calls = [
        ("POST /notifications  a new event", 201, "post", "/notifications", json.dumps(event)),
        ("POST /notifications  the same again", 200, "post", "/notifications", json.dumps(event)),
        ("POST /notifications  schema-invalid", 400, "post", "/notifications", json.dumps(invalid)),
        ("GET /app-portal?project=acme", 200, "get", "/app-portal?project=acme", None),
        ("GET /app-portal?project=nobody", 404, "get", "/app-portal?project=nobody", None),
    ]
    rows, ok = [], True
    with httpx.Client(timeout=60) as client:
        for label, expected, method, path, body in calls:
            base = notifications_url if path.startswith("/notifications") else portal_url
            headers = {"Content-Type": "application/json"}
            answer = client.request(method, base + path, content=body, headers=headers)
            good = answer.status_code == expected
            ok &= good
            rows.append(
                (label, answer.status_code, _summary(answer), "ok" if good else "UNEXPECTED")
            )
    count = sum(1 for m in standin.messages() if m["eventId"] == event["id"])
    ok &= count == 1
    rows.append(
        ("Svix messages for the POSTed event", count, "", "ok" if count == 1 else "UNEXPECTED")
    )
    _table(("HTTP request", "answer", "what it said", ""), rows)
    return ok


def _summary(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:60]
    if "url" in body:
        return f"portal link, valid until {body['expires_at']}"
    if "status" in body:
        return f"{body['status']}, Svix message {body.get('svix_message_id')}"
    errors = "; ".join(body.get("errors") or [])
    return f"{body.get('error')}: {errors}"[:80] if errors else str(body.get("error"))


def _table(headers: tuple[str, ...], rows: list[tuple]) -> None:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*(str(cell) for cell in row)))


def operator_environment(svix_url: str) -> str:
    """Shell lines that point the operator tools (``notifier``, ``python -m notifier``) at this
    stack: the emulators this process exported, and the stand-in for replay / redrive --direct."""
    names = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")
    command = os.path.join(os.path.dirname(sys.executable), "notifier")
    return "\n".join(
        [
            *(f"  export {name}={os.environ[name]}" for name in names),
            f"  export SVIX_SERVER_URL={svix_url} SVIX_API_KEY={TOKEN}  # replay, redrive --direct",
            f"  {command} status    # or: .venv/bin/python -m notifier status",
        ]
    )


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
        # Started while Pub/Sub pushes the events: their start-up overlaps the wait below.
        http = {
            name: stack.enter_context(
                FunctionServer(name, env, run_dir / f"{name}.log", signature_type="http")
            )
            for name in HTTP_FUNCTIONS
        }

        from google.cloud import firestore as fs

        db = fs.Client(project=PROJECT)
        settled = wait_for(db, messages, args.timeout)
        ok = report(db, standin, messages) and settled
        print(
            f"\nHTTP functions: notifications on {http['notifications'].url}, "
            f"app_portal on {http['app_portal'].url}\n"
        )
        ok = show_http(http["notifications"].url, http["app_portal"].url, standin) and ok
        logs = ", ".join(str(run_dir / f"{name}.log") for name in ("function", *HTTP_FUNCTIONS))
        print(f"\nfunction logs: {logs}")
        print("all as expected" if ok else "SOMETHING WENT WRONG (see the logs above)")
        if args.serve:
            serve_until_interrupted(function, pubsub, standin, http)
        return 0 if ok else 1


def serve_until_interrupted(
    function: FunctionServer, pubsub, standin: SvixStandin, http: dict[str, FunctionServer]
) -> None:
    print(
        "\nThe operator tools: point them at this stack in another shell with\n"
        f"{operator_environment(standin.url)}\n"
        "\nThe stack stays up. Publish more events from another shell with:\n"
        f"  PUBSUB_EMULATOR_HOST={pubsub.host_port} .venv/bin/python -m devstack.publish "
        f"--project {PROJECT} --topic {TOPIC} samples/events/03-payment.succeeded.json\n"
        "or POST them, and ask for a portal link:\n"
        "  curl --fail -H 'Content-Type: application/json' --data-binary "
        f"@samples/events/03-payment.succeeded.json {http['notifications'].url}/notifications\n"
        f"  curl --fail '{http['app_portal'].url}/app-portal?project=acme'\n"
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
