"""``notifier catalog sync`` against the Svix twin, through the CLI's main() and as a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from svix.api import EventTypeIn, EventTypeUpsertIn, Svix, SvixOptions
from svix.api.event_type import EventTypeListOptions

from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.event_types import SvixEventTypeRegistry
from notifier.cli import main
from notifier.domain import catalog
from notifier.domain.catalog import load
from notifier.domain.errors import RateLimited
from notifier.usecases import catalog_openapi
from tests import offline
from tests.conftest import TOKEN, environment

ROOT = Path(__file__).resolve().parents[2]


def svix_env(svix) -> dict[str, str]:
    return {"SVIX_API_KEY": TOKEN, "SVIX_SERVER_URL": svix.url}


def cli(svix, capsys, *argv: str) -> tuple[int, str, str]:
    """main() in this process, with only the Svix part of the environment (no Google project)."""
    values = {**svix_env(svix), "GOOGLE_CLOUD_PROJECT": ""}
    with environment(values):
        code = main([*argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def held(svix) -> dict[str, dict]:
    """Every event type Svix holds, archived ones too, read with the SDK as a customer's tool."""
    client = Svix(TOKEN, SvixOptions(server_url=svix.url))
    page = client.event_type.list(
        EventTypeListOptions(include_archived=True, with_content=True, limit=250)
    )
    assert page.done
    return {item.name: item.model_dump(by_alias=True) for item in page.data}


def changes(output: str) -> list[tuple[str, str]]:
    return [(c["action"], c["event_type"]) for c in json.loads(output)["changes"]]


def test_sync_registers_every_catalogued_type_with_its_schema_then_changes_nothing(svix, capsys):
    code, out, err = cli(svix, capsys, "catalog", "sync", "--json")
    assert code == 0, err
    names = [t.name for t in catalog.event_types()]
    assert changes(out) == [("create", name) for name in names]
    types = held(svix)
    assert sorted(types) == names
    for event_type in catalog.event_types():
        registered = types[event_type.name]
        assert registered["description"] == event_type.description
        assert registered["groupName"] == event_type.group
        assert registered["archived"] is False
        schema = registered["schemas"]["1"]
        assert schema["properties"]["data"]["required"] == event_type.data_schema.get("required")
        assert schema["properties"]["type"]["const"] == event_type.name
        assert schema["examples"][0]["data"] == event_type.examples[0]

    calls_before = len(svix.calls())
    code, out, err = cli(svix, capsys, "catalog", "sync", "--json")
    assert (code, json.loads(out)["changes"], json.loads(out)["changed"]) == (0, [], 0), err
    assert [c["op"] for c in svix.calls()[calls_before:]] == ["event_type.list"]
    code, out, _ = cli(svix, capsys, "catalog", "sync")
    assert code == 0 and "nothing to change" in out


def test_a_dry_run_says_what_would_change_and_changes_nothing(svix, capsys):
    code, out, err = cli(svix, capsys, "catalog", "sync", "--dry-run")
    assert code == 0, err
    assert f"would change {len(catalog.event_types())} event type(s)" in out
    assert "user.created" in out and "dry run: nothing was changed" in out
    assert held(svix) == {}
    assert {c["op"] for c in svix.calls()} == {"event_type.list"}


def test_a_changed_schema_is_updated_and_a_type_that_comes_back_is_restored(svix, capsys):
    assert cli(svix, capsys, "catalog", "sync")[0] == 0
    client = Svix(TOKEN, SvixOptions(server_url=svix.url))
    client.event_type.delete("user.created")  # archived by hand
    before = held(svix)["payment.succeeded"]
    changed = EventTypeUpsertIn(description="edited in the dashboard")
    client.event_type.upsert("payment.succeeded", changed)
    code, out, err = cli(svix, capsys, "catalog", "sync", "--json")
    assert code == 0, err
    assert sorted(changes(out)) == [("unarchive", "user.created"), ("update", "payment.succeeded")]
    after = held(svix)
    assert after["user.created"]["archived"] is False
    assert after["payment.succeeded"]["description"] == before["description"]
    assert after["payment.succeeded"]["schemas"] == before["schemas"]


def test_a_type_that_left_the_catalog_is_archived_only_with_prune(svix, capsys):
    client = Svix(TOKEN, SvixOptions(server_url=svix.url))
    client.event_type.create(EventTypeIn(name="invoice.voided", description="no longer sent"))
    code, out, err = cli(svix, capsys, "catalog", "sync", "--json")
    assert code == 0, err
    assert ("archive", "invoice.voided") not in changes(out)
    assert held(svix)["invoice.voided"]["archived"] is False

    code, out, err = cli(svix, capsys, "catalog", "sync", "--prune", "--dry-run", "--json")
    assert (code, changes(out)) == (0, [("archive", "invoice.voided")]), err
    assert held(svix)["invoice.voided"]["archived"] is False

    code, out, err = cli(svix, capsys, "catalog", "sync", "--prune", "--json")
    assert (code, changes(out)) == (0, [("archive", "invoice.voided")]), err
    assert held(svix)["invoice.voided"]["archived"] is True  # archived, not expunged
    assert cli(svix, capsys, "catalog", "sync", "--prune", "--json")[1].count('"action"') == 0


def test_listing_follows_svix_pages(svix):
    client = Svix(TOKEN, SvixOptions(server_url=svix.url))
    for index in range(7):
        client.event_type.create(EventTypeIn(name=f"thing.t{index}", description="d"))
    client.event_type.delete("thing.t3")
    client = SvixClient(TOKEN, server_url=svix.url, timeout=2.0, retry_schedule=(0.01,))
    found = SvixEventTypeRegistry(client, page_size=2).list_all()
    assert [t.name for t in found] == [f"thing.t{i}" for i in range(7)]
    assert [t.name for t in found if t.archived] == ["thing.t3"]
    assert len([c for c in svix.calls() if c["op"] == "event_type.list"]) == 4


def test_svix_failures_are_classified_as_messages_are(svix):
    svix.set_faults([{"op": "event_type.list", "status": 429, "times": 1}])
    client = SvixClient(TOKEN, server_url=svix.url, timeout=2.0, retry_schedule=(0.01,))
    with pytest.raises(RateLimited):
        SvixEventTypeRegistry(client).list_all()


def test_a_failed_call_exits_1_and_says_what_was_done_before(svix, capsys):
    assert cli(svix, capsys, "catalog", "sync")[0] == 0
    client = Svix(TOKEN, SvixOptions(server_url=svix.url))
    client.event_type.delete("addon.created")  # comes back first (plans go by name)
    edited = EventTypeUpsertIn(description="edited in the dashboard")
    client.event_type.upsert("user.created", edited)
    svix.set_faults([{"op": "event_type.update", "status": 500, "times": 10}])
    code, out, err = cli(svix, capsys, "catalog", "sync")
    assert code == 1 and out == ""
    assert "catalog sync failed: svix_unavailable 500" in err
    assert "1 change(s) made before it (addon.created) (a re-run completes the rest)" in err
    assert TOKEN not in err
    svix.clear_faults()
    code, out, _ = cli(svix, capsys, "catalog", "sync", "--json")
    assert (code, changes(out)) == (0, [("update", "user.created")])


def test_without_a_token_it_is_a_configuration_error(svix, capsys):
    with environment({"SVIX_API_KEY": ""}):
        code = main(["catalog", "sync"])
    assert code == 2
    assert "SVIX_API_KEY is not set" in capsys.readouterr().err


def test_the_help_warns_that_pruning_a_type_still_sent_makes_failures(capsys):
    with pytest.raises(SystemExit):
        main(["catalog", "sync", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--prune" in text and "--dry-run" in text
    assert "Svix refuses new messages of an archived event type" in text
    assert "the open-source server accepts them" in text


def test_openapi_writes_the_document_to_a_file_or_stdout(tmp_path, capsys):
    target = tmp_path / "webhooks.json"
    assert main(["catalog", "openapi", "--out", str(target)]) == 0
    document = json.loads(target.read_text())
    assert document == catalog_openapi.openapi_document()
    assert sorted(document["webhooks"]) == load().names()
    assert main(["catalog", "openapi"]) == 0
    assert json.loads(capsys.readouterr().out) == document


def test_deploy_sh_call_works_as_a_process_with_only_the_svix_environment(svix):
    """deploy.sh runs ``python -m notifier catalog sync`` with SVIX_API_KEY (and the URL)."""
    env = {"PATH": os.environ.get("PATH", ""), **offline.ENV, **svix_env(svix)}
    run = [sys.executable, "-m", "notifier", "catalog", "sync"]
    first = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"changed {len(catalog.event_types())} event type(s) in Svix" in first.stdout
    assert "created" in first.stdout and "user.created" in first.stdout
    second = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (second.returncode, second.stderr) == (0, "")
    assert "nothing to change" in second.stdout
