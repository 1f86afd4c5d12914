"""The catalog's drift check (issue 13): what it costs per event with each validator, what it
costs once per instance, and the switch that serves the function without it, for comparison.

Per event, in this process: ``Catalog.drift`` on the benchmark's events (the sample events, all
catalogued and valid: the common case) and on the heaviest platform sample (a subscription), with
``jsonschema-rs`` and with ``jsonschema`` alone. Once per instance, in fresh processes: importing
``jsonschema_rs`` and loading the catalog as the function does (``catalog.runtime``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import timeit
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from benchmarks import events, stats
from devstack.function_server import ROOT

PLATFORM = ROOT / "samples" / "platform-events"
HEAVY = "subscription.renewed"
MIX = "platform mix"  # the 50 platform samples, mean per event
_TIMED = "import time\n{before}\n_t = time.perf_counter()\n{stmt}\nprint(time.perf_counter() - _t)"
ONCE = {
    "import jsonschema_rs": ("import jsonschema, notifier.domain.catalog", "import jsonschema_rs"),
    "runtime catalog, jsonschema-rs (its import included)": (
        "from notifier.domain import catalog",
        "catalog.load(verify=False)",
    ),
    "runtime catalog, jsonschema alone": (
        "from notifier.domain import catalog",
        "catalog.load(verify=False, accelerate=False)",
    ),
    "verified catalog (metaschema and examples; tests and sync only)": (
        "from notifier.domain import catalog",
        "catalog.load(accelerate=False)",
    ),
}


class _NoWatch:
    """Stands in for :class:`notifier.usecases.drift_watch.DriftWatch` so that bootstrap builds
    no drift check."""

    observe = None

    def __init__(self, load: Any) -> None:
        del load


def install_no_drift() -> None:
    """The function as it was before the drift check: its notifier gets no ``drift``."""
    from notifier import bootstrap

    bootstrap.DriftWatch = _NoWatch  # type: ignore[assignment,misc]


def _fresh(before: str, stmt: str, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", _TIMED.format(before=before, stmt=stmt)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        seconds.append(float(done.stdout))
    return stats.median(seconds)


def _per_event(check: Any, documents: list[dict[str, Any]], loops: int) -> float:
    """Seconds per ``drift`` call over ``documents`` (median of 5 repeats of ``loops`` rounds)."""

    def round_() -> None:
        for document in documents:
            check.drift(document["type"], document["data"])

    times = timeit.repeat(round_, number=loops, repeat=5)
    return stats.median(times) / (loops * len(documents))


def _by_type(check: Any, documents: list[dict[str, Any]], loops: int) -> dict[str, float]:
    """Seconds per ``drift`` call, by event type, and over the platform's mix."""
    out = {d["type"]: _per_event(check, [d], loops) for d in documents[:8]}
    out[MIX] = _per_event(check, documents[8:], max(1, loops // 10))
    return out


def _size(package: str) -> float:
    spec = find_spec(package)
    if spec is None or spec.origin is None:
        return 0.0
    folder = Path(spec.origin).parent
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20


def measure(runs: int = 7, loops: int = 200) -> dict[str, Any]:
    """Per event (seconds, by type), once per instance (seconds), and the package's size (MiB)."""
    from notifier.domain import catalog

    platform = [json.loads(p.read_text()) for p in sorted(PLATFORM.glob("event-*.json"))]
    heavy = next(d for d in platform if d["type"] == HEAVY)
    documents = [*events.events("drift", 7), heavy, *platform]  # by type, then the mix
    compiled = catalog.load(verify=False)
    plain = catalog.load(verify=False, accelerate=False)
    assert all(compiled.drift(d["type"], d["data"]) is None for d in documents)
    return {
        "accelerated": catalog.accelerated(),
        "bench_types": sorted({d["type"] for d in documents[:7]}),
        "platform_events": len(platform),
        "rs": _by_type(compiled, documents, loops),
        "jsonschema": _by_type(plain, documents, max(10, loops // 10)),
        "once": {label: _fresh(before, stmt, runs) for label, (before, stmt) in ONCE.items()},
        "size_mib": _size("jsonschema_rs"),
        "in_requirements": "jsonschema-rs" in (ROOT / "requirements.txt").read_text(),
    }
