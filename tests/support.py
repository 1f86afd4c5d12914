"""Waiting and naming for tests that drive the emulators (on google-cloud-testutils' helpers), and
the ``notifier`` CLI run in-process."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

from test_utils.retry import BackoffFailed, RetryResult
from test_utils.system import unique_resource_id

_quiet = logging.getLogger("tests.support")
_quiet.setLevel(logging.ERROR)  # RetryResult logs every try as a warning: not worth a line
_names = itertools.count(1)


def eventually(predicate: Callable[[], bool], *, timeout: float, every: float = 0.25) -> bool:
    """True as soon as ``predicate()`` holds, asked every ``every`` seconds for about
    ``timeout`` seconds; False if it never did."""

    def holds() -> bool:
        return bool(predicate())

    tries = max(1, math.ceil(timeout / every)) + 1
    retry = RetryResult(bool, max_tries=tries, delay=every, backoff=1, logger=_quiet)
    try:
        return retry(holds)()
    except BackoffFailed:
        return False


def unique_suffix() -> str:
    """For topic and subscription names: test_utils' resource id (time and process), plus a
    counter so that two names asked for within a millisecond differ too."""
    return f"{unique_resource_id('-').lstrip('-')}-{next(_names)}"


def run_cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """``notifier ARGV`` in-process: its exit status, stdout and stderr (pytest's ``capsys``)."""
    from notifier.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli_json(capsys: Any, *argv: str) -> tuple[int, Any, str]:
    """As :func:`run_cli` with ``--json``: stdout parsed."""
    code, out, err = run_cli(capsys, *argv, "--json")
    return code, json.loads(out), err


@contextlib.contextmanager
def logged_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the notifier's loggers write inside the block (INFO and up), as the JSON lines Cloud
    Logging reads: call the yielded function for the lines so far."""
    from notifier import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger("notifier")
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
