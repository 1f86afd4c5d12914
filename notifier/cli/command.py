"""What a subcommand of ``python -m notifier`` is: a name, its arguments, and what it runs.

To add one: a module in :mod:`notifier.cli.commands` that defines ``COMMAND = Command(...)``, and
its name in that package's ``REGISTERED``. ``run`` gets the parsed arguments and a
:class:`Context`; it builds what it needs (through :mod:`notifier.bootstrap`, the CLI being an
entry point), writes through ``context.output`` and returns the exit status.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from notifier.cli.output import Output


class UsageError(Exception):
    """Arguments that do not go together: exit status 2, like argparse's own errors."""


@dataclass(frozen=True)
class Context:
    """What a command runs with: the function's environment (flags applied) and the output."""

    env: dict[str, str]
    output: Output


@dataclass(frozen=True)
class Command:
    """One subcommand: ``add_arguments`` fills its parser, ``run`` returns the exit status."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Context], int]
