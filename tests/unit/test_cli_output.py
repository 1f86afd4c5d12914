"""How the operator commands show results: rich on a terminal, plain text for pipes, JSON as is."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

from notifier.cli.output import Output, plain_table


class Terminal(io.StringIO):
    """What a terminal looks like to a program: a stream that says it is a TTY."""

    def isatty(self) -> bool:
        return True


HEADERS = ["event_id", "project", "attempts", "last_error"]
ROWS = [
    ["evt_1", "acme", 3, "svix_rejected 422: " + "the payload is not what Svix wants " * 3],
    ["evt_22", None, 12, None],
]


def test_a_pipe_gets_the_plain_aligned_table_scripts_rely_on():
    stdout = io.StringIO()
    Output(as_json=False, stdout=stdout).table(HEADERS, ROWS)
    lines = stdout.getvalue().splitlines()
    assert stdout.getvalue() == plain_table(HEADERS, ROWS) + "\n"
    assert lines[0].split() == HEADERS
    assert lines[2].split()[:3] == ["evt_22", "-", "12"]
    assert lines[1].index("3  svix") == lines[2].index("12  -") + 1  # numbers right-aligned
    assert "…" in lines[1]  # a long cell is cut at 60 characters


def test_a_terminal_gets_a_rich_table_that_fits_its_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "70")
    stdout = Terminal()
    Output(as_json=False, stdout=stdout).table(HEADERS, ROWS)
    text = stdout.getvalue()
    visible = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert all(len(line) <= 70 for line in visible.splitlines())
    assert max(len(line) for line in visible.splitlines()) > 60  # it uses the room it has
    assert "evt_22" in visible and "svix_rejected" in visible
    assert text != plain_table(HEADERS, ROWS) + "\n"
    assert "\x1b[" in text  # styled: a terminal's output, not the plain one


def test_json_is_the_same_document_on_a_terminal_or_a_pipe():
    document = {"totals": {"sent": 2}, "at": "2026-11-28T10:00:00Z", "name": "Zoë"}
    outputs = []
    for stream in (io.StringIO(), Terminal()):
        Output(as_json=True, stdout=stream).json(document)
        outputs.append(stream.getvalue())
    assert outputs[0] == outputs[1] == json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_progress_on_a_terminal_is_a_bar_with_counts_and_rate(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    stderr = Terminal()
    output = Output(as_json=False, stdout=io.StringIO(), stderr=stderr)
    with output.progress("replay", 4, every=100) as on_progress:
        for done in range(1, 5):
            on_progress(done, {"sent": done})
    shown = stderr.getvalue()
    assert "replay" in shown and "4/4" in shown and "sent 4" in shown
    assert "/s" in shown  # the rate column


def test_progress_in_a_pipe_is_an_occasional_line():
    stderr = io.StringIO()
    output = Output(as_json=False, stdout=io.StringIO(), stderr=stderr)
    with output.progress("redrive", None, every=2) as on_progress:
        for done in range(1, 6):
            on_progress(done, {"republished": done})
    assert stderr.getvalue().splitlines() == [
        "redrive: 2 (republished 2)",
        "redrive: 4 (republished 4)",
    ]


def test_times_show_in_utc():
    moment = datetime(2026, 11, 28, 10, 0, 5, tzinfo=UTC)
    assert plain_table(["at"], [[moment]]).splitlines()[1] == "2026-11-28 10:00:05Z"
