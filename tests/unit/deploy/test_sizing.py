"""The event function sized on purpose: --target-rate through SCALING.md's capacity model,
computed here from its measured inputs; explicit sizing wins."""

from __future__ import annotations

import pytest

from benchmarks import costs
from tests.unit.deploy.plan import (
    PROJECT,
    dry_run,
    env_vars,
    flag,
)
from tests.unit.deploy.running import ROOT, scrubbed_env


def expected_sizing(rate: int, latency_ms: int = 300) -> dict[str, int]:
    """The capacity model of SCALING.md, computed here from its inputs."""
    cpu_ms = costs.benchmark_cpu_ms()  # BENCHMARKS.md's, as SCALING.md's cost model
    per_instance = int(0.60 * 1000 / cpu_ms)  # Cloud Run's 60% CPU target, 1 vCPU
    needed = -(-rate // per_instance)
    return {
        "per_instance": per_instance,
        "needed": needed,
        "max-instances": min(1000, max(2, 2 * needed)),
        "min-instances": -(-needed // 4),
        "concurrency": max(2, -(-per_instance * latency_ms // 1000)),
        "cpu": 1,
    }


@pytest.mark.parametrize("rate", [100, 1000, 10000])
def test_target_rate_derives_the_event_functions_capacity(tmp_path, rate):
    plan = dry_run(tmp_path, "--project", PROJECT, f"--target-rate={rate}")
    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    expected = expected_sizing(rate)
    for name in ("max-instances", "min-instances", "concurrency", "cpu"):
        assert int(flag(deploy, name)) == expected[name], name
    assert env_vars(deploy)["THREADS"] == str(expected["concurrency"])
    # In flight at most: enough for the rate at the planned latency.
    assert expected["max-instances"] * expected["concurrency"] >= rate * 0.3
    # The plan says which model it used.
    assert f"--target-rate={rate} events/s: {expected['per_instance']} events/s" in plan.stdout
    # The HTTP functions keep their own sizing.
    http = plan.one("gcloud", "functions", "deploy", "notifier-notifications")
    assert flag(http, "max-instances") == "10"


def test_explicit_sizing_wins_over_the_target_rate(tmp_path):
    plan = dry_run(
        tmp_path, "--project", PROJECT, "--target-rate=1000", "--max-instances=30",
        "--concurrency=20",
    )  # fmt: skip
    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    assert flag(deploy, "max-instances") == "30"
    assert flag(deploy, "concurrency") == "20"
    assert int(flag(deploy, "min-instances")) == expected_sizing(1000)["min-instances"]
    env = scrubbed_env(tmp_path, NOTIFIER_MAX_INSTANCES="40")
    plan = dry_run(tmp_path, "--project", PROJECT, "--target-rate=1000", env=env)
    assert flag(plan.one("gcloud", "functions", "deploy", "notifier"), "max-instances") == "40"


def test_scaling_md_shows_what_deploy_sh_derives(tmp_path):
    """SCALING.md's sizing table is the script's output, not a copy that drifts."""
    text = (ROOT / "SCALING.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().replace(",", "") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `--target-rate=") and len(cells) >= 6:
            rows[int(cells[0].strip("`").split("=")[1])] = cells
    assert set(rows) == {100, 1000, 10000}
    for rate, cells in rows.items():
        plan = dry_run(tmp_path, "--project", PROJECT, f"--target-rate={rate}")
        deploy = plan.one("gcloud", "functions", "deploy", "notifier")
        expected = expected_sizing(rate)
        assert int(cells[1]) == expected["needed"]
        assert [int(c) for c in cells[2:6]] == [
            int(flag(deploy, n)) for n in ("max-instances", "min-instances", "concurrency", "cpu")
        ]


def test_scaling_md_prose_quotes_benchmarks_md_and_the_model():
    """The figures SCALING.md's model is written in (CPU, latency, events per instance, its
    concurrency, instances, a cold start) are BENCHMARKS.md's and the model's, not old copies."""
    text = (ROOT / "SCALING.md").read_text()
    cpu = costs.benchmark_cpu_ms()
    cpu_at = {
        int(r[0]): float(r[3])
        for r in costs.benchmark_rows("## Where the CPU goes")
        if r[1:3] == ["new", "function"]
    }
    p50_at = {
        int(r[0]): round(float(r[3]))
        for r in costs.benchmark_rows("### New events")
        if r[1] == "function"
    }
    [listening] = [
        r[1]
        for r in costs.benchmark_rows("## Cold start")
        if r[0] == "new instance: process start until it listens"
    ]
    model = expected_sizing(100)
    per_instance, concurrency = model["per_instance"], model["concurrency"]
    quoted = [
        f"| CPU per event in the function | {cpu:.2f} ms (the highest of the function's figures "
        f"for new events; {cpu_at[8]:.2f} ms at concurrency 8, {cpu_at[32]:.2f} ms at "
        "concurrency 32) |",
        f"| latency per event, locally | {p50_at[1]} ms p50 alone, {p50_at[8]} ms at 8 "
        f"concurrent, {p50_at[32]} ms at 32 concurrent,",
        f"0.6 / {cpu:.2f} ms = **{per_instance} events/s per instance**.",
        f"{per_instance} x 0.3 s = {per_instance * 0.3:.3g}, rounded up:",
        f"**`--concurrency={concurrency}`**",
        f"a new instance takes {listening} s from its process start to listening",
    ]
    flat = " ".join(text.split())
    for figure in quoted:
        assert " ".join(figure.split()) in flat, figure
    sized = [expected_sizing(rate) for rate in (100, 1000, 10000)]
    cells = " | ".join(f"{s['needed']:,}, max {s['max-instances']:,}" for s in sized)
    top = sized[-1]["max-instances"]  # 1 vCPU and 512 MiB each
    cap = f"{top:,} vCPU and {top / 2:,.0f} GiB at the cap"
    assert f"| function instances (1 vCPU, 512 MiB) | {cells}: {cap} |" in flat
