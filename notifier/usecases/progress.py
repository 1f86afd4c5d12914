"""Work on many items at once, in order, telling a progress callback as each one ends."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Progress = Callable[[int, dict[str, int]], None]  # (done so far, outcomes so far)

Item = TypeVar("Item")
Result = TypeVar("Result")


def run_in_parallel(
    work: Callable[[Item], Result],
    items: Iterable[Item],
    workers: int,
    on_progress: Progress | None,
    outcome_of: Callable[[Result], str],
) -> list[Result]:
    """``work`` on every item, ``workers`` at a time, in order, reporting progress as they end."""
    results: list[Result] = []
    counts: dict[str, int] = defaultdict(int)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for result in pool.map(work, items):
            results.append(result)
            counts[outcome_of(result)] += 1
            if on_progress is not None:
                on_progress(len(results), dict(counts))
    return results
