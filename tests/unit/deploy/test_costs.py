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


def _capacity(rate: int) -> dict[str, str]:
    """The capacity model's line of deploy's recorded plan for ``--target-rate=rate``."""
    plan = (ROOT / "tests" / "unit" / "deploy" / "plans" / f"target_rate_{rate}.stdout").read_text()
    line = next(x for x in plan.splitlines() if x.startswith("# capacity model"))
    return dict(re.findall(r"(max|min|concurrency) (\d+)", line))


def test_the_levers_figures_are_the_model():
    """SCALING.md's levers and its one-write analysis, recomputed: from the prices, the measured
    CPU and deploy's own sizing (its recorded plans), so none of them goes stale by hand."""
    text = scaling()
    levers = text.split("### The levers, with numbers", 1)[1].split("\n## ", 1)[0]
    levers = " ".join(levers.split())  # the figures as prose, whatever the line breaks
    p, cpu = costs.prices(text), costs.benchmark_cpu_ms()
    parts = costs.per_event(cpu, p)
    google = sum(v for k, v in parts.items() if not k.startswith("Svix"))
    top, day = costs.RATES[-1], costs.DAY

    records = top * day * costs.RETENTION_DAYS
    storage_day = parts["Firestore storage"] * top * day
    assert f"{records / 1e9:.1f} billion records" in levers
    assert f"about {records * costs.RECORD_BYTES / costs.TIB:.0f} TiB" in levers
    assert f"${storage_day:.0f} a day at the price above" in levers
    week = 7 / costs.RETENTION_DAYS
    assert f"7 days cuts that by {1 - week:.0%} (${storage_day * week:.0f} a day)" in levers
    assert f"1 day by {1 - 1 / costs.RETENTION_DAYS:.0%}" in levers
    assert f"about {parts['Firestore storage'] / google:.0%} of Google's part" in levers

    sizing = {rate: _capacity(rate) for rate in costs.RATES}
    assert {s["concurrency"] for s in sizing.values()} == {
        re.search(r"latency / concurrency\)\. The sizing's concurrency \([^)]*: (\d+)\)", levers)[1]
    }
    billed_ms = cpu / costs.CPU_TARGET
    assert f"about {billed_ms:.1f} ms" in levers
    latency_ms, in_flight = 300, 10  # deploy's latency per event; a concurrency set too low
    assert f"`--concurrency={in_flight}` at {latency_ms} ms per event" in levers
    assert f"at most {in_flight / latency_ms * 1000:.0f} events/s" in levers
    waited_ms = latency_ms / in_flight
    assert f"billed {waited_ms:.0f} ms per event" in levers
    assert f"about {round(waited_ms / billed_ms)} times the table's" in levers

    idle_day = day * (p.vcpu_second + costs.MEMORY_GIB * p.gib_second)
    minimums = [int(sizing[rate]["min"]) for rate in costs.RATES]
    assert f"minimums ({minimums[0]}, {minimums[1]}, {minimums[2]} instances)" in levers
    assert f"= ${idle_day:.2f} a day per instance" in levers
    idle = [costs._usd(n * idle_day) for n in minimums]
    assert f"{idle[0]}, {idle[1]} and {idle[2]} a day" in levers
    busy = [f"${google * rate * day:,.0f}" for rate in costs.RATES]
    assert f"against {busy[0]}, {busy[1]} and {busy[2]} a day of Google's parts" in levers

    one_write = text.split("### One Firestore write per new event", 1)[1].split("\n## ", 1)[0]
    one_write = " ".join(one_write.split())
    assert f"a write per event: ${p.write * 1e6:.2f} per million" in one_write
    assert p.write == parts["Firestore writes"] / 2  # "half of the Firestore writes line"
    assert "about a third of Google's part" in one_write
    assert p.write / google == pytest.approx(1 / 3, abs=0.04)
    assert f"(${p.write * top * day:,.0f} a day at 10,000 events/s)" in one_write


def test_the_quota_to_request_is_deploys_cap_at_the_top_rate():
    """What breaks first at 10,000 events/s: the regional quota, at deploy's own cap."""
    cap = int(_capacity(costs.RATES[-1])["max"])
    prose = " ".join(scaling().split("## What breaks first", 1)[1].split())
    memory = f"{cap * costs.MEMORY_GIB:g} GiB"
    assert f"{cap} instances x 1 vCPU / 512 MiB at the cap ({cap} vCPU, {memory})" in prose
    asked = re.search(r"to at least (\d+) vCPU and (\d+) GiB", prose)
    assert int(asked[1]) >= cap and int(asked[2]) >= cap * costs.MEMORY_GIB


def test_what_dominates_is_what_the_model_says():
    """The paragraph under the tables: Svix about 97%, Google's $2.5-3 per million, the two
    writes about two thirds of it, the function's own CPU below the per-request fee."""
    text = " ".join(scaling().split("**What dominates: Svix.**", 1)[1].split("###", 1)[0].split())
    parts = costs.per_event(costs.benchmark_cpu_ms(), costs.prices(scaling()))
    google = sum(v for k, v in parts.items() if not k.startswith("Svix"))
    assert "about 97% of everything" in text
    assert f"{parts['Svix messages'] / (google + parts['Svix messages']):.0%}" == "97%"
    assert "about $2.5-3 per million" in text and 2.5 <= google * 1e6 <= 3
    assert "writes are about two thirds" in text
    assert parts["Firestore writes"] / google == pytest.approx(2 / 3, abs=0.07)
    assert "costs less than Cloud Run's per-request fee" in text
    assert parts["Cloud Run vCPU-seconds"] < parts["Cloud Run requests"]
