"""``make run`` / ``make serve``: the functions on their real dependencies, shown working.

Starts the Firestore and Pub/Sub emulators and the Svix twin, serves ``on_event`` under
functions-framework, wires a Pub/Sub push subscription (with a retry policy) to it, publishes the
sample events plus a duplicate and two bad messages, and prints what happened to each. Webhooks
really arrive: a sample customer endpoint (devstack/customer_endpoint.py, verifying signatures
with the svix SDK) is registered in each sample project's application through Svix's API, and
``canary`` is served with the secret ``notifier heartbeat setup`` wrote; a heartbeat request is
published as Cloud Scheduler publishes it, and the tables show both arriving. Then it serves the
HTTP functions ``notifications`` and ``app_portal`` and calls them as a client would (a new
event, the same again, a bad one, portal links). ``operational_webhooks`` is served from the start
with the secret ``notifier operational setup`` wrote; last, one sample customer's endpoint goes
down for days on the twin's clock, ``notifier status`` shows it failing, then disabled, and
``notifier recover`` brings back what it missed (devstack/outage.py). ``--serve`` keeps it all
up and the heartbeat ticking. Everything it started is stopped on the way out, by process group.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from google.cloud.firestore_v1 import FieldFilter
from svix.api import ApplicationIn, EndpointIn, Svix, SvixOptions

from devstack import emulators
from devstack.customer_endpoint import CustomerEndpoint
from devstack.function_server import ROOT, FunctionServer
from devstack.operator_cli import run_setup
from devstack.outage import Outage
from devstack.push_relay import ensure_topic_and_subscription, publish
from devstack.svix_twin.server import SvixTwin
from devstack.tables import print_table
from notifier.adapters.firestore.keys import document_key, natural_id
from notifier.config import OPERATIONAL_SECRET_ENV

PROJECT = "notifier-local"
TOPIC = "platform-events"
SUBSCRIPTION = "notifier-push"
TOKEN = "testsk_local-twin-token"
SAMPLES = ROOT / "samples" / "events"
# What deploy.sh's Cloud Scheduler job publishes to the platform topic, every time the same.
HEARTBEAT_REQUEST = b'{"object":"heartbeat"}'
HEARTBEAT_ATTRIBUTES = {"notifier": "heartbeat"}
HEARTBEAT_PROJECT = "notifier-heartbeat"
CUSTOMER_ENDPOINT_UID = "sample-customer"
OUTAGE_PROJECT = "globex"  # whose sample customer endpoint goes down for days


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
        sent = {natural_id(d.id) for d in query.stream()}  # keys are spread (document_key)
        rejected = len(list(db.collection("rejected").stream()))
        if events <= sent and rejected >= bad:
            return True
        time.sleep(0.5)
    return False


def report(db, twin: SvixTwin, messages: list[Published]) -> bool:
    in_svix: dict[str, int] = {}
    for message in twin.messages():
        in_svix[message["eventId"]] = in_svix.get(message["eventId"], 0) + 1
    rejected = {
        d.get("pubsub_message_id"): d.get("reason")
        for d in (doc.to_dict() for doc in db.collection("rejected").stream())
    }
    rows, ok = [], True
    for m in messages:
        if m.event_id:
            ref = db.collection("notifications").document(document_key(m.event_id))
            record = ref.get().to_dict() or {}
            status, count = record.get("status", "missing"), in_svix.get(m.event_id, 0)
            good = status == "sent" and count == 1
            result = f"{status}, {count} Svix message" + ("" if count == 1 else "s")
        else:
            reason = rejected.get(m.message_id)
            good = reason is not None
            result = f"rejected: {reason}" if good else "not rejected"
        ok &= good
        rows.append((m.label, m.project, m.event_type, result, "ok" if good else "UNEXPECTED"))
    print_table(("message", "project", "event type", "what happened", ""), rows)
    return ok


def register_customer_endpoints(
    twin: SvixTwin, customer: CustomerEndpoint, projects: set[str]
) -> None:
    """Each project's application gets the sample customer's endpoint, through the calls a
    customer's App Portal makes against Svix (create application, endpoint, read its secret)."""
    svix = Svix(TOKEN, SvixOptions(server_url=twin.url))
    for project in sorted(projects):
        svix.application.get_or_create(ApplicationIn(uid=project, name=project))
        endpoint = EndpointIn(
            uid=CUSTOMER_ENDPOINT_UID,
            url=customer.url_for(project),
            description="a sample customer's webhook endpoint (devstack)",
        )
        svix.endpoint.create(project, endpoint)
        secret = svix.endpoint.get_secret(project, CUSTOMER_ENDPOINT_UID).key
        customer.add(project, secret)
    print(f"sample customer endpoint {customer.url}/<project> registered in {len(projects)} apps")


def publish_heartbeat() -> Published:
    """One heartbeat request, as Cloud Scheduler publishes it; on_event names it hb-<id>."""
    [message_id] = publish(PROJECT, TOPIC, [HEARTBEAT_REQUEST], HEARTBEAT_ATTRIBUTES)
    return Published(
        "heartbeat request (Scheduler's message)",
        HEARTBEAT_REQUEST,
        f"hb-{message_id}",
        HEARTBEAT_PROJECT,
        "notifier.heartbeat",
        message_id,
    )


def show_customer_deliveries(
    customer: CustomerEndpoint, twin: SvixTwin, messages: list[Published], timeout: float
) -> bool:
    """What the sample customer's endpoint received: each sample event once, signature valid."""
    wanted = {m.event_id: m for m in messages if m.event_id and m.project != HEARTBEAT_PROJECT}
    customer.wait(lambda got: set(wanted) <= {r.event_id for r in got}, timeout)
    twin.wait_for_deliveries(5.0)  # let any second delivery land before counting
    received = customer.received()
    rows, ok = [], True
    for event_id, m in wanted.items():
        got = [r for r in received if r.event_id == event_id]
        valid = bool(got) and all(r.signature_valid for r in got)
        good = len(got) == 1 and valid
        ok &= good
        signature = "valid" if valid else ("-" if not got else "INVALID")
        rows.append((event_id, m.project, m.event_type, len(got), signature,
                     "ok" if good else "UNEXPECTED"))  # fmt: skip
    print("\nthe sample customer's endpoint (signatures checked with the svix SDK's Webhook):")
    print_table(("event id", "project", "event type", "deliveries", "signature", ""), rows)
    return ok


def show_heartbeat(
    db, heartbeat: Published, canary_log: Path, log_offset: int, timeout: float
) -> bool:
    """The heartbeat as the canary recorded it (Firestore heartbeats/) and logged it (in this
    run's part of the log: the emulator numbers messages from 1 again on every run)."""
    ref = db.collection("heartbeats").document(heartbeat.event_id or "")
    deadline = time.monotonic() + timeout
    while not ref.get().exists and time.monotonic() < deadline:
        time.sleep(0.5)
    kept = ref.get().to_dict()
    logged = sum(
        1 for line in _json_lines(canary_log, log_offset)
        if line.get("message") == "heartbeat arrived" and line.get("event_id") == heartbeat.event_id
    )  # fmt: skip
    good = kept is not None and logged == 1
    row = (heartbeat.event_id, "-", "-", "-", f"{logged} log line(s)", "UNEXPECTED")
    if kept is not None:
        row = (
            heartbeat.event_id,
            kept["published_at"].isoformat(timespec="milliseconds"),
            kept["arrived_at"].isoformat(timespec="milliseconds"),
            f"{kept['latency_ms']:.0f} ms",
            "verified, recorded, logged" if logged == 1 else f"{logged} log line(s)",
            "ok" if good else "UNEXPECTED",
        )
    print("\nthe heartbeat at canary (Svix signature verified, latency from publication):")
    print_table(("event id", "published", "arrived", "latency", "canary", ""), [row])
    return good


def _json_lines(path: Path, offset: int = 0) -> list[dict]:
    lines = []
    with path.open("rb") as log:
        log.seek(offset)
        texts = log.read().decode(errors="replace").splitlines()
    for text in texts:
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        if isinstance(entry, dict):
            lines.append(entry)
    return lines


HTTP_FUNCTIONS = ("notifications", "app_portal")


def show_http(notifications_url: str, portal_url: str, twin: SvixTwin) -> bool:
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
    count = sum(1 for m in twin.messages() if m["eventId"] == event["id"])
    ok &= count == 1
    rows.append(
        ("Svix messages for the POSTed event", count, "", "ok" if count == 1 else "UNEXPECTED")
    )
    print_table(("HTTP request", "answer", "what it said", ""), rows)
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


def operator_environment(svix_url: str) -> str:
    """Shell lines that point the operator tools (``notifier``, ``python -m notifier``) at this
    stack: the emulators this process exported, and the twin for replay / redrive --direct."""
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
    parser.add_argument(
        "--heartbeat-every",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="with --serve: publish a heartbeat request this often [30]",
    )
    args = parser.parse_args(argv)
    if args.heartbeat_every < 1:
        parser.error("--heartbeat-every must be at least 1 second")

    try:
        emulators.check_prerequisites()
    except emulators.PrerequisiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = ROOT / ".run"
    run_dir.mkdir(exist_ok=True)
    with contextlib.ExitStack() as stack:
        print("starting the Firestore and Pub/Sub emulators and the Svix twin ...", flush=True)
        firestore = stack.enter_context(
            emulators.start_firestore(PROJECT, log_path=run_dir / "firestore.log")
        )
        pubsub = stack.enter_context(
            emulators.start_pubsub(PROJECT, log_path=run_dir / "pubsub.log")
        )
        twin = stack.enter_context(SvixTwin(TOKEN))
        os.environ.update({**firestore.env, **pubsub.env, "GOOGLE_CLOUD_PROJECT": PROJECT})
        env = {
            **firestore.env,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "SVIX_API_KEY": TOKEN,
            "SVIX_SERVER_URL": twin.url,
        }
        messages = sample_messages()
        # As deploy.sh: the operational-webhook endpoint registered in Svix, its secret handed
        # to the function (as Secret Manager mounts it; no Svix token), before any customer.
        operational_port = emulators.free_port()
        operational_secret = run_dir / "operational-secret"
        run_setup(
            "operational",
            [f"--url=http://127.0.0.1:{operational_port}/", f"--secret-file={operational_secret}"],
            env,
        )
        operational_env = {
            **firestore.env,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            OPERATIONAL_SECRET_ENV: operational_secret.read_text(),
        }
        operational = stack.enter_context(
            FunctionServer(
                "operational_webhooks",
                operational_env,
                run_dir / "operational.log",
                signature_type="http",
                port=operational_port,
            )
        )
        print(f"operational_webhooks serves {operational.url} (Svix's operational webhooks)")
        customer = stack.enter_context(CustomerEndpoint(run_dir / "customer-endpoint.log"))
        register_customer_endpoints(twin, customer, {m.project for m in messages if m.event_id})
        canary_log = run_dir / "canary.log"
        canary_log_offset = canary_log.stat().st_size if canary_log.exists() else 0
        canary_port = emulators.free_port()
        secret_file = run_dir / "canary-secret"
        run_setup(
            "heartbeat",
            [f"--canary-url=http://127.0.0.1:{canary_port}/", f"--secret-file={secret_file}"],
            env,
        )
        # The canary as deployed: Firestore and its signing secret, no Svix token.
        canary_env = {
            **firestore.env,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "NOTIFIER_CANARY_SECRET": secret_file.read_text(),
        }
        canary = stack.enter_context(
            FunctionServer(
                "canary",
                canary_env,
                canary_log,
                signature_type="http",
                port=canary_port,
            )
        )
        print(f"canary serves {canary.url} (Svix app {HEARTBEAT_PROJECT}, endpoint canary)")
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

        ids = publish(PROJECT, TOPIC, [m.payload for m in messages])
        for message, message_id in zip(messages, ids, strict=True):
            message.message_id = message_id
        heartbeat = publish_heartbeat()
        messages.append(heartbeat)
        print(f"published {len(messages)} messages to {TOPIC}, one a heartbeat\n", flush=True)
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
        ok = report(db, twin, messages) and settled
        ok = show_customer_deliveries(customer, twin, messages, args.timeout) and ok
        ok = show_heartbeat(db, heartbeat, canary_log, canary_log_offset, args.timeout) and ok
        print(
            f"\nHTTP functions: notifications on {http['notifications'].url}, "
            f"app_portal on {http['app_portal'].url}\n"
        )
        ok = show_http(http["notifications"].url, http["app_portal"].url, twin) and ok
        outage = Outage(
            twin,
            customer,
            lambda payloads: publish(PROJECT, TOPIC, payloads),
            project=OUTAGE_PROJECT,
            endpoint=CUSTOMER_ENDPOINT_UID,
            env=env,
            timeout=args.timeout,
        )
        ok = outage.show() and ok
        names = ("function", "canary", *HTTP_FUNCTIONS, "operational")
        logs = ", ".join(str(run_dir / f"{name}.log") for name in names)
        print(f"\nfunction logs: {logs}")
        print("all as expected" if ok else "SOMETHING WENT WRONG (see the logs above)")
        if args.serve:
            serve_until_interrupted(
                function, pubsub, twin, http, firestore=firestore, every=args.heartbeat_every
            )
        return 0 if ok else 1


def serve_until_interrupted(
    function: FunctionServer,
    pubsub,
    twin: SvixTwin,
    http: dict[str, FunctionServer],
    *,
    firestore,
    every: float,
) -> None:
    print(
        "\nThe operator tools: point them at this stack in another shell with\n"
        f"{operator_environment(twin.url)}\n"
        "\nThe stack stays up. Publish more events from another shell with:\n"
        f"  PUBSUB_EMULATOR_HOST={pubsub.host_port} .venv/bin/python -m devstack.publish "
        f"--project {PROJECT} --topic {TOPIC} samples/events/03-payment.succeeded.json\n"
        "or POST them, and ask for a portal link:\n"
        "  curl --fail -H 'Content-Type: application/json' --data-binary "
        f"@samples/events/03-payment.succeeded.json {http['notifications'].url}/notifications\n"
        f"  curl --fail '{http['app_portal'].url}/app-portal?project=acme'\n"
        f"Svix twin: {twin.url}/_twin/messages lists what Svix received.\n"
        f"\nThe heartbeat ticks: a heartbeat request every {every:g} s (the Scheduler's message).\n"
        "Watch it arrive (the first line: last heartbeat, latency, healthy or late):\n"
        f"  GOOGLE_CLOUD_PROJECT={PROJECT} {_env_line(firestore.env)} "
        ".venv/bin/python -m notifier status\n"
        '  tail -f .run/canary.log            # one "heartbeat arrived" line per beat\n'
        "  tail -f .run/customer-endpoint.log # what the sample customer receives\n"
        "  tail -f .run/operational.log       # Svix's operational webhooks (endpoint health)\n"
        "Press Ctrl-C to stop everything.",
        flush=True,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ticker = threading.Thread(target=_tick, args=(stop, every), daemon=True)
    ticker.start()
    with contextlib.suppress(KeyboardInterrupt):
        while not stop.is_set():
            time.sleep(0.5)
    stop.set()


def _tick(stop: threading.Event, every: float) -> None:
    """Publishes a heartbeat request every ``every`` seconds until ``stop``."""
    while not stop.wait(every):
        with contextlib.suppress(Exception):  # the emulator going down on Ctrl-C
            publish_heartbeat()


def _env_line(env: dict[str, str]) -> str:
    return " ".join(f"{name}={value}" for name, value in sorted(env.items()))


if __name__ == "__main__":
    sys.exit(main())
