"""The subcommands, one module each (see :mod:`notifier.cli.command`), in the order ``--help``
lists them. A new command: its module here, and its name on a line of its own below."""

from __future__ import annotations

import importlib

from notifier.cli.command import Command

REGISTERED = (
    "status",
    "replay",
    "redrive",
    "catalog",
    "heartbeat",
)


def registered() -> dict[str, Command]:
    """Each registered module's ``COMMAND``, by name."""
    commands = [importlib.import_module(f"{__name__}.{name}").COMMAND for name in REGISTERED]
    return {command.name: command for command in commands}
