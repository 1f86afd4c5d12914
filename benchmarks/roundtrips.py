"""Round trips per event, counted on the function's own code (``notifier.handlers.pubsub.handle``).

Run in-process against the same emulator and twin: Firestore RPCs are counted in the client
(:mod:`benchmarks.counting`), Svix calls by the twin, which records every request it answers.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from benchmarks import claim_variants, events
from benchmarks.counting import firestore_rpcs, split
from benchmarks.stack import Stack

PER_SCENARIO = 10
VARIANTS = ("function", "read-first")
NEW = "new event"
REDELIVERED = "duplicate of a sent event, redelivered by Pub/Sub (deliveryAttempt 2)"
REPUBLISHED = "duplicate of a sent event, published again (a new message, deliveryAttempt 1)"
NEW_PROJECT = "new project (first event of a project)"
NEW_INSTANCE = "first event of a new instance (known project)"
LONG = "new event that waits out a 429 (Retry-After 4 s): longer than a renewal period (10 s / 3)"
LONG_EVENTS = 2  # a wait each: a few seconds of the run


@dataclass
class Trips:
    scenario: str
    events: int
    firestore: Counter
    refused: Counter  # Firestore calls that failed, such as a create of a document that exists
    svix: Counter

    def per_event(self, counts: Counter) -> dict[str, float]:
        return {name: n / self.events for name, n in sorted(counts.items())}

    @property
    def reads(self) -> float:
        return split(self.firestore)[0] / self.events

    @property
    def writes(self) -> float:
        return split(self.firestore)[1] / self.events

    @property
    def refused_calls(self) -> float:
        return sum(self.refused.values()) / self.events

    @property
    def firestore_calls(self) -> float:
        return sum(self.firestore.values()) / self.events

    @property
    def svix_calls(self) -> float:
        return sum(self.svix.values()) / self.events


def measure(stack: Stack, variant: str = "function") -> list[Trips]:
    """The cases a delivery can meet, each over a few events, counted per event."""
    assert stack.twin is not None
    from notifier import bootstrap
    from notifier.handlers import pubsub

    swap = claim_variants.read_first() if variant == "read-first" else contextlib.nullcontext()
    results = []
    quiet = stack.env(NOTIFIER_LOG_LEVEL="ERROR")  # the log lines would only go to this console
    with environment(quiet), firestore_rpcs() as rpcs, swap:

        def run(
            scenario: str,
            batch: list[dict],
            attempt: int = 1,
            fresh_instance: bool = False,
            before_each: Callable[[], None] | None = None,
            republished: bool = False,
        ) -> None:
            before = len(stack.twin.calls())
            rpcs.take()
            for event in batch:
                if fresh_instance:
                    _forget()
                if before_each is not None:
                    before_each()
                envelope = events.envelope(event, attempt, republished=republished)
                pubsub.handle(envelope, bootstrap.dependencies())
            svix = Counter(call["op"] for call in stack.twin.calls()[before:])
            results.append(Trips(scenario, len(batch), *rpcs.take(), svix))

        _forget()
        warm = events.envelope(events.events(f"{variant}-warm", 1, "known")[0])
        pubsub.handle(warm, bootstrap.dependencies())
        sent = events.events(f"{variant}-new", PER_SCENARIO, "known")
        run(NEW, sent)
        run(REDELIVERED, sent, attempt=2)
        run(REPUBLISHED, sent, republished=True)
        new_projects = [
            events.events(f"{variant}-proj{i}", 1, f"{variant}-project-{i}")[0]
            for i in range(PER_SCENARIO)
        ]
        run(NEW_PROJECT, new_projects)
        cold = events.events(f"{variant}-cold", 3, "known")
        run(NEW_INSTANCE, cold, fresh_instance=True)
        if variant == "function":  # the claim is renewed only by a delivery this long
            told = [{"op": "msg.create", "status": 429, "retry_after": 4, "times": 1}]
            waiting = events.events(f"{variant}-long", LONG_EVENTS, "known")
            run(LONG, waiting, before_each=lambda: stack.twin.set_faults(told))
            stack.twin.set_faults([])
        _forget()
    return results


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` while the block runs (the servers started later must not
    inherit them)."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _forget() -> None:
    """A new instance: the next delivery builds its clients again (the old ones are closed)."""
    from notifier import bootstrap

    built = bootstrap.built()
    bootstrap.reset()
    if built is not None:
        built.sender.close()


def main() -> int:
    """Only the round-trip table (``make bench`` runs it among the rest), printed: a quick check
    that a change to the hot path kept its calls."""
    from benchmarks.report import _VARIANT_LABELS

    with Stack() as stack:
        for variant in VARIANTS:
            for trips in measure(stack, variant):
                rpcs = ", ".join(f"{k} {v:g}" for k, v in trips.per_event(trips.firestore).items())
                svix = ", ".join(f"{k} {v:g}" for k, v in trips.per_event(trips.svix).items())
                print(
                    f"{_VARIANT_LABELS[variant]} | {trips.scenario} | reads {trips.reads:g} | "
                    f"writes {trips.writes:g} | refused {trips.refused_calls:g} | "
                    f"Svix {trips.svix_calls:g} | {rpcs or '-'} | {svix or '-'}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
