"""``python -m notifier heartbeat setup`` against the Svix twin, and ``status`` opening with the
last heartbeat kept in the Firestore emulator."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest
from svix.api import Svix, SvixOptions

from notifier.adapters.firestore.heartbeats import FirestoreHeartbeatLog
from notifier.cli import main
from tests.conftest import TOKEN
from tests.support import run_cli

CANARY_URL = "http://127.0.0.1:9/canary"


@pytest.fixture
def svix_env(svix, monkeypatch):
    """As deploy.sh runs it: the Svix token and server only, no Firestore project."""
    monkeypatch.setenv("SVIX_API_KEY", TOKEN)
    monkeypatch.setenv("SVIX_SERVER_URL", svix.url)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCLOUD_PROJECT", raising=False)
    return svix


def twin(svix) -> Svix:
    return Svix(TOKEN, SvixOptions(server_url=svix.url))


def test_setup_makes_the_app_and_endpoint_and_writes_the_secret_once(svix_env, tmp_path, capsys):
    secret_file = tmp_path / "canary-secret"
    argv = ["heartbeat", "setup", f"--canary-url={CANARY_URL}", f"--secret-file={secret_file}"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    endpoint = twin(svix_env).endpoint.get("notifier-heartbeat", "canary")
    assert endpoint.url == CANARY_URL
    assert endpoint.event_types == ["notifier.heartbeat"]
    secret = twin(svix_env).endpoint.get_secret("notifier-heartbeat", "canary").key
    assert secret_file.read_text().strip() == secret
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert "endpoint canary -> http://127.0.0.1:9/canary: created" in out
    assert secret not in out + err and TOKEN not in out + err

    # The space-separated form, run again: nothing changes.
    code, out, err = run_cli(capsys, "heartbeat", "setup", "--canary-url", CANARY_URL,
                         "--secret-file", str(secret_file), "--json")  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert report["changed"] is False
    assert (report["application"], report["endpoint"], report["secret_file"]) == (
        "unchanged",
        "unchanged",
        "unchanged",
    )
    assert secret not in out


def test_setup_uses_the_heartbeat_project_setting(svix_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NOTIFIER_HEARTBEAT_PROJECT", "hb-staging")
    argv = ["heartbeat", "setup", f"--canary-url={CANARY_URL}", f"--secret-file={tmp_path / 's'}"]
    assert run_cli(capsys, *argv)[0] == 0
    assert twin(svix_env).endpoint.get("hb-staging", "canary").url == CANARY_URL


def test_setup_with_a_wrong_token_fails_and_says_what_to_check(
    svix_env, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("SVIX_API_KEY", "testsk_wrong.token")
    argv = ["heartbeat", "setup", f"--canary-url={CANARY_URL}", f"--secret-file={tmp_path / 's'}"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1
    assert "check the Svix token" in err
    assert not (tmp_path / "s").exists()


def test_setup_without_a_token_is_a_configuration_error(svix_env, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SVIX_API_KEY")
    argv = ["heartbeat", "setup", f"--canary-url={CANARY_URL}", f"--secret-file={tmp_path / 's'}"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "SVIX_API_KEY" in err


def test_status_opens_with_the_last_heartbeat_healthy_then_late(db, capsys):
    code, out, err = run_cli(capsys, "status")
    assert code == 0, err
    assert out.splitlines()[0].startswith("heartbeat late: none has arrived (expected every 5 min)")
    code, out, _ = run_cli(capsys, "status", "--json")
    report = json.loads(out)
    assert report["heartbeat"]["state"] == "late" and report["heartbeat"]["arrived_at"] is None
    assert {"gcp_project", "totals", "by_project", "rejected", "latest_failures"} <= set(report)

    log = FirestoreHeartbeatLog(db, ttl_days=30)
    arrived = datetime.now(UTC) - timedelta(seconds=40)
    log.record("hb-old", arrived - timedelta(minutes=5, seconds=2), arrived - timedelta(minutes=5))
    log.record("hb-new", arrived - timedelta(milliseconds=1850), arrived)
    code, out, _ = run_cli(capsys, "status")
    first = out.splitlines()[0]
    assert first.startswith("heartbeat healthy: last arrived ")
    assert first.endswith("latency 1850 ms")
    code, out, _ = run_cli(capsys, "status", "--json")
    beat = json.loads(out)["heartbeat"]
    assert (beat["state"], beat["healthy"], beat["last_event_id"]) == ("healthy", True, "hb-new")
    assert beat["latency_ms"] == pytest.approx(1850.0)
    assert 40 <= beat["age_seconds"] < 300


def test_status_says_late_when_the_last_heartbeat_is_older_than_15_minutes(db, capsys):
    arrived = datetime.now(UTC) - timedelta(minutes=16)
    FirestoreHeartbeatLog(db, ttl_days=30).record("hb-1", arrived - timedelta(seconds=2), arrived)
    code, out, _ = run_cli(capsys, "status")
    assert code == 0
    assert out.splitlines()[0].startswith("heartbeat late: last arrived ")
    assert "late after 15 min" in out.splitlines()[0]
    assert json.loads(run_cli(capsys, "status", "--json")[1])["heartbeat"]["state"] == "late"


def test_status_judges_the_heartbeat_by_the_schedule_it_is_given(db, capsys):
    """A deployment with --heartbeat-minutes=10 --heartbeat-absent-minutes=30 is read with the
    same numbers: a heartbeat 16 min old is healthy there, and late on a 1-minute schedule."""
    arrived = datetime.now(UTC) - timedelta(minutes=16)
    FirestoreHeartbeatLog(db, ttl_days=30).record("hb-1", arrived - timedelta(seconds=2), arrived)
    slow = ("--heartbeat-every=10m", "--heartbeat-late-after=30m")
    code, out, err = run_cli(capsys, "status", *slow)
    assert code == 0, err
    assert out.splitlines()[0].startswith("heartbeat healthy: last arrived ")
    beat = json.loads(run_cli(capsys, "status", "--json", *slow)[1])["heartbeat"]
    assert (beat["state"], beat["late_after_seconds"]) == ("healthy", 1800)

    code, out, _ = run_cli(
        capsys, "status", "--heartbeat-every", "1m", "--heartbeat-late-after", "3m"
    )
    first = out.splitlines()[0]
    assert first.startswith("heartbeat late: last arrived ")
    assert first.endswith("expected every 60 s, late after 3 min")


@pytest.mark.parametrize(
    "schedule",
    [
        ("--heartbeat-every=10m", "--heartbeat-late-after=5m"),
        ("--heartbeat-every=0s",),
    ],
)
def test_status_refuses_a_heartbeat_schedule_that_would_always_be_late(capsys, schedule):
    code, out, err = run_cli(capsys, "status", *schedule)
    assert code == 2 and out == ""
    assert "--heartbeat-late-after must be at least --heartbeat-every" in err


def test_status_help_documents_the_heartbeat_schedule_and_its_deploy_sh_options(capsys):
    with pytest.raises(SystemExit):
        main(["status", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--heartbeat-every DURATION" in shown and "--heartbeat-minutes [5m]" in shown
    assert "--heartbeat-late-after DURATION" in shown
    assert "--heartbeat-absent-minutes (at least --heartbeat-every) [15m]" in shown
