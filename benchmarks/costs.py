"""SCALING.md's cost model: what an event costs, from its measured CPU and the listed prices.

The prices are read from SCALING.md's price table (each with its source there); the CPU per
event is BENCHMARKS.md's (the figure the capacity model uses). ``make bench`` puts the per
million figure in BENCHMARKS.md, and a test checks that SCALING.md's tables are what this module
computes, so the model moves when the code does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RATES = (100, 1_000, 10_000)  # events per second
DAY = 86_400
MONTH_DAYS = 730 / 24  # Google bills storage per GiB-month of 730 hours
GIB, TIB = 2**30, 2**40

# The model's inputs besides the prices (SCALING.md, "What it costs", says where each comes from).
WRITES_PER_EVENT = 2  # a create, then the outcome (BENCHMARKS.md, round trips)
TTL_DELETES_PER_EVENT = 1  # each record deleted once, at its expiry
RECORD_BYTES = 1024  # a sent record, its key and its three indexed fields' entries (estimate)
RETENTION_DAYS = 30  # NOTIFIER_RECORD_TTL_DAYS
MESSAGE_BYTES = 2000  # a Pub/Sub message as published and pushed (estimate, as SCALING.md)
PUBSUB_TRANSFERS = 2  # billed once published, once pushed
MEMORY_GIB = 0.5  # the function's 512 MiB
CPU_TARGET = 0.6  # Cloud Run's autoscaler keeps instances near 60% CPU


@dataclass(frozen=True)
class Prices:
    """USD per unit, as SCALING.md's price table lists them."""

    write: float  # per document write
    read: float  # per document read
    delete: float  # per document delete (TTL deletes included)
    storage: float  # per GiB-month
    vcpu_second: float
    gib_second: float
    request: float  # per Cloud Run request
    pubsub_tib: float  # per TiB of throughput
    svix_message: float


# The price table's rows, by the words that start their first cell.
_ROWS = {
    "write": "Firestore document writes",
    "read": "Firestore document reads",
    "delete": "Firestore document deletes",
    "storage": "Firestore stored data",
    "vcpu_second": "Cloud Run CPU",
    "gib_second": "Cloud Run memory",
    "request": "Cloud Run requests",
    "pubsub_tib": "Pub/Sub throughput",
    "svix_message": "Svix messages",
}
PRICE_HEADER = "| price | USD | source, read 2026-12-02 |"
_PRICE = re.compile(r"\$([0-9.]+) per ([0-9,]+|million|[A-Za-z-]+)")


def prices(scaling: str | None = None) -> Prices:
    """The prices of SCALING.md's table ("$0.09 per 100,000" -> 9e-07 per unit)."""
    text = scaling if scaling is not None else (ROOT / "SCALING.md").read_text()
    if PRICE_HEADER not in text:
        raise ValueError(f"SCALING.md has no price table ({PRICE_HEADER!r})")
    table = text.split(PRICE_HEADER, 1)[1].split("\n\n", 1)[0]
    found: dict[str, float] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for key, label in _ROWS.items():
            if line.startswith("| ") and cells[0].startswith(label) and len(cells) > 1:
                match = _PRICE.search(cells[1])
                if match is None:
                    raise ValueError(f"no price in SCALING.md's row {label!r}: {cells[1]!r}")
                amount, per = float(match.group(1)), match.group(2)
                found[key] = amount / _count(per)
    missing = set(_ROWS) - set(found)
    if missing:
        raise ValueError(f"SCALING.md's price table lacks {sorted(missing)}")
    return Prices(**found)


def _count(per: str) -> float:
    if per == "million":
        return 1e6
    return float(per.replace(",", "")) if per[0].isdigit() else 1.0


def benchmark_rows(heading: str, benchmarks: str | None = None) -> list[list[str]]:
    """The table rows, as cells, under one of BENCHMARKS.md's headings (up to the next one)."""
    text = benchmarks if benchmarks is not None else (ROOT / "BENCHMARKS.md").read_text()
    section = text.split(f"{heading}\n", 1)[1].split("\n#", 1)[0]
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("|--")
    ]


def benchmark_cpu_ms(benchmarks: str | None = None) -> float:
    """The function's CPU per new event: the highest of BENCHMARKS.md's "Where the CPU goes"."""
    rows = benchmark_rows("## Where the CPU goes", benchmarks)
    values = [float(r[3]) for r in rows if r[1:3] == ["new", "function"]]
    if not values:
        raise ValueError("BENCHMARKS.md has no CPU per new event: run make bench")
    return max(values)


def per_event(cpu_ms: float, p: Prices) -> dict[str, float]:
    """USD per new event, by part."""
    billed_seconds = cpu_ms / 1000 / CPU_TARGET  # instance time an event occupies, billed
    record_gib_months = RECORD_BYTES / GIB * RETENTION_DAYS / MONTH_DAYS
    return {
        "Firestore writes": WRITES_PER_EVENT * p.write,
        "Firestore TTL deletes": TTL_DELETES_PER_EVENT * p.delete,
        "Firestore storage": record_gib_months * p.storage,
        "Cloud Run vCPU-seconds": billed_seconds * p.vcpu_second,
        "Cloud Run GiB-seconds": billed_seconds * MEMORY_GIB * p.gib_second,
        "Cloud Run requests": p.request,
        "Pub/Sub throughput": PUBSUB_TRANSFERS * MESSAGE_BYTES / TIB * p.pubsub_tib,
        "Svix messages": p.svix_message,
    }


def _usd(value: float) -> str:
    if value >= 1000:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.3f}"


def _count_text(n: float) -> str:
    return f"{n / 1e9:.2f} billion" if n >= 1e9 else f"{n / 1e6:.1f} million"


def tables(cpu_ms: float, p: Prices) -> list[str]:
    """SCALING.md's two cost tables (per million events, per day at each rate), as lines."""
    return per_million(cpu_ms, p) + per_day(cpu_ms, p)


def per_million(cpu_ms: float, p: Prices) -> list[str]:
    """What a million new events cost, by part, with its share."""
    parts = per_event(cpu_ms, p)
    total = sum(parts.values())
    google = total - parts["Svix messages"]
    intro = (
        f"At {cpu_ms:g} ms of CPU per new event (BENCHMARKS.md), billed as "
        f"{cpu_ms / CPU_TARGET:.2f} ms of instance time (at the autoscaler's {CPU_TARGET:.0%} "
        "CPU target):"
    )
    lines = [intro, "", "| part | per million new events | share of all | share of Google's |"]
    lines.append("|---|---|---|---|")
    for name, usd in parts.items():
        of_google = "-" if name.startswith("Svix") else f"{usd / google:.1%}"
        lines.append(f"| {name} | {_usd(usd * 1e6)} | {usd / total:.1%} | {of_google} |")
    return [*lines, f"| **all** | **{_usd(total * 1e6)}** | 100% | |", ""]


def per_day(cpu_ms: float, p: Prices) -> list[str]:
    """What a day costs at each of :data:`RATES`, by part."""
    parts = per_event(cpu_ms, p)
    total = sum(parts.values())
    google = total - parts["Svix messages"]
    writes = [_count_text(r * DAY * WRITES_PER_EVENT) for r in RATES]
    lines = [
        "| part, per day | " + " | ".join(f"{r:,} events/s" for r in RATES) + " |",
        "|---|" + "---|" * len(RATES),
        "| events a day | " + " | ".join(_count_text(r * DAY) for r in RATES) + " |",
        "| Firestore writes a day | " + " | ".join(writes) + " |",
    ]
    for name, usd in [*parts.items(), ("Google's parts (without Svix)", google)]:
        cells = " | ".join(_usd(usd * rate * DAY) for rate in RATES)
        lines.append(f"| {name} | {cells} |")
    cells = " | ".join(f"**{_usd(total * rate * DAY)}**" for rate in RATES)
    return [*lines, f"| **all** | {cells} |", ""]


BEGIN = "<!-- cost tables: written by make bench (python -m benchmarks.costs); do not edit -->"
END = "<!-- end of cost tables -->"


def update_scaling(
    path: Path = ROOT / "SCALING.md", benchmarks: Path = ROOT / "BENCHMARKS.md"
) -> bool:
    """Rewrites SCALING.md's cost tables from BENCHMARKS.md's CPU; True when they changed."""
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    cpu_ms = benchmark_cpu_ms(benchmarks.read_text())
    body = "\n".join(tables(cpu_ms, prices(text)))
    new = f"{head}{BEGIN}\n\n{body}\n{END}{tail}"
    path.write_text(new)
    return new != text


if __name__ == "__main__":
    print("SCALING.md's cost tables " + ("rewritten" if update_scaling() else "unchanged"))
