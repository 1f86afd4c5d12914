"""``operational setup``: our operational-webhook endpoint in Svix, and its signing secret."""

from __future__ import annotations

import argparse
from typing import Any

from notifier import bootstrap
from notifier.cli.command import Command, Context
from notifier.cli.setups import add_setup_arguments, run_setup
from notifier.config import Settings
from notifier.usecases.operational_setup import ENDPOINT_UID, OperationalSetupReport, setup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``setup --url URL --secret-file PATH``."""
    where = "the operational_webhooks function's URL, where Svix sends them"
    add_setup_arguments(parser, "the endpoint and its secret", "--url", where)


def run(args: argparse.Namespace, context: Context) -> int:
    """Makes the operational-webhook endpoint right; 0 done, 1 a Svix step failed."""

    def make(settings: Settings) -> OperationalSetupReport:
        client = bootstrap.build_svix_client(settings)
        try:
            admin = bootstrap.endpoint_admin(client)
            return setup(admin, url=args.url, secret_file=args.secret_file)
        finally:
            client.close()

    def document(report: OperationalSetupReport) -> dict[str, Any]:
        return {
            "endpoint_uid": ENDPOINT_UID,
            "endpoint": report.endpoint,
            "secret_file": report.secret_file,
            "url": report.url,
            "secret_path": str(report.secret_path),
        }

    return run_setup(context, "operational setup", make, document)


COMMAND = Command(
    name="operational",
    help="operational setup: Svix's operational-webhook endpoint and its signing secret",
    add_arguments=add_arguments,
    run=run,
)
