"""Options: flags over environment variables over defaults, every one refused before anything runs
when wrong (config.py's settings by config.py's own rules), and all of them in --help."""

from __future__ import annotations

import re

import pytest

from tests.unit.deploy.plan import (
    OUTCOMES,
    PROJECT,
    dry_run,
    env_vars,
    flag,
)
from tests.unit.deploy.running import run_deploy, scrubbed_env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout=60"], "longest delivery"),
        (["--retry-budget-seconds=100"], "longest delivery"),
        (["--lease-seconds=9"], "NOTIFIER_LEASE_SECONDS must be at least 10"),
        (["--concurrency=5", "--cpu=0.5"], "cpu"),
        (["--max-delivery-attempts=3"], "max-delivery-attempts"),
        (["--function-name=Bad_Name"], "function-name"),
        (["--svix-server-url=https://a,b"], "svix-server-url"),
        (["--log-level=LOUD"], "log-level"),
        (["--portal-expiry-seconds=60"], "portal-expiry-seconds"),
        (["--no-such-flag"], "unknown option"),
        (["--function-name=notifier-staging-eu-1"], "function-name"),  # 21: SA ids too long
        (["--retention=32d"], "retention"),
        (["--retention=5m"], "retention"),
        (["--retention=7days"], "retention"),
        (["--notifications-ingress=public"], "notifications-ingress"),
        (["--app-portal-ingress=internal"], "app-portal-ingress"),
        (["--heartbeat-minutes=0"], "heartbeat-minutes"),
        (["--heartbeat-minutes=7"], "heartbeat-minutes"),  # */7 would skip at each hour
        (["--heartbeat-absent-minutes=5"], "heartbeat-absent-minutes"),  # < 2 heartbeats
        (["--target-rate=0"], "target-rate"),
        (["--target-rate=fast"], "target-rate"),
        (["--secret-version=latest"], "secret-version"),
        (["--target-rate=1000", "--min-instances=50", "--max-instances=20"], "min-instances"),
        (["--assume-existing"], None),  # only valid with --dry-run; checked below
    ],
)
def test_invalid_settings_are_refused_before_anything_runs(tmp_path, args, message):
    if message is None:
        result = run_deploy(tmp_path, "--project", PROJECT, *args)
        message = "--dry-run"
    else:
        result = run_deploy(tmp_path, "--dry-run", "--project", PROJECT, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "+ gcloud" not in result.stdout


def test_flags_override_defaults(tmp_path):
    plan = dry_run(
        tmp_path,
        "--project=other-proj",
        "--region=us-central1",
        "--topic=orders",
        "--function-name=notifier-staging",
        "--secret=svix-staging",
        "--svix-server-url=https://api.eu.svix.com",
        "--max-instances=3",
        "--max-delivery-attempts=5",
        "--portal-expiry-seconds=7200",
    )
    deploy = plan.one("gcloud", "functions", "deploy", "notifier-staging")
    assert flag(deploy, "region") == "us-central1"
    assert flag(deploy, "project") == "other-proj"
    assert flag(deploy, "trigger-topic") == "orders"
    assert flag(deploy, "max-instances") == "3"
    assert flag(deploy, "set-secrets") == "SVIX_API_KEY=svix-staging:1"
    assert (
        flag(deploy, "service-account") == "notifier-staging-sa@other-proj.iam.gserviceaccount.com"
    )
    assert env_vars(deploy)["SVIX_SERVER_URL"] == "https://api.eu.svix.com"
    portal = plan.one("gcloud", "functions", "deploy", "notifier-staging-app-portal")
    assert env_vars(portal)["NOTIFIER_PORTAL_EXPIRY_SECONDS"] == "7200"
    assert plan.one("gcloud", "pubsub", "topics", "create", "orders-dead-letter")
    assert plan.one("gcloud", "pubsub", "subscriptions", "create", "orders-dead-letter-sub")
    update = plan.one(
        "gcloud",
        "pubsub",
        "subscriptions",
        "update",
        "projects/other-proj/subscriptions/TRIGGER_SUBSCRIPTION",
    )
    assert flag(update, "max-delivery-attempts") == "5"
    assert plan.one("gcloud", "functions", "deploy", "notifier-staging-notifications")
    assert {c[4] for c in plan.find("gcloud", "logging", "metrics", "create")} == {
        *(f"notifier_staging_{o}" for o in OUTCOMES),
        "notifier_staging_catalog_drift",
        "notifier_staging_heartbeat",
        "notifier_staging_heartbeat_latency",
        "notifier_staging_endpoint_disabled",
    }
    assert plan.one("gcloud", "scheduler", "jobs", "create", "http", "notifier-staging-heartbeat")
    for command in plan.commands:
        if "--region=europe-west1" in command or "--location=europe-west1" in command:
            pytest.fail(f"default region left in {command}")


def test_environment_variables_configure_and_flags_win(tmp_path):
    env = scrubbed_env(
        tmp_path,
        GOOGLE_CLOUD_PROJECT="env-proj",
        NOTIFIER_REGION="asia-east1",
        NOTIFIER_TOPIC="t-env",
    )
    plan = dry_run(tmp_path, "--region", "us-east1", env=env)
    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    assert flag(deploy, "project") == "env-proj"
    assert flag(deploy, "region") == "us-east1"
    assert flag(deploy, "trigger-topic") == "t-env"


def test_a_project_is_required(tmp_path):
    result = run_deploy(tmp_path, "--dry-run")
    assert result.returncode != 0
    assert "--project" in result.stderr
    assert "+ gcloud" not in result.stdout


def test_help(tmp_path):
    result = run_deploy(tmp_path, "--help")
    assert result.returncode == 0
    for option in (
        *("--project", "--region", "--topic", "--function-name", "--secret", "--dry-run"),
        *("--target-rate", "--retention", "--backlog-age-alert", "--secret-version"),
        *("--notifications-ingress", "--app-portal-ingress", "--heartbeat-minutes"),
        *("--heartbeat-absent-minutes", "--heartbeat-latency-alert-ms", "--canary-secret"),
        "--operational-secret",
    ):
        assert re.search(rf"(^|, )\s*{option}(=|\s)", result.stdout, re.M), option
