"""A real (non-dry) run against a stub gcloud and a stub for the operator commands: the plan is
exactly what gets executed, and secrets are neither printed nor left on disk."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.deploy.plan import (
    DROPPED,
    PROJECT,
    Plan,
    dry_run,
    flag,
    operator_commands,
)
from tests.unit.deploy.running import run_deploy, scrubbed_env

# Logs its arguments (unit separator between them, record separator after) and answers the
# lookups deploy.sh makes. STUB_MODE=existing: everything exists already (a re-run).
# STUB_INVOKERS: the current run.invoker members of every service (one per line).
# STUB_CANARY_SECRET: the current version of the canary's signing secret.
STUB_GCLOUD = r"""#!/usr/bin/env bash
printf '%s\x1f' "$@" >>"$STUB_LOG"
printf '\x1e' >>"$STUB_LOG"
words=" $(printf '%s ' "$@" | sed -E 's/--[^ ]*//g' | tr -s ' ') "
ex() { [[ $STUB_MODE == existing ]] && echo "$1"; return 0; }
case "$words" in
  " secrets describe svix-api-key "*) [[ $STUB_SECRET == 1 ]] ;;
  " secrets versions list svix-api-key "*) echo 1 ;;
  " secrets versions list notifier-canary-secret "*) ex 1 ;;
  " secrets versions list notifier-operational-secret "*) ex 1 ;;
  " secrets versions access "*)
    if [[ "$*" == *notifier-canary-secret* ]]; then printf %s "$STUB_CANARY_SECRET";
    elif [[ "$*" == *notifier-operational-secret* ]]; then printf %s "$STUB_ENDPOINT_SECRET";
    else printf %s "$STUB_SVIX_TOKEN"; fi ;;
  " secrets versions add "*) if [[ $STUB_MODE == existing ]]; then echo 2; else echo 1; fi ;;
  " projects describe "*) echo 123456 ;;
  " functions describe "*) echo projects/demo-proj/locations/europe-west1/triggers/notifier-abc ;;
  " eventarc triggers describe "*)
    echo projects/demo-proj/subscriptions/eventarc-europe-west1-notifier-abc-sub-001 ;;
  " firestore indexes fields describe "*)
    if [[ "$*" == *ttlConfig* ]]; then ex ACTIVE;
    elif [[ $STUB_MODE != existing ]]; then echo "{'order': 'ASCENDING'}"; fi; true ;;
  " run services get-iam-policy "*)
    [[ -z "${STUB_INVOKERS:-}" ]] || printf '%s\n' "$STUB_INVOKERS" ;;
  " alpha monitoring policies list "*)
    case "$*" in
      *"delivery failures"*) ex projects/demo-proj/alertPolicies/ALERT_POLICY_ID ;;
      *backlog*) ex projects/demo-proj/alertPolicies/BACKLOG_POLICY_ID ;;
      *"endpoint was disabled"*) ex projects/demo-proj/alertPolicies/ENDPOINT_DISABLED_POLICY_ID ;;
      *) ex projects/demo-proj/alertPolicies/HEARTBEAT_POLICY_ID ;;
    esac ;;
  " monitoring dashboards list "*) ex projects/123456/dashboards/DASHBOARD_ID ;;
  " beta monitoring channels list "*)
    ex projects/demo-proj/notificationChannels/ALERT_EMAIL_CHANNEL_ID ;;
  " beta monitoring channels create "*)
    echo projects/demo-proj/notificationChannels/ALERT_EMAIL_CHANNEL_ID ;;
  *" describe "*) [[ $STUB_MODE == existing ]] ;;
esac
"""


# The operator commands (python -m notifier ...): logs its arguments and whether it got the
# Svix token; `heartbeat setup` and `operational setup` write the endpoint's signing secret
# where they are told to.
STUB_PYTHON = r"""#!/usr/bin/env bash
case "$1 $2 $3" in
  "-m notifier catalog" | "-m notifier heartbeat" | "-m notifier operational") ;;
  *) exec @PYTHON@ "$@" ;; # config check, deploy/render.py: the real thing
esac
printf '%s\x1f' "$@" >>"$STUB_PY_LOG"
printf 'token=%s\x1f\x1e' "$([[ $SVIX_API_KEY == "$STUB_SVIX_TOKEN" ]] && echo ok)" >>"$STUB_PY_LOG"
[[ "$3 $4" == "${STUB_PY_FAIL:-none}" ]] && exit 1
if [[ "$3 $4" == "heartbeat setup" || "$3 $4" == "operational setup" ]]; then
  for arg in "$@"; do
    [[ $arg == --secret-file=* ]] && printf %s "$STUB_ENDPOINT_SECRET" >"${arg#*=}"
  done
fi
exit 0
"""


SVIX_TOKEN = "testsk_stub-token-do-not-print-4711"


ENDPOINT_SECRET = "whsec_c3R1Yi1lbmRwb2ludC1zZWNyZXQ="


LOOKED_UP = {
    "PROJECT_NUMBER": "123456",
    "TRIGGER_ID": "notifier-abc",
    "TRIGGER_SUBSCRIPTION": "eventarc-europe-west1-notifier-abc-sub-001",
}


@dataclass
class StubRun:
    result: subprocess.CompletedProcess
    gcloud: list[list[str]]
    operator: list[list[str]]
    stub_python: str


def read_log(path: Path) -> list[list[str]]:
    records = path.read_text().split("\x1e")[:-1] if path.exists() else []
    return [record.split("\x1f")[:-1] for record in records]


def run_with_stub(
    tmp: Path,
    mode: str,
    *args: str,
    secret: bool = True,
    invokers: str = "",
    canary_secret: str = ENDPOINT_SECRET,
    python_fails: str = "none",
) -> StubRun:
    bin_dir = tmp / "stub-bin"
    stub_python = write_stubs(bin_dir)
    log = tmp / f"gcloud-{mode}.log"
    log.write_text("")
    py_log = tmp / f"python-{mode}.log"
    py_log.write_text("")
    (tmp / "tmpdir").mkdir(exist_ok=True)
    env = scrubbed_env(
        tmp,
        path=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        STUB_LOG=str(log),
        STUB_PY_LOG=str(py_log),
        STUB_MODE=mode,
        STUB_SECRET="1" if secret else "0",
        STUB_INVOKERS=invokers,
        STUB_SVIX_TOKEN=SVIX_TOKEN,
        STUB_CANARY_SECRET=canary_secret,
        STUB_ENDPOINT_SECRET=ENDPOINT_SECRET,
        NOTIFIER_PYTHON=str(stub_python),
        TMPDIR=str(tmp / "tmpdir"),
        STUB_PY_FAIL=python_fails,
    )
    result = run_deploy(tmp, *args, env=env)
    return StubRun(result, read_log(log), read_log(py_log), str(stub_python))


def with_looked_up_values(commands: list[list[str]]) -> list[list[str]]:
    def fill(arg: str) -> str:
        for placeholder, value in LOOKED_UP.items():
            arg = arg.replace(placeholder, value)
        return arg

    return [[fill(a) for a in command[1:]] for command in commands if command[0] == "gcloud"]


def without_temp_paths(commands: list[list[str]]) -> list[list[str]]:
    """The signing secrets' files live in fresh temporary directories; the plan names them."""

    def named(arg: str) -> str:
        found = re.search(r"=/\S*/notifier-deploy\.[^/]+/(canary|operational)-secret$", arg)
        if found is None:
            return arg
        return arg[: found.start()] + f"={found[1].upper()}_SECRET_FILE"

    return [[named(a) for a in c] for c in commands]


def write_stubs(bin_dir: Path) -> Path:
    """The stub gcloud and the stub operator Python in ``bin_dir``; returns the latter."""
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "gcloud"
    stub.write_text(STUB_GCLOUD)
    stub.chmod(0o755)
    stub_python = bin_dir / "python-stub"
    stub_python.write_text(STUB_PYTHON.replace("@PYTHON@", shlex.quote(sys.executable)))
    stub_python.chmod(0o755)
    return stub_python


def stub_plan(tmp: Path, *args: str) -> Plan:
    stub_python = write_stubs(tmp / "stub-bin")
    return dry_run(tmp, *args, env=scrubbed_env(tmp, NOTIFIER_PYTHON=str(stub_python)))


@pytest.mark.parametrize("mode", ["fresh", "existing"])
def test_a_real_run_executes_exactly_the_dry_run_plan(tmp_path, mode):
    args = ["--project", PROJECT, "--alert-email=oncall@example.com"]
    extra = ["--assume-existing"] if mode == "existing" else []
    plan = stub_plan(tmp_path, *args, *extra)
    run = run_with_stub(tmp_path, mode, *args, invokers=DROPPED if mode == "existing" else "")
    assert run.result.returncode == 0, run.result.stderr
    assert without_temp_paths(run.gcloud) == with_looked_up_values(plan.commands)
    assert without_temp_paths(run.operator) == [
        [*c[1:], "token=ok"] for c in operator_commands(plan)
    ]
    # The trace of a real run goes to stderr, in the same format.
    assert "+ gcloud functions deploy notifier " in run.result.stderr
    # The Svix token and the endpoint's signing secret are never printed.
    output = run.result.stdout + run.result.stderr
    assert SVIX_TOKEN not in output
    assert ENDPOINT_SECRET not in output
    # ... nor left on disk.
    assert not list((tmp_path / "tmpdir").iterdir())


def test_a_real_run_removes_exactly_the_invokers_no_longer_listed(tmp_path):
    kept, dropped = "group:ops@example.com", "user:former@example.com"
    run = run_with_stub(
        tmp_path,
        "existing",
        "--project",
        PROJECT,
        f"--invoker={kept}",
        invokers=f"{kept}\n{dropped}",
    )
    assert run.result.returncode == 0, run.result.stderr
    removed = {
        (c[2], flag(c, "member"))
        for c in run.gcloud
        if c[:2] == ["functions", "remove-invoker-policy-binding"]
    }
    # The event function keeps only its trigger identity; the HTTP functions only `kept`.
    assert removed == {
        ("notifier", kept),
        ("notifier", dropped),
        ("notifier-notifications", dropped),
        ("notifier-app-portal", dropped),
    }


@pytest.mark.parametrize(
    ("failing", "function", "secret"),
    [
        ("catalog sync", "notifier-canary", "notifier-canary-secret"),
        ("heartbeat setup", "notifier-canary", "notifier-canary-secret"),
        ("operational setup", "notifier-operational", "notifier-operational-secret"),
    ],
)
def test_a_failing_operator_command_stops_the_deploy_and_leaves_no_secret_behind(
    tmp_path, failing, function, secret
):
    run = run_with_stub(tmp_path, "fresh", "--project", PROJECT, python_fails=failing)
    assert run.result.returncode != 0
    assert "operator command failed" in run.result.stderr
    assert not [c for c in run.gcloud if c[:3] == ["functions", "deploy", function]]
    assert not [c for c in run.gcloud if c[:4] == ["secrets", "versions", "add", secret]]
    assert not list((tmp_path / "tmpdir").iterdir())


def test_a_changed_signing_secret_becomes_a_new_pinned_version(tmp_path):
    run = run_with_stub(
        tmp_path, "existing", "--project", PROJECT, canary_secret="whsec_b2xkLXNlY3JldA=="
    )
    assert run.result.returncode == 0, run.result.stderr
    [add] = [c for c in run.gcloud if c[:3] == ["secrets", "versions", "add"]]
    assert add[3] == "notifier-canary-secret"
    [canary] = [c for c in run.gcloud if c[:3] == ["functions", "deploy", "notifier-canary"]]
    # The new version (2, as the stub answers) is what the canary mounts.
    assert flag(canary, "set-secrets") == "NOTIFIER_CANARY_SECRET=notifier-canary-secret:2"
    assert run.gcloud.index(add) < run.gcloud.index(canary)
    assert "whsec_b2xkLXNlY3JldA==" not in run.result.stdout + run.result.stderr


def test_a_real_run_stops_with_instructions_when_the_secret_is_missing(tmp_path):
    run = run_with_stub(tmp_path, "fresh", "--project", PROJECT, secret=False)
    result, executed = run.result, run.gcloud
    assert result.returncode != 0
    assert 'printf %s "$TOKEN" | gcloud secrets create svix-api-key --data-file=-' in (
        result.stderr
    )
    assert not [c for c in executed if c[:2] == ["functions", "deploy"]]
