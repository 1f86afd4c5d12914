"""``catalog``: push the event catalog (``schemas/events/``) to Svix, or write its OpenAPI document.

``catalog sync [--dry-run] [--prune]`` plans against what Svix holds and makes only the calls that
differ (:func:`notifier.usecases.catalog_sync.sync`), so a second run changes nothing. It needs
only the Svix token (``SVIX_API_KEY``, and ``SVIX_SERVER_URL`` off the hosted API), no Google
project.
Exit status: 0 done (or nothing to do), 1 a Svix call failed, 2 a usage, configuration or
catalog error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from notifier import bootstrap
from notifier.cli.command import Command, Context, UsageError
from notifier.cli.output import Output, summary
from notifier.config import Settings
from notifier.domain import catalog
from notifier.domain.catalog import Change, RegisteredEventType
from notifier.domain.errors import CatalogError, NotifierError
from notifier.domain.ports import EventTypeRegistry
from notifier.usecases import catalog_openapi, catalog_sync

PRUNE_WARNING = (
    "Svix refuses new messages of an archived event type (the hosted API; the open-source "
    "server accepts them), so pruning a type the platform still sends turns its events into "
    "failures: archive only what the platform no longer sends."
)
_PAST = {"create": "created", "update": "updated", "unarchive": "unarchived", "archive": "archived"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``sync [--dry-run] [--prune]`` and ``openapi [--out FILE]``."""
    actions = parser.add_subparsers(dest="catalog_command", required=True, metavar="ACTION")
    sync = actions.add_parser(
        "sync",
        help="create, update or restore every catalogued event type in Svix",
        description=(
            "Creates every catalogued event type in Svix that it lacks, updates those whose "
            "description, group or schema differ, and restores (unarchives) those that come "
            "back. Idempotent: a second run changes nothing. Types that left the catalog are "
            f"archived only with --prune. {PRUNE_WARNING}"
        ),
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="say what would change; change nothing"
    )
    sync.add_argument(
        "--prune",
        action="store_true",
        help=f"also archive the event types that left the catalog. {PRUNE_WARNING}",
    )
    _json_flag(sync)
    openapi = actions.add_parser(
        "openapi",
        help="the catalog as an OpenAPI 3.1 document (webhooks), for the public docs",
        description="Writes an OpenAPI 3.1 document whose webhooks hold every catalogued type.",
    )
    openapi.add_argument("--out", type=Path, metavar="FILE", help="write it here [stdout]")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    # Also after the action (`catalog sync --json`); SUPPRESS keeps `catalog --json sync` working.
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="one JSON object on stdout"
    )


def run(args: argparse.Namespace, context: Context) -> int:
    """Dispatches to the action."""
    if args.catalog_command == "openapi":
        return _openapi(args, context)
    return _sync(args, context)


def _openapi(args: argparse.Namespace, context: Context) -> int:
    document = catalog_openapi.openapi_document()
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if args.out is None:
        context.output.stdout.write(text)
        return 0
    try:
        args.out.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {args.out} ({len(document['webhooks'])} webhooks)", file=context.output.stderr)
    return 0


def _sync(args: argparse.Namespace, context: Context) -> int:
    try:
        types = catalog.event_types()
    except CatalogError as exc:
        print(f"notifier: the catalog is broken, nothing synced: {exc}", file=sys.stderr)
        return 2
    # Svix only, as `heartbeat setup`: deploy.sh runs it with the Svix token and no Google project.
    client = bootstrap.build_svix_client(Settings.from_env(context.env, firestore=False))
    registry = _Recorded(bootstrap.event_type_registry(client))
    try:
        changes = catalog_sync.sync(registry, dry_run=args.dry_run, prune=args.prune, types=types)
    except NotifierError as exc:
        made = registry.made
        before = f" ({', '.join(made)})" if made else ""
        print(
            f"notifier: catalog sync failed: {exc.summary()}; "
            f"{len(made)} change(s) made before it{before} (a re-run completes the rest)",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    _report(context.output, changes, args, catalogued=len(types))
    return 0


class _Recorded:
    """The registry, remembering the types whose call succeeded (told when a later one fails)."""

    def __init__(self, registry: EventTypeRegistry) -> None:
        self._registry = registry
        self.made: list[str] = []

    def list_all(self) -> Sequence[RegisteredEventType]:
        return self._registry.list_all()

    def create(self, body: Mapping[str, Any]) -> None:
        self._registry.create(body)
        self.made.append(str(body.get("name")))

    def update(self, name: str, body: Mapping[str, Any]) -> None:
        self._registry.update(name, body)
        self.made.append(name)

    def archive(self, name: str) -> None:
        self._registry.archive(name)
        self.made.append(name)


def _report(out: Output, changes: list[Change], args: argparse.Namespace, catalogued: int) -> None:
    counts: dict[str, int] = dict(Counter(str(c.action) for c in changes))
    if out.as_json:
        out.json(
            {
                "dry_run": args.dry_run,
                "prune": args.prune,
                "catalogued": catalogued,
                "changed": 0 if args.dry_run else len(changes),
                "summary": counts,
                "changes": [
                    {"action": c.action, "event_type": c.event_type, "fields": list(c.fields)}
                    for c in changes
                ],
            }
        )
        return
    if not changes:
        out.line(f"Svix holds the catalog ({catalogued} event types): nothing to change")
        return
    verb = "would change" if args.dry_run else "changed"
    out.line(f"{verb} {len(changes)} event type(s) in Svix: {summary(counts)}")
    out.table(
        ["action", "event_type", "fields"],
        [
            [
                c.action if args.dry_run else _PAST[c.action],
                c.event_type,
                ", ".join(c.fields) or None,
            ]
            for c in changes
        ],
    )
    if args.dry_run:
        out.line("dry run: nothing was changed")


COMMAND = Command(
    name="catalog",
    help="sync the event catalog to Svix (sync), or write its OpenAPI document (openapi)",
    add_arguments=add_arguments,
    run=run,
)
