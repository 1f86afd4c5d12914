"""``make bench``: every figure in one run on one machine, written to BENCHMARKS.md.

``python -m benchmarks.run [--rounds N] [--quick] [--output PATH]``; ``--quick`` is a smoke run
of a few seconds per part (figures too small to mean anything, the file still complete).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks import (
    coldstart,
    costs,
    drift,
    machine,
    once,
    own_cpu,
    plots,
    profile,
    roundtrips,
    throughput,
)
from benchmarks.report import Figures, Report
from benchmarks.roundtrips import environment
from benchmarks.stack import SVIX_LATENCY, Stack
from devstack.function_server import ROOT


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="throughput rounds (default 7)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny counts")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    plan = throughput.Plan(rounds=args.rounds)
    cold_runs, first_runs = 7, 5
    if args.quick:
        plan = throughput.Plan(rounds=1, counts={1: 10, 8: 40, 32: 64}, warmup=20, slices=2)
        cold_runs, first_runs = 2, 1
    info = machine.describe()
    info["svix_latency"] = f"{SVIX_LATENCY:g}"
    load_before = machine.load()
    _say(f"machine: {info['cpu']}, {info['cores']} cores; load average {load_before}")

    _say(f"cold start: importing main and the bare dependencies, {cold_runs} runs each")
    cold = coldstart.imports(cold_runs)
    cold.probe = coldstart.probe()
    extras = machine.jsonschema_extras()
    _say("the drift check: per event with each validator, once per instance")
    drift_cost = drift.measure(runs=2 if args.quick else 7, loops=20 if args.quick else 200)
    with Stack() as stack:
        _say("done once: validator, clients, sender")
        with environment(stack.env(NOTIFIER_LOG_LEVEL="ERROR")):
            done_once = once.measure(runs=3 if args.quick else 5)
        _say("the function's own CPU per event, in-process, beside the floor's")
        own = own_cpu.measure(
            stack, per_block=20 if args.quick else 150, blocks=2 if args.quick else 9
        )
        _say("round trips per event, counted")
        trips = {variant: roundtrips.measure(stack, variant) for variant in roundtrips.VARIANTS}
        _say(
            f"throughput: {plan.rounds} rounds of {len(throughput.SETUPS)} setups at concurrency "
            + ", ".join(str(c) for c in sorted(plan.counts))
        )
        results = throughput.measure(stack, plan, _say)
        _say(f"cold start: {first_runs} new function instances to their first event")
        coldstart.first_events(stack, cold, first_runs)
        _say("profile of the served function (py-spy)")
        profiled = profile.profile(stack, events_count=200 if args.quick else 1500)
    figures = Figures(
        machine=info,
        load_before=load_before,
        load_after=machine.load(),
        plan=plan,
        results=results,
        trips=trips,
        cold=cold,
        extras=extras,
        once=done_once,
        profile=profiled,
        seconds=time.perf_counter() - started,
        drift=drift_cost,
        own_cpu=own,
        plots=plots.draw(results, sorted(plan.counts), args.output.parent / plots.RELATIVE),
    )
    args.output.write_text(Report(figures).render())
    _say(f"wrote {args.output} in {figures.seconds / 60:.1f} min")
    if args.output.resolve() == (ROOT / "BENCHMARKS.md").resolve():
        changed = costs.update_scaling()
        _say(f"SCALING.md's cost tables {'rewritten' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
