"""BENCHMARKS.md's pictures, drawn from the same run's figures: PNGs in ``benchmarks/plots/``.

matplotlib is a benchmark dependency only (``requirements-bench.txt``, never deployed); it draws
with the Agg backend, so no display is needed. Without matplotlib the report says so instead.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import stats
from benchmarks.throughput import DUPLICATE, FLOOR, FUNCTION, HTTP_FLOOR, NEW, Result

RELATIVE = Path("benchmarks/plots")  # beside BENCHMARKS.md, as its links say
PLOTS = Path(__file__).resolve().parents[1] / RELATIVE
THROUGHPUT, LATENCY, CPU = "throughput.png", "latency.png", "cpu.png"
FILES = (THROUGHPUT, LATENCY, CPU)
COMPARED = (FUNCTION, HTTP_FLOOR, FLOOR)
PROCESSES = ("function", "emulator", "twin", "benchmark")
_STYLE = {FUNCTION: ("tab:blue", "o"), HTTP_FLOOR: ("tab:orange", "s"), FLOOR: ("tab:gray", "^")}


def draw(results: dict[tuple, Result], concurrencies: list[int], out: Path = PLOTS) -> str | None:
    """Writes the three PNGs into ``out`` (``benchmarks/plots`` beside the report); returns why
    not (matplotlib missing), or None once written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r requirements-bench.txt)"
    out.mkdir(parents=True, exist_ok=True)
    _throughput(plt, results, concurrencies, out / THROUGHPUT)
    _latency(plt, results, concurrencies, out / LATENCY)
    _cpu(plt, results, [c for c in concurrencies if c > 1], out / CPU)
    return None


def _throughput(plt, results, concurrencies, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, kind in zip(axes, (NEW, DUPLICATE), strict=True):
        for setup in COMPARED:
            color, marker = _STYLE[setup]
            got = [results[(setup, c, kind)] for c in concurrencies]
            medians = [r.rate for r in got]
            low = [m - min(r.rates) for m, r in zip(medians, got, strict=True)]
            high = [max(r.rates) - m for m, r in zip(medians, got, strict=True)]
            ax.errorbar(
                concurrencies, medians, yerr=[low, high], label=setup, color=color,
                marker=marker, capsize=3,
            )  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(concurrencies, [str(c) for c in concurrencies])
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("events/s (median of rounds; bars: min-max)")
        ax.set_title(f"{kind} events" if kind == NEW else "duplicates (redelivered)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latency(plt, results, concurrencies, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, kind in zip(axes, (NEW, DUPLICATE), strict=True):
        for setup in COMPARED:
            color, marker = _STYLE[setup]
            for pct, line in ((50, "-"), (90, "--"), (99, ":")):
                values = [
                    1000 * stats.percentile(results[(setup, c, kind)].latencies, pct)
                    for c in concurrencies
                ]
                ax.plot(
                    concurrencies, values, line, color=color, marker=marker,
                    label=f"{setup} p{pct}",
                )  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(concurrencies, [str(c) for c in concurrencies])
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("latency per event, ms (all rounds)")
        ax.set_title(f"{kind} events" if kind == NEW else "duplicates (redelivered)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, ncol=3)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _cpu(plt, results, concurrencies, path: Path) -> None:
    fig, axes = plt.subplots(1, len(concurrencies), figsize=(10, 4), constrained_layout=True)
    colors = ("tab:blue", "tab:green", "tab:purple", "tab:gray")
    for ax, c in zip(axes, concurrencies, strict=True):
        labels, bottoms = [], []
        bars = [(kind, setup) for kind in (NEW, DUPLICATE) for setup in COMPARED]
        for kind, setup in bars:
            labels.append(f"{setup}\n{'new' if kind == NEW else 'dup.'}")
        bottoms = [0.0] * len(bars)
        for name, color in zip(PROCESSES, colors, strict=True):
            values = [results[(setup, c, kind)].cpu_ms(name) or 0.0 for kind, setup in bars]
            ax.bar(range(len(bars)), values, bottom=bottoms, color=color, label=name)
            bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        ax.set_xticks(range(len(bars)), labels, fontsize=7)
        ax.set_ylabel("CPU ms per event (median of rounds)")
        ax.set_title(f"concurrency {c}")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
