"""The plain aligned tables ``make run`` prints (no borders: easy to read and to grep)."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> None:
    """Headers, a dashed rule, then the rows, each column as wide as its widest cell."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*(str(h) for h in headers)))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*(str(cell) for cell in row)))
