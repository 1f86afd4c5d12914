"""``python -m notifier`` as an operator runs it, on records the running function made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests import factories
from tests.conftest import TOKEN
from tests.e2e.conftest import function_env

ROOT = Path(__file__).resolve().parents[2]


def notifier_cli(env, *argv):
    """The CLI in its own process, with only the given environment."""
    return subprocess.run(
        [sys.executable, "-m", "notifier", *argv],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_operator_finds_a_failed_event_and_replays_it(
    deliver, db, svix, firestore_emulator, svix_server
):
    sent = factories.event(project="acme")
    refused = factories.event(project="globex", type="payment.succeeded")
    assert deliver(sent) == 200
    svix.set_faults([{"op": "msg.create", "status": 422, "times": 1}])
    assert deliver(refused) == 200  # refused for good: recorded failed, acknowledged
    env = function_env(firestore_emulator, svix_server)
    readonly = {k: v for k, v in env.items() if k != "SVIX_API_KEY"}

    status = notifier_cli(readonly, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["totals"] == {"pending": 0, "sent": 1, "failed": 1, "total": 2}
    assert [f["event_id"] for f in report["latest_failures"]] == [refused["id"]]

    dry = notifier_cli(readonly, "replay", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert [r["event_id"] for r in json.loads(dry.stdout)["records"]] == [refused["id"]]

    without_token = notifier_cli(readonly, "replay")
    assert without_token.returncode == 2
    assert "SVIX_API_KEY is not set" in without_token.stderr

    replay = notifier_cli(env, "replay", "--json")
    assert replay.returncode == 0, replay.stderr
    [result] = json.loads(replay.stdout)["results"]
    assert (result["event_id"], result["outcome"]) == (refused["id"], "sent")
    assert sorted(m["eventId"] for m in svix.messages()) == sorted([sent["id"], refused["id"]])

    after = notifier_cli(readonly, "status")
    assert after.returncode == 0, after.stderr
    assert "all" in after.stdout and "latest failures (0 of 0):" in after.stdout
    for output in (status, dry, without_token, replay, after):
        assert TOKEN not in output.stdout + output.stderr
        assert factories.PII["email"] not in output.stdout + output.stderr


def test_help_names_every_command():
    shown = notifier_cli({}, "--help")
    assert shown.returncode == 0
    assert all(command in shown.stdout for command in ("status", "replay", "redrive"))
