"""``python -m notifier`` as an operator runs it, on records the running function made."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from tests import factories, offline
from tests.conftest import TOKEN
from tests.e2e.conftest import function_env

ROOT = Path(__file__).resolve().parents[2]


def notifier_cli(env, *argv):
    """The CLI in its own process, with only the given environment."""
    return subprocess.run(
        [sys.executable, "-m", "notifier", *argv],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **offline.ENV, **env},
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
    assert status.returncode == 1, status.stderr  # one failed: an operator must act
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


def on_a_terminal(env, *argv):
    """The CLI in its own process with stdout and stderr on a pseudo-terminal, as an operator's
    shell gives it; returns the exit status and everything the terminal showed."""
    main_fd, child_fd = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "notifier", *argv],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "COLUMNS": "100", "TERM": "xterm"}
        | offline.ENV
        | env,
        stdin=subprocess.DEVNULL,
        stdout=child_fd,
        stderr=child_fd,
    )
    os.close(child_fd)
    shown = b""
    while True:
        ready, _, _ = select.select([main_fd], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    return process.wait(timeout=120), shown.decode(errors="replace")


def test_on_a_terminal_tables_are_rich_and_replay_shows_a_progress_bar(
    deliver, db, svix, firestore_emulator, svix_server
):
    refused = [factories.event(project="globex") for _ in range(3)]
    svix.set_faults([{"op": "msg.create", "status": 422, "times": 3}])
    for event in refused:
        assert deliver(event) == 200
    env = function_env(firestore_emulator, svix_server)

    code, shown = on_a_terminal(env, "status")
    assert code == 1, shown  # three failed
    assert "\x1b[" in shown  # drawn for a terminal (styles), not the plain columns
    assert "─" in shown and "globex" in shown and "latest failures (3 of 3):" in shown

    code, shown = on_a_terminal(env, "replay")
    assert code == 0, shown
    assert "3/3" in shown and "sent 3" in shown and "/s" in shown  # the bar: counts, rate
    assert "replayed 3 notification(s): sent 3" in shown
    assert TOKEN not in shown and factories.PII["email"] not in shown
