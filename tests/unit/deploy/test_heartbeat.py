"""Svix and the heartbeat: the catalog synced, the heartbeat's Svix side set up before the public
canary is deployed, the Scheduler job that publishes heartbeats, and the alerts on them."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from notifier.cli.commands import status
from tests.unit.deploy.plan import (
    HEARTBEAT_SA,
    PROJECT,
    Plan,
    dry_run,
    env_vars,
    exemptions,
    flag,
    operator_commands,
    policies,
)
from tests.unit.deploy.test_firestore import UNINDEXED


def test_the_catalog_is_synced_without_pruning(plan):
    [sync] = [c for c in operator_commands(plan) if c[3:5] == ["catalog", "sync"]]
    assert "--prune" not in sync
    assert "--dry-run" not in sync
    read = plan.one("gcloud", "secrets", "versions", "access", "1")
    assert plan.index(read) < plan.index(sync)


def test_the_heartbeat_job_publishes_to_the_platform_topic_as_its_own_account(plan, tmp_path):
    job = plan.one("gcloud", "scheduler", "jobs", "create", "http", "notifier-heartbeat")
    assert flag(job, "schedule") == "*/5 * * * *"
    assert flag(job, "location") == "europe-west1"
    # Pub/Sub's REST publish method on the platform topic, as notifier-hb-sa.
    assert flag(job, "uri") == (
        f"https://pubsub.googleapis.com/v1/projects/{PROJECT}/topics/platform-events:publish"
    )
    assert flag(job, "http-method") == "POST"
    assert flag(job, "oauth-service-account-email") == HEARTBEAT_SA
    assert flag(job, "oauth-token-scope") == "https://www.googleapis.com/auth/pubsub"
    [message] = json.loads(flag(job, "message-body"))["messages"]
    assert json.loads(base64.b64decode(message["data"])) == {"object": "heartbeat"}
    assert message["attributes"] == {"notifier": "heartbeat"}
    assert plan.find("gcloud", "scheduler", "jobs", "describe", "notifier-heartbeat")
    assert "cloudscheduler.googleapis.com" in plan.one("gcloud", "services", "enable")
    other = dry_run(tmp_path, "--project", PROJECT, "--heartbeat-minutes=6")
    job = other.one("gcloud", "scheduler", "jobs", "create", "http", "notifier-heartbeat")
    assert flag(job, "schedule") == "*/6 * * * *"


def test_the_canary_is_public_and_is_set_up_before_it_is_deployed(plan):
    canary = plan.one("gcloud", "functions", "deploy", "notifier-canary")
    assert flag(canary, "entry-point") == "canary"
    assert "--allow-unauthenticated" in canary
    assert flag(canary, "ingress-settings") == "all"
    assert int(flag(canary, "max-instances")) <= 3
    assert "--trigger-http" in canary
    public = [
        c for c in plan.find("gcloud", "functions", "deploy") if "--allow-unauthenticated" in c
    ]
    # The other public function is the operational webhooks' (tests/unit/deploy/test_operational.py)
    assert public == [canary, plan.one("gcloud", "functions", "deploy", "notifier-operational")]
    # The setup command (another branch's CLI) makes the Svix app and endpoint, pointing at
    # the canary's address, and writes the signing secret to a file that becomes a version.
    [setup] = [c for c in operator_commands(plan) if c[3:5] == ["heartbeat", "setup"]]
    assert flag(setup, "canary-url") == (
        f"https://europe-west1-{PROJECT}.cloudfunctions.net/notifier-canary"
    )
    add = plan.one("gcloud", "secrets", "versions", "add", "notifier-canary-secret")
    assert flag(add, "data-file") == flag(setup, "secret-file")
    assert plan.index(setup) < plan.index(add) < plan.index(canary)
    create = plan.one("gcloud", "secrets", "create", "notifier-canary-secret")
    assert flag(create, "replication-policy") == "automatic"


def test_the_plan_gives_the_heartbeat_code_what_it_needs(plan):
    """The canary starts on its deployed environment (no Svix token), the setup command parses the
    planned arguments, and latest() keeps the index it orders by."""
    from notifier.cli.commands import registered
    from notifier.cli.parser import build_parser
    from notifier.config import Settings

    canary = plan.one("gcloud", "functions", "deploy", "notifier-canary")
    settings = Settings.from_env(env_vars(canary), svix=False)
    assert (settings.gcp_project, settings.record_ttl_days) == (PROJECT, 30)
    assert flag(canary, "set-secrets").startswith("NOTIFIER_CANARY_SECRET=")
    [setup] = [c for c in operator_commands(plan) if c[3:5] == ["heartbeat", "setup"]]
    assert setup[1:3] == ["-m", "notifier"]
    args = build_parser(registered().values()).parse_args(setup[3:])
    assert (args.command, args.action) == ("heartbeat", "setup")
    assert args.canary_url == flag(setup, "canary-url")
    assert str(args.secret_file) == flag(setup, "secret-file")
    assert "arrived_at" not in exemptions(plan)["heartbeats"]
    assert "arrived_at" not in UNINDEXED.get("heartbeats", set())


def heartbeat_conditions(plan: Plan) -> dict[str, dict]:
    policy = policies(plan)["notifier (notifier): heartbeat"]
    return {c["displayName"]: c for c in policy["conditions"]}


def test_heartbeat_alerts_when_none_arrives_or_when_late(plan, tmp_path):
    conditions = heartbeat_conditions(plan)
    absent = conditions["No heartbeat for 15 min"]["conditionAbsent"]
    assert 'metric.type="logging.googleapis.com/user/notifier_heartbeat"' in absent["filter"]
    assert absent["duration"] == "900s"
    [late] = [c["conditionThreshold"] for n, c in conditions.items() if n.startswith("Heartbeat")]
    assert 'logging.googleapis.com/user/notifier_heartbeat_latency"' in late["filter"]
    assert late["thresholdValue"] == 60000
    assert late["duration"] == "900s"  # stays above, not a single slow heartbeat
    other = dry_run(
        tmp_path, "--project", PROJECT, "--heartbeat-absent-minutes=30",
        "--heartbeat-latency-alert-ms=20000",
    )  # fmt: skip
    conditions = heartbeat_conditions(other)
    assert conditions["No heartbeat for 30 min"]["conditionAbsent"]["duration"] == "1800s"
    [late] = [c["conditionThreshold"] for n, c in conditions.items() if n.startswith("Heartbeat")]
    assert late["thresholdValue"] == 20000


def test_status_reads_the_heartbeat_with_deploy_sh_s_default_schedule(plan):
    """``notifier status``'s defaults are what a default deployment schedules and alerts on
    (deploy.sh's plan): otherwise a default deployment is misjudged."""
    job = plan.one("gcloud", "scheduler", "jobs", "create", "http", "notifier-heartbeat")
    every = int(flag(job, "schedule").split()[0].removeprefix("*/"))
    assert timedelta(minutes=every) == status.HEARTBEAT_EVERY
    absent = [
        condition["conditionAbsent"]["duration"]
        for policy in policies(plan).values()
        for condition in policy["conditions"]
        if "conditionAbsent" in condition
    ]
    assert [timedelta(seconds=int(d.removesuffix("s"))) for d in absent] == [
        status.HEARTBEAT_LATE_AFTER
    ]
