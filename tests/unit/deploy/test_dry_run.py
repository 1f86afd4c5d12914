"""The dry run itself: only comments and shell-quoted commands, deterministic, no gcloud needed,
and a re-run's plan (--assume-existing) that updates instead of creating."""

from __future__ import annotations

import json
import shutil

from tests.unit.deploy.plan import (
    PROJECT,
    TRIGGER_SUB,
    dry_run,
    flag,
    operator_commands,
)
from tests.unit.deploy.running import scrubbed_env


def test_every_line_is_a_comment_or_a_quoted_gcloud_command(plan):
    assert plan.commands
    gcloud = [c for c in plan.commands if c[0] == "gcloud"]
    assert all(f"--project={PROJECT}" in c or PROJECT in c for c in gcloud)
    # Besides gcloud, only the project's own operator commands (python -m notifier ...).
    for command in operator_commands(plan):
        assert command[1:3] == ["-m", "notifier"], command


def test_dry_run_is_deterministic(tmp_path, plan):
    again = dry_run(tmp_path, "--project", PROJECT)
    assert again.stdout == plan.stdout


def test_dry_run_needs_no_gcloud_at_all(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mkdir"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    plan = dry_run(tmp_path, "--project", PROJECT, env=scrubbed_env(tmp_path, path=str(bin_dir)))
    assert plan.find("gcloud", "functions", "deploy", "notifier")


def test_a_re_run_updates_instead_of_creating(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--assume-existing")
    creates = [c[:4] for c in plan.commands if "create" in c[:5]]
    assert creates == [["gcloud", "beta", "services", "identity"]]  # itself idempotent
    assert len(plan.find("gcloud", "logging", "metrics", "update")) == 9
    assert plan.find(
        "gcloud", "pubsub", "subscriptions", "update", "platform-events-dead-letter-sub"
    )
    for kind in ("ALERT", "BACKLOG", "HEARTBEAT", "ENDPOINT_DISABLED"):
        policy_name = f"projects/{PROJECT}/alertPolicies/{kind}_POLICY_ID"
        update = plan.one("gcloud", "alpha", "monitoring", "policies", "update", policy_name)
        assert json.loads(flag(update, "policy"))["conditions"]
    assert plan.one(
        "gcloud",
        "monitoring",
        "dashboards",
        "update",
        "projects/PROJECT_NUMBER/dashboards/DASHBOARD_ID",
    )
    assert plan.one("gcloud", "scheduler", "jobs", "update", "http", "notifier-heartbeat")
    assert not plan.find("gcloud", "firestore", "fields", "ttls", "update")  # already ACTIVE
    assert not plan.find("gcloud", "firestore", "indexes", "fields", "update")  # already exempt
    # The signing secrets are unchanged: no new version, the functions keep version 1.
    assert not plan.find("gcloud", "secrets", "versions", "add")
    canary = plan.one("gcloud", "functions", "deploy", "notifier-canary")
    assert flag(canary, "set-secrets") == "NOTIFIER_CANARY_SECRET=notifier-canary-secret:1"
    operational = plan.one("gcloud", "functions", "deploy", "notifier-operational")
    assert flag(operational, "set-secrets") == (
        "SVIX_OPERATIONAL_WEBHOOK_SECRET=notifier-operational-secret:1"
    )
    # Deploys, IAM bindings and the dead-letter policy are re-applied as they are.
    assert len(plan.find("gcloud", "functions", "deploy")) == 5
    assert plan.find("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)
