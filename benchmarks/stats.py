"""Small, exact statistics for the benchmark: percentiles, medians, rates, ratios."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100): always a value that was measured."""
    if not values:
        raise ValueError("no values")
    if not 0 <= p <= 100:
        raise ValueError("p must be between 0 and 100")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> float:
    """(max - min) / median: how far repeated runs disagreed, as a fraction."""
    mid = median(values)
    return (max(values) - min(values)) / mid if mid else 0.0


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """The median of round-by-round ratios (each round's two runs met the same machine), or the
    ratio of the medians when the rounds do not pair up."""
    if len(numerators) != len(denominators) or not numerators or 0 in denominators:
        return ratio(median(numerators), median(denominators)) if numerators else math.nan
    return median([n / d for n, d in zip(numerators, denominators, strict=True)])
