"""How the commands show results: rich tables on a terminal, plain aligned text when stdout is a
pipe or a file (so scripts and greps see what they always saw), one JSON object with ``--json``;
progress as a rich bar (counts and rate) when stderr is a terminal, else a line now and then.

Results go to stdout, progress and the function's log lines to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from notifier.usecases.progress import Progress as OnProgress

CELL_WIDTH = 60  # a cell longer than this is cut, with an ellipsis


class Output:
    """Where a command writes: ``stdout`` for results, ``stderr`` for progress."""

    def __init__(
        self, *, as_json: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.as_json = as_json
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.rich = _is_terminal(self.stdout)

    def line(self, text: str = "") -> None:
        """One line of text, as it is (no markup)."""
        print(text, file=self.stdout)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A table: rich and fitted to the terminal's width, or plain aligned columns."""
        if not self.rich:
            print(plain_table(headers, rows), file=self.stdout)
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, header_style="bold")
        for index, header in enumerate(headers):
            numeric = _numeric(rows, index)
            table.add_column(header, justify="right" if numeric else "left", overflow="fold")
        for row in rows:
            table.add_row(*(Text(cell(value)) for value in row))
        Console(file=self.stdout, highlight=False).print(table)

    def json(self, document: dict[str, Any]) -> None:
        """The ``--json`` document: indented, UTF-8 as it is, one trailing newline."""
        json.dump(document, self.stdout, indent=2, ensure_ascii=False)
        self.stdout.write("\n")

    @contextlib.contextmanager
    def progress(self, label: str, total: int | None, every: int) -> Iterator[OnProgress]:
        """A progress callback for the block: a live bar on a terminal, else progress lines."""
        if not _is_terminal(self.stderr):
            yield ProgressLine(label, total, every, self.stderr)
            return
        console = Console(file=self.stderr)
        columns = [
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[counts]}"),
        ]
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(label, total=total, counts="")

            def advance(done: int, counts: dict[str, int]) -> None:
                bar.update(task, completed=done, counts=summary(counts))

            yield advance


class RateColumn(ProgressColumn):
    """Items a second, as the bar's rate."""

    def render(self, task: Task) -> Text:
        """``12.5/s``, once there is a rate to show."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f}/s" if speed else "-/s", style="progress.data.speed")


class ProgressLine:
    """``replay: 200/1000 (sent 198, failed 2)`` on stderr every ``every`` items or 10 s."""

    def __init__(
        self, label: str, total: int | None, every: int, stream: TextIO | None = None
    ) -> None:
        self.label, self.total, self.every = label, total, every
        self.stream = stream
        self.last = time.monotonic()

    def __call__(self, done: int, counts: dict[str, int]) -> None:
        """Writes the line when it is due."""
        now = time.monotonic()
        if done % self.every and now - self.last < 10 and done != self.total:
            return
        if done == self.total and done < self.every:
            return  # a short run: the result says it all
        self.last = now
        of = f"/{self.total}" if self.total is not None else ""
        print(f"{self.label}: {done}{of} ({summary(counts)})", file=self.stream or sys.stderr)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns aligned with two spaces, numbers to the right: for pipes, files and greps."""
    cells = [[cell(value) for value in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [_numeric(rows, i) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if numeric[i] else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)])


def cell(value: Any) -> str:
    """A value as a table shows it: ``-`` for none, times in UTC, one line, at most 60 chars."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = " ".join(str(value).split())
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def age(delta: timedelta) -> str:
    """``45s``, ``10m``, ``2h05m``, ``3d04h``."""
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    return f"{seconds}s"


def summary(counts: dict[str, int]) -> str:
    """``duplicate 1, sent 4``: outcomes and their counts, by name."""
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "nothing"


def _numeric(rows: Sequence[Sequence[Any]], index: int) -> bool:
    return bool(rows) and all(isinstance(row[index], int) for row in rows)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def plain(value: Any) -> Any:
    """Dataclasses and datetimes as JSON can carry them (times in ISO-8601, UTC)."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value
