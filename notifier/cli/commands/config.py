"""``config check``: the functions' settings as config.py reads them, held to its own rules, and
what a deployment derives from them; deploy.sh asks it before it changes anything.

It checks the environment, or with ``NAME=VALUE`` arguments exactly those (what deploy.sh passes:
the environment the functions will get, none of this shell's), and with ``--function-timeout``
the functions' timeout against the longest delivery. It needs no Svix token and no
Google credentials, and loads neither the Firestore client nor the Svix SDK. It prints one
``name value`` line per setting (``--json``: one object); exit status 0, or 2 with config.py's
one-line message when the settings break a rule.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from notifier.cli.command import Command, Context
from notifier.cli.parser import seconds
from notifier.config import Deployment, Settings

ACTIONS = ("check",)


def assignment(text: str) -> tuple[str, str]:
    """``NAME=VALUE``, as an environment variable."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return name, value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``check [NAME=VALUE ...] [--function-timeout SECONDS]``."""
    parser.add_argument("action", choices=ACTIONS, help="check: the settings, by config.py's rules")
    parser.add_argument(
        "environment",
        nargs="*",
        type=assignment,
        metavar="NAME=VALUE",
        help="check exactly this environment (as the functions get it), not the command's own",
    )
    parser.add_argument(
        "--function-timeout",
        type=seconds,
        metavar="SECONDS",
        help=f"the functions' timeout (deploy.sh --timeout) [{Deployment.timeout_seconds:g}]",
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Exit 0 with the settings shown; a ConfigError is the CLI's exit status 2."""
    env = dict(args.environment) if args.environment else context.env
    settings = Settings.from_env(env, svix=False)
    if args.function_timeout is None:
        deployment = Deployment(settings)
    else:
        deployment = Deployment(settings, timeout_seconds=args.function_timeout)
    deployment.check()
    values = shown(deployment)
    if context.output.as_json:
        context.output.json(values)
        return 0
    width = max(len(name) for name in values)
    for name, value in values.items():
        if value is not None:
            context.output.line(f"{name.ljust(width)}  {text(value)}")
    return 0


def shown(deployment: Deployment) -> dict[str, Any]:
    """Every setting but the secret ones, the longest delivery, then the deployment's own."""
    settings = deployment.settings
    values = {f.name: getattr(settings, f.name) for f in fields(Settings) if f.repr}
    values["longest_delivery_seconds"] = settings.longest_delivery_seconds
    for field in fields(Deployment):
        if field.name != "settings":
            values[field.name] = getattr(deployment, field.name)
    return values


def text(value: Any) -> str:
    """As an environment variable would hold it: ``30`` for 30.0, ``0.05,0.1,0.2`` for a list."""
    if isinstance(value, tuple):
        return ",".join(text(item) for item in value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.15g}"
    return str(value)


COMMAND = Command(
    name="config",
    help="config check: the functions' settings by config.py's rules (deploy.sh asks it)",
    add_arguments=add_arguments,
    run=run,
)
