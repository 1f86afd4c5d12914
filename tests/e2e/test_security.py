"""The Svix token and personal data stay out of every output: logs, Firestore, HTTP answers.

A run with a recognisable token and recognisable personal data (per run, so nothing else can
match) goes through every path: sent, duplicate, 429 waited out, lost and slow answers, left
pending (429 beyond the budget, 5xx, 401), failed (400), and rejected (personal data in fields of
the wrong type, in unsafe ids, in unparsable, too deep and too large messages). Then everything
the function wrote is searched.

Where personal data may be, and why (anything else fails the test):

* ``notifications/{id}.payload`` while the event is not ``sent``: the event itself, compressed,
  so that it can be sent again without Pub/Sub (docs/operator-tools.md's replay); dropped once sent.
* ``rejected/{id}.raw``: the message as received (truncated), for an operator to inspect.

Not in ``last_error``, ``detail``, ``errors`` or any other field, and never in a log line: those
are read by people and tools that have no business with personal data. The token is nowhere.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.cloudevents import pubsub_request
from devstack.function_server import FunctionServer, free_port
from devstack.svix_twin.server import SvixTwin
from notifier.adapters.firestore.keys import document_key, natural_id
from tests import factories
from tests.e2e.conftest import KEEPALIVE, function_env, log_lines

RUN = secrets.token_hex(6)
TOKEN = f"sk_canary{RUN}.secret"
PII = {
    "email": f"canary.{RUN}@example.com",
    "fullName": f"Canary Person{RUN}",
    "phoneNumber": f"+1555{int(RUN, 16) % 10**7:07d}",
}
SECRETS = {"token": TOKEN, "token tail": TOKEN[-16:]}
ALLOWED = {("notifications", "payload"), ("rejected", "raw")}  # see the module docstring


def event(**overrides: Any) -> dict[str, Any]:
    document = factories.event(**overrides)
    if isinstance(document.get("data"), dict):
        document["data"].update(PII)
    return document


class Run:
    """Deliveries to one function, keeping every HTTP answer for the search."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[httpx.Response] = []
        self.client = httpx.Client(timeout=60, limits=KEEPALIVE)

    def deliver(self, data: bytes | dict, message_id: str) -> int:
        if isinstance(data, dict):
            data = json.dumps(data).encode()
        headers, body = pubsub_request(data, message_id)
        response = self.client.post(self.url, headers=headers, content=body)
        self.answers.append(response)
        return response.status_code


@pytest.fixture
def twin() -> Iterator[SvixTwin]:
    with SvixTwin(TOKEN) as server:
        yield server


def function_server(firestore_emulator, twin, log_path: Path, **overrides) -> FunctionServer:
    env = function_env(
        firestore_emulator,
        twin,
        SVIX_API_KEY=TOKEN,
        NOTIFIER_RETRY_BUDGET_SECONDS="1.5",
        NOTIFIER_LOG_LEVEL="DEBUG",  # whatever is logged at any level is searched
        **overrides,
    )
    return FunctionServer("on_event", env, log_path)  # started by ``with``


def test_token_and_personal_data_stay_out_of_logs_records_and_answers(
    firestore_emulator, db, twin, tmp_path
):
    log_path = tmp_path / "function.log"
    outcomes: dict[str, tuple[list[dict], dict, int]] = {
        # name: (fault rules, event, status the function must answer)
        "sent": ([], event(), 200),
        "429-waited": (
            [{"op": "msg.create", "status": 429, "retry_after": 1, "times": 1}],
            event(),
            200,
        ),
        "lost": ([{"op": "msg.create", "lost": True, "times": 1}], event(), 200),
        "slow": ([{"op": "msg.create", "delay": 1.3, "times": 1}], event(), 200),
        "pending-429": ([{"op": "msg.create", "status": 429, "retry_after": 30}], event(), 503),
        "pending-5xx": (
            [{"op": "msg.create", "status": 502, "body": "<html>x</html>"}],
            event(),
            503,
        ),
        "pending-401": ([{"op": "*", "status": 401}], event(), 503),
        "failed-400": ([{"op": "msg.create", "status": 400}], event(), 200),
    }
    hostile = {
        "pii-in-wrong-types": event(data=PII["email"], time=PII["fullName"], version=PII),
        "pii-as-ids": event(id=PII["email"], project=PII["fullName"], type=PII["phoneNumber"]),
        "pii-not-json": f'{{"email": "{PII["email"]}", '.encode(),
        "pii-too-deep": ('{"a":' * 100 + json.dumps(PII) + "}" * 100).encode(),
        "pii-too-large": event(data={**PII, "blob": "x" * 1024 * 1024}),
        "pii-lone-surrogate": json.dumps(event()).replace("Canary", "\\ud800Canary").encode(),
    }
    with function_server(firestore_emulator, twin, log_path) as server:
        run = Run(server.url)
        for name, (faults, document, expected) in outcomes.items():
            twin.set_faults(faults)
            assert run.deliver(document, f"m-{name}") == expected, name
        twin.clear_faults()
        assert run.deliver(outcomes["sent"][1], "m-sent-again") == 200  # a duplicate
        for name, data in hostile.items():
            assert run.deliver(data, f"m-{name}") == 200, name
        run.client.close()  # no idle keep-alive connection to hold up the server's stop
    assert twin.messages(), "the token was not in use: the search would prove nothing"

    # Firestore: every field of every document in every collection.
    found = search_firestore(db, [*SECRETS.values(), *PII.values()])
    leaks = [(where, what) for where, what in found if what in SECRETS.values()]
    assert leaks == []
    misplaced = [(where, what) for where, what in found if (where[0], where[2]) not in ALLOWED]
    assert misplaced == []
    # The allowed places do hold it (so the search works), and only while the event is unsent.
    records = {natural_id(d.id): d.to_dict() for d in db.collection("notifications").stream()}
    holding = {natural_id(where[1]) for where, _ in found if where[0] == "notifications"}
    unsent = {i for i, r in records.items() if r["status"] != "sent"}
    assert holding == unsent
    names = {outcomes[n][1]["id"]: n for n in outcomes}
    assert sorted(names[i] for i in unsent) == [
        "failed-400",
        "pending-401",
        "pending-429",
        "pending-5xx",
    ]
    assert {where[1] for where, _ in found if where[0] == "rejected"} == {
        document_key(f"pubsub-m-{name}") for name in hostile
    }

    # The function's whole output (JSON lines, and anything else it printed) and its answers.
    output = log_path.read_text(errors="replace")
    for needle in [*SECRETS.values(), *PII.values()]:
        assert needle not in output, needle
    for response in run.answers:
        text = response.text + json.dumps(dict(response.headers))
        for needle in [*SECRETS.values(), *PII.values()]:
            assert needle not in text
    # ...and the output is the one that told of these deliveries, at every severity.
    lines = log_lines(log_path)
    logged = {line.get("pubsub_message_id") for line in lines}
    assert {f"m-{n}" for n in [*outcomes, *hostile]} <= logged
    assert {line["severity"] for line in lines} >= {"INFO", "WARNING", "ERROR"}


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"NOTIFIER_LEASE_SECONDS": "1"}, id="misconfigured"),
        pytest.param({"SVIX_SERVER_URL": f"http://127.0.0.1:{free_port()}"}, id="svix-unreachable"),
    ],
)
def test_failures_outside_the_outcome_table_leak_no_token(
    firestore_emulator, db, twin, tmp_path, overrides
):
    """A configuration error (raised, with a traceback) and a Svix that cannot be reached."""
    log_path = tmp_path / "function.log"
    with function_server(firestore_emulator, twin, log_path, **overrides) as server:
        run = Run(server.url)
        status = run.deliver(event(), "m-1")
        run.client.close()
    assert status in (500, 503)
    output = log_path.read_text(errors="replace")
    assert "m-1" in output or "Traceback" in output  # the failure was written out
    if "NOTIFIER_LEASE_SECONDS" in overrides:  # and said, as a structured line, for the alert
        lines = [json.loads(x) for x in output.splitlines() if x.startswith("{")]
        assert any(
            e["severity"] == "ERROR" and "NOTIFIER_LEASE_SECONDS" in e["message"] for e in lines
        )
    for response in run.answers:
        output += response.text + json.dumps(dict(response.headers))
    for needle in [*SECRETS.values(), *PII.values()]:
        assert needle not in output
    found = search_firestore(db, [*SECRETS.values(), *PII.values()])
    assert [hit for hit in found if (hit[0][0], hit[0][2]) not in ALLOWED] == []


# --- searching Firestore ------------------------------------------------------------------------


def search_firestore(db, needles: list[str]) -> list[tuple[tuple[str, str, str], str]]:
    """Every (collection, document, top-level field) whose value holds a needle, and the needle.

    Bytes are searched as they are and, for a compressed ``payload``, decompressed.
    """
    found = []
    for collection in db.collections():
        for snapshot in collection.stream():
            for field, value in (snapshot.to_dict() or {}).items():
                blob = flatten(value, decompress=field == "payload")
                for needle in needles:
                    if needle.encode() in blob:
                        found.append(((collection.id, snapshot.id, field), needle))
    return found


def flatten(value: Any, *, decompress: bool = False) -> bytes:
    if isinstance(value, bytes):
        if decompress:
            try:
                return value + zlib.decompress(value)
            except zlib.error:
                return value
        return value
    if isinstance(value, dict):
        return b"\n".join(flatten(k) + b"=" + flatten(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return b"\n".join(flatten(v) for v in value)
    return str(value).encode("utf-8", "surrogatepass")
