"""The command line: the options every command shares, each registered command's own, and the
argument types (durations, times, counts) they use."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from notifier.cli.command import Command

# As the operator typed it: the installed command, or the module.
PROG = "notifier" if os.path.basename(sys.argv[0]) == "notifier" else "python -m notifier"
DEFAULT_OLDER_THAN = "10m"  # pending this long without a lease is stuck
DEFAULT_TIMEOUT = 10.0  # seconds a Firestore or Pub/Sub call may take to answer
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")


def build_parser(commands: Iterable[Command]) -> argparse.ArgumentParser:
    """The parser of ``python -m notifier COMMAND ...`` for these commands."""
    commands = list(commands)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--gcp-project", help="Google Cloud project (default: $GOOGLE_CLOUD_PROJECT)"
    )
    common.add_argument("--database", help="Firestore database (default: $FIRESTORE_DATABASE)")
    common.add_argument("--json", action="store_true", help="one JSON object on stdout")
    common.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long each Firestore or Pub/Sub call may take to answer [{DEFAULT_TIMEOUT:g}]",
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", help="the function's INFO log lines on stderr"
    )
    top = argparse.ArgumentParser(
        prog=PROG,
        description=f"Operator tools for the notifier: {', '.join(c.name for c in commands)}.",
    )
    subparsers = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        command.add_arguments(
            subparsers.add_parser(command.name, parents=[common], help=command.help)
        )
    return top


def duration(text: str) -> timedelta:
    """``90``, ``90s``, ``10m``, ``2h``, ``7d``."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 10m, 2h, 7d)")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2] or "s"])


def moment(text: str) -> datetime:
    """ISO-8601 (a date, or a time; UTC unless it says otherwise), or a duration meaning "ago"."""
    if text.strip()[-1:] in _UNITS:
        with contextlib.suppress(argparse.ArgumentTypeError):
            return datetime.now(UTC) - duration(text)
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO-8601 like 2026-11-28T10:00:00Z, or a duration like 2h)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def seconds(text: str) -> float:
    """A number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive whole number: {text!r}")
    return value
