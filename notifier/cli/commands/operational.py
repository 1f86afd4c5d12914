"""``operational setup``: our operational-webhook endpoint in Svix, and its signing secret."""

from __future__ import annotations

import argparse
from pathlib import Path

from notifier import bootstrap
from notifier.cli.command import Command, Context
from notifier.config import Settings
from notifier.domain.errors import SetupError
from notifier.usecases.operational_setup import ENDPOINT_UID, setup

ACTIONS = ("setup",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``setup --url URL --secret-file PATH``."""
    parser.add_argument("action", choices=ACTIONS, help="setup: the endpoint and its secret")
    parser.add_argument(
        "--url",
        required=True,
        metavar="URL",
        help="the operational_webhooks function's URL, where Svix sends them",
    )
    parser.add_argument(
        "--secret-file",
        required=True,
        type=Path,
        metavar="PATH",
        help="where the endpoint's whsec_ signing secret is written (mode 600)",
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Makes the operational-webhook endpoint right; 0 done, 1 a Svix step failed."""
    settings = Settings.from_env(context.env, firestore=False)  # Svix only, as heartbeat setup
    client = bootstrap.build_svix_client(settings)
    out = context.output
    try:
        report = setup(bootstrap.endpoint_admin(client), url=args.url, secret_file=args.secret_file)
    except SetupError as exc:
        out.stderr.write(f"notifier operational setup: {exc}\n")
        return 1
    finally:
        client.close()
    if out.as_json:
        out.json(
            {
                "endpoint_uid": ENDPOINT_UID,
                "endpoint": report.endpoint,
                "secret_file": report.secret_file,
                "url": report.url,
                "secret_path": str(report.secret_path),
                "changed": report.changed,
            }
        )
    else:
        for line in report.lines():
            out.line(line)
        out.line("changed" if report.changed else "nothing to change")
    return 0


COMMAND = Command(
    name="operational",
    help="operational setup: Svix's operational-webhook endpoint and its signing secret",
    add_arguments=add_arguments,
    run=run,
)
