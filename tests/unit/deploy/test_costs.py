"""SCALING.md's cost model: its tables are recomputed here from BENCHMARKS.md's CPU per event and
SCALING.md's own price table, so the model moves when the code does (``make bench`` rewrites
them); and the arithmetic is checked by hand on figures anyone can redo."""

from __future__ import annotations

import re

import pytest

from benchmarks import costs
from tests.unit.deploy.running import ROOT


def scaling() -> str:
    return (ROOT / "SCALING.md").read_text()


def test_scaling_md_cost_tables_are_the_model_on_benchmarks_md_cpu():
    text = scaling()
    block = text.split(costs.BEGIN, 1)[1].split(costs.END, 1)[0].strip("\n").splitlines()
    expected = costs.tables(costs.benchmark_cpu_ms(), costs.prices(text))
    assert block == expected[:-1], "\n".join(["run: python -m benchmarks.costs", *expected])


def test_the_cpu_figure_is_the_one_deploy_sh_sizes_with():
    """One CPU figure for the sizing and the costs: deploy's MODEL_CPU_MS is BENCHMARKS.md's."""
    functions = (ROOT / "deploy" / "functions.sh").read_text()
    model = float(re.search(r"readonly MODEL_CPU_MS=([0-9.]+)", functions).group(1))
    assert model == costs.benchmark_cpu_ms()


def test_prices_are_read_per_unit_from_the_price_table():
    p = costs.prices(scaling())
    assert p.write == pytest.approx(0.09 / 100_000)
    assert p.delete == pytest.approx(0.01 / 100_000)
    assert p.request == pytest.approx(0.40 / 1e6)
    assert p.vcpu_second == pytest.approx(0.000024)
    assert p.pubsub_tib == 40 and p.svix_message == pytest.approx(0.0001)


def test_every_price_names_a_source_listed_at_the_end():
    text = scaling()
    table = text.split(costs.PRICE_HEADER, 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(costs._ROWS)
    sources = text.split("## Sources", 1)[1]
    for row in rows:
        cited = re.findall(r"\[([A-Z]+-[A-Z]+)\]", row)
        assert cited, row
        assert all(f"- [{name}]" in sources for name in cited), row


def test_the_model_by_hand():
    """The issue's own figures: at 10,000 events/s two writes per event are 1.7 billion writes a
    day; 3 ms of CPU at a 60% target bills 5 ms of vCPU time; Svix's list price dominates."""
    p = costs.prices(scaling())
    assert 10_000 * costs.DAY * costs.WRITES_PER_EVENT == 1_728_000_000
    parts = costs.per_event(3.0, p)
    assert parts["Cloud Run vCPU-seconds"] == pytest.approx(0.005 * 0.000024)
    assert parts["Cloud Run GiB-seconds"] == pytest.approx(0.005 * 0.5 * 0.0000025)
    assert parts["Firestore writes"] == pytest.approx(2 * 0.09 / 100_000)
    # 1 KiB kept 30 days: 30/30.42 of a GiB-month per GiB.
    assert parts["Firestore storage"] == pytest.approx(1024 / 2**30 * 30 / (730 / 24) * 0.18)
    assert parts["Pub/Sub throughput"] == pytest.approx(4000 / 2**40 * 40)
    google = sum(v for k, v in parts.items() if not k.startswith("Svix"))
    assert parts["Svix messages"] > 10 * google
    assert max((v, k) for k, v in parts.items() if not k.startswith("Svix"))[1] == (
        "Firestore writes"
    )
    # The table moves with the CPU: twice the CPU, twice the Cloud Run CPU line.
    assert costs.per_event(6.0, p)["Cloud Run vCPU-seconds"] == pytest.approx(
        2 * parts["Cloud Run vCPU-seconds"]
    )
