"""``catalog sync``'s report: a rich table on a terminal, plain columns when piped, JSON asked."""

from __future__ import annotations

import argparse
import io
import json

from notifier.cli.commands import catalog as command
from notifier.cli.output import Output
from notifier.domain.catalog import Change

CHANGES = [
    Change("create", "user.created"),
    Change("update", "payment.succeeded", ("description", "schemas")),
    Change("archive", "invoice.voided"),
]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def report(stdout: io.StringIO, *, dry_run: bool, as_json: bool = False) -> str:
    args = argparse.Namespace(dry_run=dry_run, prune=True)
    command._report(Output(as_json=as_json, stdout=stdout), CHANGES, args, catalogued=10)
    return stdout.getvalue()


def test_on_a_terminal_the_changes_are_a_rich_table():
    text = report(Terminal(), dry_run=False)
    assert "changed 3 event type(s) in Svix: archive 1, create 1, update 1" in text
    assert "━" in text or "─" in text  # rich's rules
    assert "updated" in text and "description, schemas" in text


def test_piped_the_changes_are_plain_columns_in_the_past_or_the_conditional():
    done = report(io.StringIO(), dry_run=False).splitlines()
    assert done[1].split() == ["action", "event_type", "fields"]
    assert done[2].split() == ["created", "user.created", "-"]
    assert done[3].split() == ["updated", "payment.succeeded", "description,", "schemas"]
    assert done[4].split() == ["archived", "invoice.voided", "-"]
    dry = report(io.StringIO(), dry_run=True)
    assert dry.startswith("would change 3 event type(s)")
    assert "create  " in dry and dry.rstrip().endswith("dry run: nothing was changed")


def test_json_names_each_change_and_what_was_changed():
    document = json.loads(report(io.StringIO(), dry_run=True, as_json=True))
    assert document["dry_run"] is True and document["changed"] == 0
    assert document["summary"] == {"create": 1, "update": 1, "archive": 1}
    assert document["changes"][1] == {
        "action": "update",
        "event_type": "payment.succeeded",
        "fields": ["description", "schemas"],
    }
