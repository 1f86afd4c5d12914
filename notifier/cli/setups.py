"""How a setup command runs (``heartbeat setup``, ``operational setup``): on Svix only (deploy.sh
runs them with the token and no Firestore project), one line naming the step that failed, and
the report as lines or one JSON object."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from notifier.cli.command import Context
from notifier.config import Settings
from notifier.domain.errors import SetupError


class Report(Protocol):
    """What a setup use case reports: whether it changed anything, and a line per step."""

    @property
    def changed(self) -> bool:
        """True when a step created, updated or wrote something."""
        ...

    def lines(self) -> list[str]:
        """One line per step."""
        ...


R = TypeVar("R", bound=Report)


def add_setup_arguments(
    parser: argparse.ArgumentParser, what: str, url_flag: str, url_help: str
) -> None:
    """``setup URL_FLAG URL --secret-file PATH`` (``--flag=value`` works too)."""
    parser.add_argument("action", choices=("setup",), help=f"setup: {what}")
    parser.add_argument(url_flag, required=True, metavar="URL", help=url_help)
    parser.add_argument(
        "--secret-file",
        required=True,
        type=Path,
        metavar="PATH",
        help="where the endpoint's whsec_ signing secret is written (mode 600)",
    )


def run_setup(
    context: Context,
    name: str,
    make: Callable[[Settings], R],
    document: Callable[[R], dict[str, Any]],
) -> int:
    """Runs ``make`` with the settings; 0 done, 1 a Svix step failed (said on stderr)."""
    settings = Settings.from_env(context.env, firestore=False)
    out = context.output
    try:
        report = make(settings)
    except SetupError as exc:
        out.stderr.write(f"notifier {name}: {exc}\n")
        return 1
    if out.as_json:
        out.json({**document(report), "changed": report.changed})
    else:
        for line in report.lines():
            out.line(line)
        out.line("changed" if report.changed else "nothing to change")
    return 0
