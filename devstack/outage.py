"""``make run``'s outage: one sample customer's endpoint down for days, shown in seconds.

The twin runs Svix's real retry schedule on its clock (``run_schedule`` moves the clock to each
queued attempt) and sends its operational webhooks, signed, to ``operational_webhooks``, which
``notifier operational setup`` registered as deploy.sh does. The endpoint refuses connections:
the events published meanwhile fail 8 times over ~28 h (failing after the 4th attempt, exhausted
after the 8th); five days on one more is exhausted and Svix disables the endpoint; the customer
fixes it and ``notifier recover --project P`` brings each missed event back, once. ``notifier
status --json`` is read after each step and only ids, states, times and status codes of it are
printed: never an endpoint URL, never a secret.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devstack.customer_endpoint import CustomerEndpoint
from devstack.function_server import ROOT
from devstack.operator_cli import notifier
from devstack.svix_twin.delivery import REAL_SCHEDULE, SHORT_SCHEDULE
from devstack.svix_twin.server import SvixTwin
from devstack.tables import print_table
from notifier.cli.output import age

SAMPLES = ROOT / "samples" / "events"
# svix-server config.default.toml `endpoint_failure_disable_after` (hours), the twin's default.
DISABLE_AFTER_SECONDS = 120 * 3600
ATTEMPTS = len(REAL_SCHEDULE) + 1  # the immediate attempt, then one per retry
EVENTS_AT_FIRST = 2  # published as the endpoint goes down; one more five days on


def outage_events(project: str, count: int) -> list[tuple[str, bytes]]:
    """``count`` new events of ``project`` (its sample events, new ids): (event id, payload)."""
    samples = [
        event
        for event in (json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.json")))
        if event["project"] == project
    ]
    events = []
    for n in range(count):
        event = {**samples[n % len(samples)], "id": f"evt_outage_{n + 1}"}
        events.append((event["id"], json.dumps(event).encode()))
    return events


@dataclass
class Step:
    """One step of the outage as ``notifier status --json`` saw it after it."""

    label: str
    clock: str
    endpoint: dict[str, Any] | None  # this project's entry in `endpoints`; None: healthy
    given_up: set[str]  # this project's `exhausted_events`
    exit_code: int
    good: bool

    def row(self) -> tuple[object, ...]:
        e = self.endpoint or {}
        return (
            self.label,
            self.clock,
            e.get("state", "healthy"),
            _minutes(e.get("since")),
            _dash(e.get("last_status_code")),
            _dash(e.get("changed_by")),
            len(self.given_up),
            self.exit_code,
            "ok" if self.good else "UNEXPECTED",
        )


class Outage:
    """The outage at ``project``'s endpoint ``endpoint`` (its uid), step by step."""

    def __init__(
        self,
        twin: SvixTwin,
        customer: CustomerEndpoint,
        publish: Callable[[list[bytes]], object],
        *,
        project: str,
        endpoint: str,
        env: dict[str, str],
        timeout: float,
    ) -> None:
        self.twin, self.customer, self.publish = twin, customer, publish
        self.project, self.endpoint, self.env, self.timeout = project, endpoint, env, timeout
        self.steps: list[Step] = []

    def show(self) -> bool:
        """Runs the outage and prints it; True when every step went as Svix and we promise."""
        print(
            f"\na customer's endpoint down for days, in seconds: {self.project}'s endpoint "
            f"{self.endpoint} refuses connections;\nthe twin runs Svix's retry schedule "
            f"({ATTEMPTS} attempts over ~28 h) and its 120 h disable rule on a clock moved forward"
        )
        events = outage_events(self.project, EVENTS_AT_FIRST + 1)
        ids = [event_id for event_id, _ in events]
        self.twin.configure(retry_schedule=REAL_SCHEDULE)
        self.twin.fail_endpoint(self.project, self.endpoint, None)  # the customer's server is down
        try:
            self._deliver(events[:EVENTS_AT_FIRST])
            self._step(
                f"endpoint down; {EVENTS_AT_FIRST} events, {ATTEMPTS} attempts each",
                lambda e, gone: e is not None and e["state"] == "failing"
                and set(ids[:EVENTS_AT_FIRST]) <= gone,
                want_exit=0,
            )  # fmt: skip
            self.twin.advance_clock(DISABLE_AFTER_SECONDS)
            self._deliver(events[EVENTS_AT_FIRST:])
            self._step(
                f"5 days on, still down: 1 more event, {ATTEMPTS} attempts",
                lambda e, gone: e is not None and e["state"] == "disabled" and set(ids) <= gone,
                want_exit=1,
            )
            self.twin.heal_endpoint(self.project, self.endpoint)  # the customer: "fixed it"
            recovered = self._recover()
            self.customer.wait(lambda got: set(ids) <= {r.event_id for r in got}, self.timeout)
            self.twin.wait_for_deliveries(5.0)  # let any second delivery land before counting
            self._step(
                f"fixed; notifier recover --project {self.project}",
                lambda e, gone: e is None,
                want_exit=0,
            )
        except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:  # not in time
            print(f"the outage stopped short: {exc}")
            return False
        finally:
            self.twin.heal_endpoint(self.project, self.endpoint)
            self.twin.configure(retry_schedule=SHORT_SCHEDULE)
        print(f"\nnotifier status --json after each step ({self.project}'s endpoint):")
        print_table(
            ("step", "twin's clock", "state", "since", "last status", "changed by",
             "given up", "exit", ""),
            [step.row() for step in self.steps],
        )  # fmt: skip
        print(f"\nnotifier recover --project {self.project}:")
        print("".join(f"  {line}\n" for line in recovered.stdout.splitlines()), end="")
        missed = self._missed(ids)
        return all(s.good for s in self.steps) and recovered.returncode == 0 and missed

    def _deliver(self, events: list[tuple[str, bytes]]) -> None:
        """Publishes the events, waits until Svix has them, then runs the retry schedule out."""
        self.publish([payload for _, payload in events])
        wanted = {event_id for event_id, _ in events}
        deadline = time.monotonic() + self.timeout
        while not wanted <= {m["eventId"] for m in self.twin.messages()}:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Svix did not get {sorted(wanted)} in {self.timeout:g} s")
            time.sleep(0.2)
        self.twin.run_schedule()
        self.twin.wait_for_deliveries(self.timeout)  # the operational webhooks, delivered

    def _step(
        self, label: str, done: Callable[[dict[str, Any] | None, set[str]], bool], want_exit: int
    ) -> None:
        """Reads ``status --json`` until ``done(endpoint, given_up)`` holds (or the timeout)."""
        deadline = time.monotonic() + self.timeout
        while True:
            endpoint, given_up, code = self._status()
            good = done(endpoint, given_up) and code == want_exit
            if good or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ahead = self.twin.clock.utcnow() - datetime.now(UTC)
        clock = f"{self.twin.clock.utcnow():%Y-%m-%d %H:%M}Z (+{age(ahead)})"
        self.steps.append(Step(label, clock, endpoint, given_up, code, good))

    def _status(self) -> tuple[dict[str, Any] | None, set[str], int]:
        done = notifier(["status", "--json"], self.env)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"notifier status failed: {done.stderr.strip()}")
        report = json.loads(done.stdout)
        mine = [e for e in report["endpoints"] if e["project"] == self.project]
        given_up = {
            x["event_id"] for x in report["exhausted_events"] if x["project"] == self.project
        }
        return (mine[0] if mine else None), given_up, done.returncode

    def _recover(self) -> subprocess.CompletedProcess[str]:
        done = notifier(["recover", "--project", self.project], self.env)
        if done.returncode != 0:
            print(f"notifier recover failed ({done.returncode}): {done.stderr.strip()}")
        return done

    def _missed(self, ids: list[str]) -> bool:
        """What the customer's endpoint got of the missed events: each once, signature valid."""
        attempts = self.twin.attempts()
        received = self.customer.received()
        rows, ok = [], True
        for event_id in ids:
            failed = sum(1 for a in attempts if a["event_id"] == event_id and a["status"] == "fail")
            got = [r for r in received if r.event_id == event_id]
            valid = bool(got) and all(r.signature_valid for r in got)
            good = failed == ATTEMPTS and len(got) == 1 and valid
            ok &= good
            signature = "valid" if valid else ("-" if not got else "INVALID")
            rows.append((event_id, failed, len(got), signature, "ok" if good else "UNEXPECTED"))
        print(
            f"\nthe events {self.project}'s endpoint missed, at the sample customer's endpoint "
            "after recover:"
        )
        print_table(("event id", "failed attempts", "deliveries", "signature", ""), rows)
        return ok


def _minutes(moment: str | None) -> str:
    if not moment:
        return "-"
    return f"{datetime.fromisoformat(moment).astimezone(UTC):%Y-%m-%d %H:%M}Z"


def _dash(value: object) -> object:
    return "-" if value is None else value
