"""Throughput and latency: the function against the floor, new events and duplicates.

Five setups, each at every concurrency, in rounds whose order rotates so that the machine's
noise spreads over all of them (the function and the HTTP floor, whose ratio the targets are,
back to back, their batches in slices that alternate):

- ``function``: ``on_event`` under functions-framework (gunicorn threads), as deployed;
- ``function, no drift check``: the same without the catalog's drift check (its before);
- ``function, read-first claim``: the same with the claim the store does not use (comparison);
- ``HTTP floor``: the floor's calls behind functions-framework (``http_floor.py``);
- ``floor``: the floor's calls on the raw clients, in-process (``floor.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from google.cloud import firestore

from benchmarks import events, stats
from benchmarks.floor import Floor, svix_client
from benchmarks.load import Run, drive, http_worker, shared_worker
from benchmarks.procstat import group_cpu, own_cpu
from benchmarks.stack import PROJECT, TOKEN, Stack

FUNCTION = "function"
READ_FIRST = "function, read-first claim"
NO_DRIFT = "function, no drift check"  # as before issue 13.4: the catalog check left out
HTTP_FLOOR = "HTTP floor"
FLOOR = "floor"
SETUPS = (FUNCTION, NO_DRIFT, READ_FIRST, HTTP_FLOOR, FLOOR)
NEW, DUPLICATE, REPUBLISHED = "new", "duplicate", "republished"
# Duplicates are Pub/Sub redeliveries of sent events (deliveryAttempt 2), the usual kind;
# "republished" ones are the same events published again as new messages (deliveryAttempt 1),
# measured for the two claims only.


@dataclass(frozen=True)
class Plan:
    rounds: int = 7
    counts: dict[int, int] = field(default_factory=lambda: {1: 60, 8: 400, 32: 400})
    warmup: int = 200  # events per setup before the first round: JIT, pools, caches
    slices: int = 4  # the function's and the HTTP floor's batches, run in alternating slices

    @property
    def threads(self) -> int:
        return max(self.counts)


@dataclass
class Result:
    setup: str
    concurrency: int
    kind: str
    rates: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)  # ms per event, per process
    svix_calls: list[float] = field(default_factory=list)  # per event
    failures: int = 0

    def add(self, run: Run, cpu: dict[str, float], svix_calls: float) -> None:
        self.rates.append(run.rate)
        self.latencies.extend(run.latencies)
        for name, seconds in cpu.items():
            self.cpu.setdefault(name, []).append(1000 * seconds / run.count)
        self.svix_calls.append(svix_calls / run.count)
        self.failures += run.failures

    @property
    def rate(self) -> float:
        return stats.median(self.rates)

    @property
    def p50(self) -> float:
        return stats.percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return stats.percentile(self.latencies, 99)

    def cpu_ms(self, name: str) -> float | None:
        values = self.cpu.get(name)
        return stats.median(values) if values else None


class _Setup:
    """One way of doing the job: how to drive new events and duplicates, and whose CPU counts."""

    def __init__(
        self, name: str, run: Callable[[list[dict], int, str], Run], pgid: int | None
    ) -> None:
        self.name = name
        self.run = run
        self.pgid = pgid


def _served(name: str, url: str, pgid: int, floor_mode: bool = False) -> _Setup:
    def run(batch: list[dict], concurrency: int, kind: str) -> Run:
        requests = []
        for event in batch:
            attempt = 2 if kind == DUPLICATE else 1
            headers, body = events.request(event, attempt, republished=kind == REPUBLISHED)
            if floor_mode and kind == DUPLICATE:
                headers = {**headers, "ce-benchmode": "duplicate"}
            requests.append((headers, body))
        return drive(requests, concurrency, http_worker(url))

    return _Setup(name, run, pgid)


def _in_process(floor: Floor) -> _Setup:
    def run(batch: list[dict], concurrency: int, kind: str) -> Run:
        work = floor.new if kind == NEW else floor.duplicate
        return drive(batch, concurrency, shared_worker(work))

    return _Setup(FLOOR, run, None)


def measure(stack: Stack, plan: Plan, progress: Callable[[str], None]) -> dict[tuple, Result]:
    assert stack.firestore is not None and stack.twin is not None
    function = stack.server("on_event", plan.threads, "function")
    read_first = stack.server(
        "on_event", plan.threads, "read_first", FUNCTION_SOURCE="benchmarks/read_first_main.py"
    )
    no_drift = stack.server(
        "on_event", plan.threads, "no_drift", FUNCTION_SOURCE="benchmarks/no_drift_main.py"
    )
    http_floor = stack.server(
        "floor", plan.threads, "http_floor", FUNCTION_SOURCE="benchmarks/http_floor.py"
    )
    floor = Floor(firestore.Client(project=PROJECT), svix_client(TOKEN, stack.twin.url))
    setups = [
        _served(FUNCTION, function.url, _pgid(function)),
        _served(NO_DRIFT, no_drift.url, _pgid(no_drift)),
        _served(READ_FIRST, read_first.url, _pgid(read_first)),
        _served(HTTP_FLOOR, http_floor.url, _pgid(http_floor), floor_mode=True),
        _in_process(floor),
    ]
    results: dict[tuple, Result] = {}

    def measured(
        setup: _Setup, batch: list[dict], concurrency: int, kind: str
    ) -> tuple[Run, dict[str, float], int]:
        before = _cpu(stack, setup)
        calls = len(stack.twin.calls())
        run = setup.run(batch, concurrency, kind)
        after = _cpu(stack, setup)
        return run, {k: after[k] - before[k] for k in after}, len(stack.twin.calls()) - calls

    def record(
        setup: _Setup, concurrency: int, kind: str, parts: list[tuple[Run, dict[str, float], int]]
    ) -> None:
        runs = [run for run, _, _ in parts]
        run = Run(
            concurrency,
            sum(r.count for r in runs),
            sum(r.seconds for r in runs),
            [latency for r in runs for latency in r.latencies],
            sum(r.failures for r in runs),
        )
        cpu = {name: sum(c[name] for _, c, _ in parts) for name in parts[0][1]}
        key = (setup.name, concurrency, kind)
        result = results.setdefault(key, Result(setup.name, concurrency, kind))
        result.add(run, cpu, sum(svix for _, _, svix in parts))

    def sample(setup: _Setup, batch: list[dict], concurrency: int, kind: str) -> None:
        record(setup, concurrency, kind, [measured(setup, batch, concurrency, kind)])

    def sample_pair(pair: list[_Setup], batches: list[list[dict]], concurrency: int) -> None:
        """The pair the targets compare, in slices that alternate A B, B A, A B...: both meet
        the same seconds of the machine, whose noise moves faster than a whole batch."""
        size = -(-len(batches[0]) // plan.slices)
        for kind in (NEW, DUPLICATE):
            parts: list[list[tuple[Run, dict[str, float], int]]] = [[], []]
            for i in range(plan.slices):
                for j in (0, 1) if i % 2 == 0 else (1, 0):
                    piece = batches[j][i * size : (i + 1) * size]
                    if piece:
                        parts[j].append(measured(pair[j], piece, concurrency, kind))
            for j in (0, 1):
                record(pair[j], concurrency, kind, parts[j])

    for round_ in range(plan.rounds):
        stack.reset()
        warmup = plan.warmup if round_ == 0 else 20
        for setup in setups:
            # At the highest concurrency: every pool (threads, connections) full before timing.
            batch = events.events(f"warm-{_slug(setup.name)}-{round_}", warmup)
            setup.run(batch, plan.threads, NEW)
        groups = _order(setups, round_)
        for concurrency, count in sorted(plan.counts.items()):
            for group in groups:
                batches = [
                    events.events(f"{_slug(s.name)}-r{round_}-c{concurrency}", count) for s in group
                ]
                if len(group) == 2:
                    sample_pair(group, batches, concurrency)
                else:
                    sample(group[0], batches[0], concurrency, NEW)
                    sample(group[0], batches[0], concurrency, DUPLICATE)
                for member, batch in zip(group, batches, strict=True):
                    if member.name in (FUNCTION, READ_FIRST):
                        sample(member, batch, concurrency, REPUBLISHED)
            progress(f"round {round_ + 1}/{plan.rounds}, concurrency {concurrency}: done")
    floor.close()
    return results


def _order(setups: list[_Setup], round_: int) -> list[list[_Setup]]:
    """The round's order, in groups run one after another: the function and the HTTP floor are
    one group (the pair the targets compare, run together in alternating slices), first one then
    the other in turn; each other setup is a group of its own, rotating around the pair."""
    pair = [s for s in setups if s.name in (FUNCTION, HTTP_FLOOR)]
    others = [[s] for s in setups if s not in pair]
    if round_ % 2:
        pair.reverse()
    at = round_ % (len(others) + 1)
    return [*others[:at], pair, *others[at:]]


def _pgid(server) -> int:
    """FunctionServer starts its process as a session leader: its pid is the group's id."""
    return server._process.pid


def _cpu(stack: Stack, setup: _Setup) -> dict[str, float]:
    assert stack.firestore is not None and stack.twin is not None
    return {
        "function": group_cpu(setup.pgid) if setup.pgid else 0.0,
        "emulator": group_cpu(stack.firestore.pgid),
        "twin": group_cpu(stack.twin.pgid),
        "benchmark": own_cpu(),
    }


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)
