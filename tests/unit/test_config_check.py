"""``notifier config check``: the functions' settings by config.py's own rules, as deploy.sh asks
for them (no Svix token, no Google credentials, no cloud client loaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifier.cli import main
from notifier.cli.commands import REGISTERED
from notifier.config import ConfigError, Deployment, Settings
from tests import offline

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "GOOGLE_CLOUD_PROJECT=demo-proj"


def checked(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["config", "check", *args])
    out, err = capsys.readouterr()
    return status, out, err


def lines(out: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in out.splitlines())


def test_it_shows_every_setting_with_config_py_s_defaults(capsys):
    status, out, err = checked(capsys, PROJECT)
    assert (status, err) == (0, "")
    shown = lines(out)
    defaults = Settings(gcp_project="demo-proj", svix_api_key="")
    assert shown["gcp_project"] == "demo-proj"
    assert shown["firestore_database"] == defaults.firestore_database
    # As the functions' environment holds them: whole numbers bare, lists comma-separated.
    assert shown["retry_budget_seconds"] == f"{defaults.retry_budget_seconds:g}" == "30"
    assert shown["lease_seconds"] == f"{defaults.lease_seconds:g}"
    assert shown["svix_retry_schedule"] == ",".join(f"{d:g}" for d in defaults.svix_retry_schedule)
    assert shown["longest_delivery_seconds"] == f"{defaults.longest_delivery_seconds:g}"
    assert shown["timeout_seconds"] == f"{Deployment.timeout_seconds:g}"
    assert shown["heartbeat_every_seconds"] == str(Deployment.heartbeat_every_seconds)
    assert "svix_api_key" not in shown
    assert "svix_server_url" not in shown  # none set: no line rather than an empty value


def test_with_assignments_only_those_are_read(capsys, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "shell-proj")
    monkeypatch.setenv("NOTIFIER_LEASE_SECONDS", "500")
    monkeypatch.setenv("SVIX_API_KEY", "testsk_never-shown-4711")
    _, out, _ = checked(capsys, PROJECT, "NOTIFIER_RECORD_TTL_DAYS=7")
    shown = lines(out)
    assert (shown["gcp_project"], shown["record_ttl_days"]) == ("demo-proj", "7")
    assert shown["lease_seconds"] == f"{Settings.lease_seconds:g}"
    _, out, _ = checked(capsys)  # without: the command's own environment
    assert (lines(out)["gcp_project"], lines(out)["lease_seconds"]) == ("shell-proj", "500")
    assert "testsk_never-shown-4711" not in out


def test_json_has_the_same_values(capsys):
    status, out, _ = checked(capsys, PROJECT, "NOTIFIER_LOG_LEVEL=debug", "--json")
    document = json.loads(out)
    assert status == 0
    assert document["log_level"] == "DEBUG"  # config.py's reading, not what was typed
    assert document["svix_server_url"] is None
    assert document["svix_retry_schedule"] == list(Settings.svix_retry_schedule)
    assert document["timeout_seconds"] == Deployment.timeout_seconds
    assert "svix_api_key" not in document


def test_a_broken_rule_is_config_py_s_one_line_and_exit_status_2(capsys):
    env = {"GOOGLE_CLOUD_PROJECT": "demo-proj", "NOTIFIER_PORTAL_EXPIRY_SECONDS": "60"}
    with pytest.raises(ConfigError) as expected:
        Settings.from_env(env, svix=False)
    status, out, err = checked(capsys, *(f"{k}={v}" for k, v in env.items()))
    assert (status, out) == (2, "")
    assert err == f"notifier: {expected.value}\n"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--function-timeout=71"], "timeout (71 s) must exceed the longest delivery (70.35 s"),
        (["NOTIFIER_RETRY_BUDGET_SECONDS=60"], "timeout (90 s) must exceed the longest delivery"),
        (["NOTIFIER_LEASE_SECONDS=5"], "NOTIFIER_LEASE_SECONDS must be at least 10"),
    ],
)
def test_the_functions_timeout_is_held_to_the_longest_delivery_the_lease_to_ten(capsys, args, said):
    status, _, err = checked(capsys, PROJECT, *args)
    assert status == 2
    assert said in err and err.count("\n") == 1


def test_a_timeout_that_fits_passes(capsys):
    status, out, _ = checked(capsys, PROJECT, "NOTIFIER_LEASE_SECONDS=10", "--function-timeout=150")
    assert status == 0
    assert lines(out)["timeout_seconds"] == "150"


def test_an_assignment_without_a_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["config", "check", "NOTIFIER_LEASE_SECONDS"])
    assert exited.value.code == 2
    assert "not NAME=VALUE" in capsys.readouterr().err


def scrubbed() -> dict[str, str]:
    """No credentials, no token, no inherited settings: what deploy.sh's machine may have."""
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT")
    return {**{k: v for k, v in os.environ.items() if k in keep}, **offline.ENV}


def test_as_a_process_it_needs_no_token_no_credentials_and_loads_no_cloud_client():
    code = (
        "import json, sys\n"
        "from notifier.cli import main\n"
        f"status = main(['config', 'check', {PROJECT!r}])\n"
        "print(json.dumps([status, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=scrubbed(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    status, modules = json.loads(done.stdout.splitlines()[-1])
    assert status == 0
    loaded = [m for m in modules if m.startswith(("google.cloud.firestore", "svix", "google.api"))]
    assert loaded == []
    # The check can fail: the modules of another command do load them.
    assert "google.cloud.firestore" in modules_after("from notifier.cli.commands import status")


def modules_after(statement: str) -> list[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return json.loads(done.stdout)


def test_python_m_notifier_config_check_runs_as_deploy_sh_runs_it():
    done = subprocess.run(
        [sys.executable, "-m", "notifier", "config", "check", PROJECT, "--function-timeout=90"],
        cwd=ROOT,
        env=scrubbed(),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert lines(done.stdout)["timeout_seconds"] == "90"


def test_the_top_level_help_still_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in REGISTERED:
        assert name in out
    assert "config" in REGISTERED
