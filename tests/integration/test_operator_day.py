"""Finding 8 (issue 10), the on-call person's day: the operator tools on the real emulators.

``status`` exits 1 while anything waits for an operator; ``replay`` says what it left alone and
why, and shows its deliveries' ERROR lines; errors name their resource; an injected 422 reaches
the operator as Svix's reason. (Unreachable hosts and missing credentials: test_operator_reach.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from notifier.cli import main
from tests import factories, offline
from tests.conftest import PROJECT, TOKEN
from tests.integration.conftest import FAST
from tests.integration.test_operations import Pipeline, record
from tests.support import run_cli, run_cli_json, unique_suffix


def json_lines(text):
    found = []
    for line in text.splitlines():
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return [entry for entry in found if isinstance(entry, dict)]


# -- status: an exit status scripts can use -------------------------------------------------------


def test_status_exits_1_while_anything_is_failed_or_stuck_pending_and_0_otherwise(
    env, db, svix, capsys
):
    pipeline = Pipeline(db, svix)
    pipeline.sent()
    pipeline.pending()  # fresh: Pub/Sub still retries it, nothing for an operator yet
    code, report, _ = run_cli_json(capsys, "status")
    assert code == 0
    # --json: the same document as before, plus the heartbeat and the customer endpoints
    assert sorted(report) == sorted(
        [
            "heartbeat",
            *("gcp_project", "database", "totals", "by_project", "rejected", "stuck_pending"),
            *("stuck_after_seconds", "oldest_pending", "latest_failures"),
            *("endpoints", "exhausted_events"),
        ]
    )

    failed = pipeline.failed()
    assert run_cli_json(capsys, "status")[0] == 1
    assert run_cli(capsys, "status")[0] == 1  # the table too

    assert run_cli(capsys, "replay", "--status", "failed")[0] == 0
    assert record(db, failed)["status"] == "sent"
    assert run_cli(capsys, "status")[0] == 0

    pipeline.pending(age=timedelta(hours=1))  # stuck: nothing retries it any more
    code, report, _ = run_cli_json(capsys, "status")
    assert (code, report["stuck_pending"], report["totals"]["failed"]) == (1, 1, 0)


def test_status_help_documents_its_exit_status(capsys):
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert (
        "exit status: 0 when no notification is failed or stuck pending and no customer endpoint "
        "is disabled, 1 when some are"
    ) in shown


# -- replay: what it left, and its deliveries' errors ---------------------------------------------


def test_replay_says_it_left_an_event_whose_claim_is_held_after_a_429_and_until_when(
    env, db, svix, capsys
):
    pipeline = Pipeline(db, svix, lease_seconds=120)
    svix.set_faults([{"op": "msg.create", "status": 429, "retry_after": 45}])
    held = pipeline.deliver()  # Svix said: wait 45 s; the claim is kept that long
    assert record(db, held)["status"] == "pending"

    code, out, _ = run_cli_json(capsys, "replay", "--status", "pending")

    assert code == 1  # something was left
    assert (out["selected"], out["results"]) == (0, [])
    [skipped] = out["skipped"]
    assert skipped["event_id"] == held
    assert skipped["reason"].startswith("claim held until ")
    assert "rate_limited 429" in skipped["reason"]
    until = datetime.fromisoformat(skipped["held_until"])
    assert timedelta(seconds=30) < until - datetime.now(UTC) <= timedelta(seconds=46)

    code, table, _ = run_cli(capsys, "replay", "--status", "pending")
    assert code == 1
    assert "replayed 0 notification(s): nothing" in table
    assert "left 1 pending notification(s) alone:" in table
    assert held in table and "claim held until" in table
    code, dry, _ = run_cli(capsys, "replay", "--status", "pending", "--dry-run")
    assert code == 0 and "left 1 pending notification(s) alone:" in dry and held in dry
    assert svix.messages() == []


def test_replay_shows_the_error_lines_of_its_deliveries_as_redrive_does(env, db, svix, capsys):
    pipeline = Pipeline(db, svix)
    event_id = pipeline.failed(project="globex")
    svix.set_faults([{"op": "msg.create", "status": 422}])

    code, _, err = run_cli(capsys, "replay")

    assert code == 1
    # The delivery's outcome line (the catalog's drift WARNING names the event too).
    [line] = [e for e in json_lines(err) if e.get("event_id") == event_id and "outcome" in e]
    assert (line["severity"], line["message"], line["outcome"]) == (
        "ERROR",
        "event failed: svix_rejected 422",
        "failed",
    )
    assert line["project"] == "globex"
    assert line["error"] == "svix_rejected 422: body: Validation error"  # Svix's reason
    assert TOKEN not in err and factories.PII["email"] not in err


def test_an_injected_422_reaches_the_operator_as_svix_s_reason(env, db, svix, capsys):
    """The twin answers a 422 with svix-server's validation body; the reason is kept."""
    event_id = Pipeline(db, svix).failed()
    assert record(db, event_id)["last_error"] == "svix_rejected 422: body: Validation error"
    code, report, _ = run_cli_json(capsys, "status")
    assert code == 1
    [failure] = report["latest_failures"]
    assert failure["last_error"] == "svix_rejected 422: body: Validation error"
    assert "malformed" not in failure["last_error"]


# -- errors name the resource they concern --------------------------------------------------------


@pytest.mark.parametrize("flags", [["--dry-run"], ["--to-topic"], ["--direct"]])
def test_redrive_names_the_dead_letter_subscription_it_cannot_find(
    env, pubsub_emulator, capsys, flags
):
    topic = f"events-{unique_suffix()}"  # no dead-letter subscription was ever made for it
    env.setenv("NOTIFIER_TOPIC", topic)

    code, out, err = run_cli(capsys, "redrive", *flags, "--wait", "1")

    assert code == 1 and out == ""
    path = f"projects/{PROJECT}/subscriptions/{topic}-dead-letter-sub"
    [line] = err.strip().splitlines()
    assert line.startswith(f"notifier: Pub/Sub subscription {path} at {pubsub_emulator.host_port}")
    assert "NotFound: 404" in line


# -- the `notifier` command, from anywhere --------------------------------------------------------


def test_the_notifier_command_runs_from_any_directory(
    tmp_path, db, svix, firestore_emulator, svix_server
):
    """``make`` installs the checkout into .venv (editable) with the ``notifier`` console script;
    run from elsewhere, it still finds the event schema (a replay validates what it rebuilds)."""
    command = Path(sys.executable).with_name("notifier")
    assert command.exists(), "no `notifier` command in the venv: run make (it installs it)"
    pipeline = Pipeline(db, svix)
    pipeline.sent()
    failed = pipeline.failed()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        **offline.ENV,
        **firestore_emulator.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "SVIX_API_KEY": TOKEN,
        "SVIX_SERVER_URL": svix_server.url,
        **FAST,
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def notifier(*argv):
        return subprocess.run(
            [str(command), *argv],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    shown = notifier("status", "--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: notifier status")
    status = notifier("status", "--json")
    assert status.returncode == 1, status.stderr  # one failed
    assert json.loads(status.stdout)["totals"] == {"pending": 0, "sent": 1, "failed": 1, "total": 2}
    replayed = notifier("replay", "--json")
    assert replayed.returncode == 0, replayed.stderr
    [result] = json.loads(replayed.stdout)["results"]
    assert (result["event_id"], result["outcome"]) == (failed, "sent")
    assert notifier("status").returncode == 0
    module = subprocess.run(  # `python -m notifier` still works, from anywhere too
        [sys.executable, "-m", "notifier", "status", "--json"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert module.returncode == 0, module.stderr


# -- make serve: how to point the CLI at the local stack ------------------------------------------


def test_the_lines_make_serve_prints_point_the_cli_at_the_stack(
    tmp_path, firestore_emulator, pubsub_emulator, svix_server, db
):
    """Pasted into a bare shell (nothing but PATH and HOME), they make ``notifier`` talk to the
    stack: the emulators' hosts, the project, the twin and its token."""
    from devstack.run_local import operator_environment

    lines = operator_environment(svix_server.url)
    for name, value in (
        ("FIRESTORE_EMULATOR_HOST", firestore_emulator.host_port),
        ("PUBSUB_EMULATOR_HOST", pubsub_emulator.host_port),
        ("GOOGLE_CLOUD_PROJECT", PROJECT),
        ("SVIX_SERVER_URL", svix_server.url),
    ):
        assert f"{name}={value}" in lines
    script = tmp_path / "pasted.sh"
    script.write_text(f"set -e\n{lines}\n")
    done = subprocess.run(
        ["bash", str(script)],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **offline.ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"notifications in {PROJECT}/(default)" in done.stdout
