"""The subcommands, one module each (see :mod:`notifier.cli.command`), in the order ``--help``
lists them. A new command: its module here, and its name on a line of its own below."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from notifier.cli.command import Command

REGISTERED = (
    "status",
    "replay",
    "redrive",
    "catalog",
    "recover",
    "heartbeat",
    "operational",
    "config",
)


def registered(names: Iterable[str] = REGISTERED) -> dict[str, Command]:
    """Each named module's ``COMMAND`` (every registered one unless told), by name: importing
    only the one a command line names keeps ``config check`` clear of the cloud clients."""
    commands = [importlib.import_module(f"{__name__}.{name}").COMMAND for name in names]
    return {command.name: command for command in commands}
