"""deploy.sh and .gcloudignore, checked offline.

``./deploy.sh --dry-run`` prints every gcloud command (``+ `` prefix, shell-quoted, one per line)
without running anything, so these tests parse that plan and assert on the commands. They run
with a scrubbed environment: no credentials, and ``CLOUDSDK_CONFIG`` in a temp dir so no real
gcloud configuration is read or touched.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy.sh"
GCLOUDIGNORE = ROOT / ".gcloudignore"

PROJECT = "demo-proj"
SA = f"notifier-sa@{PROJECT}.iam.gserviceaccount.com"
API_SA = f"notifier-api-sa@{PROJECT}.iam.gserviceaccount.com"
PORTAL_SA = f"notifier-portal-sa@{PROJECT}.iam.gserviceaccount.com"
CANARY_SA = f"notifier-canary-sa@{PROJECT}.iam.gserviceaccount.com"
HEARTBEAT_SA = f"notifier-hb-sa@{PROJECT}.iam.gserviceaccount.com"
DATABASE_CONDITION = f'resource.name=="projects/{PROJECT}/databases/(default)"'
DROPPED = f"serviceAccount:DROPPED_INVOKER@{PROJECT}.iam.gserviceaccount.com"
PUBSUB_AGENT = "service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
TRIGGER_SUB = f"projects/{PROJECT}/subscriptions/TRIGGER_SUBSCRIPTION"
OUTCOMES = ("sent", "duplicate", "rejected", "failed", "retried")
REQUIRED_APIS = {
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "firestore.googleapis.com",
    "secretmanager.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
}
# What notifier/config.py computes as the longest delivery with the default Svix retry
# schedule: the budget, then 4 attempts (1 + 3 SDK retries) of the Svix timeout, plus 0.35 s.
SVIX_ATTEMPTS = 4


# --------------------------------------------------------------------------------------------
# Running deploy.sh
# --------------------------------------------------------------------------------------------


def scrubbed_env(tmp: Path, path: str | None = None, **extra: str) -> dict[str, str]:
    """No credentials, no inherited NOTIFIER_*/GOOGLE_* settings, a throwaway gcloud config."""
    (tmp / "home").mkdir(exist_ok=True)
    env = {
        "PATH": path if path is not None else os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp / "home"),
        "CLOUDSDK_CONFIG": str(tmp / "gcloud-config"),
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


@dataclass
class Plan:
    """The parsed output of ``deploy.sh --dry-run``."""

    stdout: str
    stderr: str
    commands: list[list[str]]

    def find(self, *prefix: str) -> list[list[str]]:
        return [c for c in self.commands if c[: len(prefix)] == list(prefix)]

    def one(self, *prefix: str) -> list[str]:
        found = self.find(*prefix)
        assert len(found) == 1, f"expected one {' '.join(prefix)!r}, got {found}"
        return found[0]

    def index(self, command: Sequence[str]) -> int:
        return self.commands.index(list(command))


def parse_plan(stdout: str) -> list[list[str]]:
    commands = []
    for line in stdout.splitlines():
        if line.startswith("# wrote "):
            continue
        if line.startswith("+ "):
            commands.append(shlex.split(line[2:], comments=True))
        else:
            assert line == "" or line.startswith("#"), f"unexpected dry-run line: {line!r}"
    return commands


def run_deploy(tmp: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(DEPLOY), *args],
        env=env if env is not None else scrubbed_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp,
    )


def dry_run(tmp: Path, *args: str, env: dict[str, str] | None = None) -> Plan:
    result = run_deploy(tmp, "--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    return Plan(result.stdout, result.stderr, parse_plan(result.stdout))


def flag(command: Sequence[str], name: str) -> str:
    """Value of --name=value in a command (exactly once)."""
    values = [a.split("=", 1)[1] for a in command if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"--{name} appears {len(values)} times in {command}"
    return values[0]


def env_vars(command: Sequence[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in flag(command, "set-env-vars").split(","))


@pytest.fixture(scope="module")
def plan(tmp_path_factory) -> Plan:
    return dry_run(tmp_path_factory.mktemp("deploy"), "--project", PROJECT)


# --------------------------------------------------------------------------------------------
# The event function
# --------------------------------------------------------------------------------------------


def test_event_function_is_deployed_gen2_on_the_topic_with_retries(plan):
    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    for expected in ("--gen2", "--retry"):
        assert expected in deploy
    assert flag(deploy, "runtime") == "python311"
    assert flag(deploy, "entry-point") == "on_event"
    assert flag(deploy, "trigger-topic") == "platform-events"
    assert flag(deploy, "region") == "europe-west1"
    assert flag(deploy, "project") == PROJECT
    assert flag(deploy, "source") == "."
    # A dedicated identity, both for running and for the Eventarc trigger.
    assert flag(deploy, "service-account") == SA
    assert flag(deploy, "trigger-service-account") == SA
    # Only Eventarc/Pub/Sub of the project can reach it.
    assert flag(deploy, "ingress-settings") == "internal-only"


def test_svix_token_comes_from_secret_manager_by_pinned_version_never_from_env_vars(plan):
    deploys = plan.find("gcloud", "functions", "deploy")
    assert [d[3] for d in deploys] == [
        "notifier",
        "notifier-notifications",
        "notifier-app-portal",
        "notifier-canary",
    ]
    lookup = plan.one("gcloud", "secrets", "versions", "list", "svix-api-key")
    assert flag(lookup, "filter") == "state=enabled"
    assert flag(lookup, "sort-by") == "~createTime"
    assert flag(lookup, "limit") == "1"
    for deploy in deploys[:3]:
        # The newest enabled version at deploy time (shown as 1 in a dry run), never "latest".
        assert flag(deploy, "set-secrets") == "SVIX_API_KEY=svix-api-key:1"
        assert "SVIX_API_KEY" not in env_vars(deploy)
        assert "SVIX_API_KEY=" not in flag(deploy, "set-env-vars")
        assert plan.index(lookup) < plan.index(deploy)
    # The canary never calls Svix: it gets its signing secret only.
    assert flag(deploys[3], "set-secrets") == "NOTIFIER_CANARY_SECRET=notifier-canary-secret:1"
    # Read only once, into memory, for the operator commands (never printed: see the stub runs).
    reads = [c for c in plan.commands if c[:4] == ["gcloud", "secrets", "versions", "access"]]
    assert [(r[4], flag(r, "secret")) for r in reads] == [("1", "svix-api-key")]
    assert plan.find("gcloud", "secrets", "describe", "svix-api-key")


def test_an_explicit_secret_version_is_mounted_as_given(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--secret-version=7")
    assert not plan.find("gcloud", "secrets", "versions", "list", "svix-api-key")
    for name in ("notifier", "notifier-notifications", "notifier-app-portal"):
        deploy = plan.one("gcloud", "functions", "deploy", name)
        assert flag(deploy, "set-secrets") == "SVIX_API_KEY=svix-api-key:7"


def test_a_local_svix_token_never_leaks_into_the_plan(tmp_path):
    canary = "testsk_canary-do-not-print-4711"
    env = scrubbed_env(tmp_path, SVIX_API_KEY=canary)
    result = run_deploy(tmp_path, "--dry-run", "--project", PROJECT, env=env)
    assert result.returncode == 0, result.stderr
    assert canary not in result.stdout + result.stderr


def test_runtime_environment_of_the_functions(plan):
    env = env_vars(plan.one("gcloud", "functions", "deploy", "notifier"))
    assert env["GOOGLE_CLOUD_PROJECT"] == PROJECT  # python311 does not set it itself
    assert env["FIRESTORE_DATABASE"] == "(default)"
    assert env["NOTIFIER_RETRY_BUDGET_SECONDS"] == "30"
    assert env["NOTIFIER_LEASE_SECONDS"] == "120"
    assert env["NOTIFIER_SVIX_TIMEOUT_SECONDS"] == "10"
    assert env["NOTIFIER_RECORD_TTL_DAYS"] == "30"
    assert env["NOTIFIER_LOG_LEVEL"] == "INFO"
    assert "SVIX_SERVER_URL" not in env  # optional: only when given


def test_chosen_limits_are_consistent(plan):
    for deploy in plan.find("gcloud", "functions", "deploy"):
        env = env_vars(deploy)
        timeout = int(flag(deploy, "timeout").removesuffix("s"))
        budget = int(env["NOTIFIER_RETRY_BUDGET_SECONDS"])
        svix_timeout = int(env["NOTIFIER_SVIX_TIMEOUT_SECONDS"])
        lease = int(env["NOTIFIER_LEASE_SECONDS"])
        assert timeout > budget + SVIX_ATTEMPTS * svix_timeout + 1
        assert lease > timeout
        assert timeout < 600  # below the Pub/Sub push ack deadline
        concurrency = int(flag(deploy, "concurrency"))
        assert concurrency > 1
        assert float(flag(deploy, "cpu")) >= 1  # required for concurrency > 1
        assert env["THREADS"] == str(concurrency)
        assert flag(deploy, "memory")
        assert int(flag(deploy, "max-instances")) >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout=60"], "longest delivery"),
        (["--retry-budget-seconds=100"], "longest delivery"),
        (["--lease-seconds=90"], "lease"),
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


# --------------------------------------------------------------------------------------------
# Pub/Sub: topics, dead-lettering, IAM for the Pub/Sub service agent
# --------------------------------------------------------------------------------------------


def test_dead_letter_topic_and_its_subscription(plan):
    assert plan.one("gcloud", "pubsub", "topics", "create", "platform-events")
    assert plan.one("gcloud", "pubsub", "topics", "create", "platform-events-dead-letter")
    sub = plan.one("gcloud", "pubsub", "subscriptions", "create", "platform-events-dead-letter-sub")
    assert flag(sub, "topic") == "platform-events-dead-letter"
    # Dead letters are kept the Pub/Sub maximum, 31 days.
    assert flag(sub, "message-retention-duration") == "31d"
    assert flag(sub, "expiration-period") == "never"


def test_trigger_subscription_is_found_through_eventarc_and_gets_a_dead_letter_policy(plan):
    describe_fn = plan.one("gcloud", "functions", "describe", "notifier")
    assert flag(describe_fn, "format") == "value(eventTrigger.trigger)"
    describe_trigger = plan.one("gcloud", "eventarc", "triggers", "describe", "TRIGGER_ID")
    assert flag(describe_trigger, "format") == "value(transport.pubsub.subscription)"
    assert flag(describe_trigger, "location") == "europe-west1"

    update = plan.one("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)
    assert (
        flag(update, "dead-letter-topic")
        == f"projects/{PROJECT}/topics/platform-events-dead-letter"
    )
    assert flag(update, "max-delivery-attempts") == "10"
    assert flag(update, "min-retry-delay") == "10s"
    assert flag(update, "max-retry-delay") == "600s"
    assert int(flag(update, "ack-deadline")) == 600
    # Eventarc's subscription keeps 24 h by default; ours keeps 7 days.
    assert flag(update, "message-retention-duration") == "7d"

    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    dlt = plan.one("gcloud", "pubsub", "topics", "create", "platform-events-dead-letter")
    assert plan.index(dlt) < plan.index(deploy) < plan.index(describe_fn) < plan.index(update)


def test_pubsub_service_agent_may_forward_dead_letters(plan):
    publisher = plan.one(
        "gcloud", "pubsub", "topics", "add-iam-policy-binding", "platform-events-dead-letter"
    )
    assert flag(publisher, "member") == f"serviceAccount:{PUBSUB_AGENT}"
    assert flag(publisher, "role") == "roles/pubsub.publisher"
    subscriber = plan.one(
        "gcloud", "pubsub", "subscriptions", "add-iam-policy-binding", TRIGGER_SUB
    )
    assert flag(subscriber, "member") == f"serviceAccount:{PUBSUB_AGENT}"
    assert flag(subscriber, "role") == "roles/pubsub.subscriber"
    assert plan.one("gcloud", "projects", "describe", PROJECT)  # where PROJECT_NUMBER comes from


# --------------------------------------------------------------------------------------------
# Service account and IAM
# --------------------------------------------------------------------------------------------


def grants(plan: Plan, kind: str, resource: str | None = None) -> set[tuple[str, str]]:
    """(member, role) pairs granted by add-iam-policy-binding on a kind of resource."""
    found = set()
    for command in plan.commands:
        on_kind = command[: 1 + len(kind.split())] == ["gcloud", *kind.split()]
        if not (on_kind and "add-iam-policy-binding" in command[:5]):
            continue
        target = command[command.index("add-iam-policy-binding") + 1]
        if resource is None or target == resource:
            member = flag(command, "member").removeprefix("serviceAccount:")
            found.add((member, flag(command, "role")))
    return found


def test_one_service_account_per_function(plan):
    created = {c[4] for c in plan.find("gcloud", "iam", "service-accounts", "create")}
    assert created == {
        "notifier-sa",
        "notifier-api-sa",
        "notifier-portal-sa",
        "notifier-canary-sa",
        "notifier-hb-sa",
    }
    for name, sa in (
        ("notifier", SA),
        ("notifier-notifications", API_SA),
        ("notifier-app-portal", PORTAL_SA),
        ("notifier-canary", CANARY_SA),
    ):
        assert flag(plan.one("gcloud", "functions", "deploy", name), "service-account") == sa
    job = plan.one("gcloud", "scheduler", "jobs", "create", "http", "notifier-heartbeat")
    assert flag(job, "oauth-service-account-email") == HEARTBEAT_SA


def test_firestore_access_is_conditioned_to_the_notifiers_database(plan):
    project_grants = plan.find("gcloud", "projects", "add-iam-policy-binding")
    assert {(flag(g, "member"), flag(g, "role")) for g in project_grants} == {
        (f"serviceAccount:{SA}", "roles/datastore.user"),
        (f"serviceAccount:{API_SA}", "roles/datastore.user"),
        # The App Portal link only reads applications/.
        (f"serviceAccount:{PORTAL_SA}", "roles/datastore.viewer"),
        (f"serviceAccount:{CANARY_SA}", "roles/datastore.user"),
    }
    for grant in project_grants:
        condition = dict(part.split("=", 1) for part in flag(grant, "condition").split(",", 2))
        assert condition["expression"] == DATABASE_CONDITION
        assert condition["title"]
    # The project-wide grant of earlier versions is looked up (and removed if still there).
    lookup = plan.one("gcloud", "projects", "get-iam-policy", PROJECT)
    assert "-bindings.condition:*" in flag(lookup, "filter")


def test_the_database_condition_follows_database(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--database=notifier-db")
    for grant in plan.find("gcloud", "projects", "add-iam-policy-binding"):
        assert f'resource.name=="projects/{PROJECT}/databases/notifier-db"' in flag(
            grant, "condition"
        )


def test_secrets_are_readable_only_by_the_functions_that_mount_them(plan):
    assert grants(plan, "secrets", "svix-api-key") == {
        (SA, "roles/secretmanager.secretAccessor"),
        (API_SA, "roles/secretmanager.secretAccessor"),
        (PORTAL_SA, "roles/secretmanager.secretAccessor"),
    }
    assert grants(plan, "secrets", "notifier-canary-secret") == {
        (CANARY_SA, "roles/secretmanager.secretAccessor")
    }


def test_invoker_and_publisher_grants_are_only_where_needed(plan):
    # The trigger identity may invoke the event function's service, nothing else.
    invoker = plan.one("gcloud", "functions", "add-invoker-policy-binding", "notifier")
    assert flag(invoker, "member") == f"serviceAccount:{SA}"
    assert (
        flag(plan.one("gcloud", "functions", "deploy", "notifier"), "trigger-service-account") == SA
    )
    # Pub/Sub signs push requests as the trigger SA: token creator on that SA only.
    token = plan.one("gcloud", "iam", "service-accounts", "add-iam-policy-binding", SA)
    assert flag(token, "member") == f"serviceAccount:{PUBSUB_AGENT}"
    assert flag(token, "role") == "roles/iam.serviceAccountTokenCreator"
    # The heartbeat publisher may publish to the platform topic, nothing else.
    assert grants(plan, "pubsub topics", "platform-events") == {
        (HEARTBEAT_SA, "roles/pubsub.publisher")
    }
    for command in plan.commands:
        joined = " ".join(command)
        assert "roles/owner" not in joined
        assert "roles/editor" not in joined
        assert (
            HEARTBEAT_SA not in joined
            or "platform-events" in joined
            or "service-accounts" in joined
        )


def test_required_apis_are_enabled_first(plan):
    enable = plan.one("gcloud", "services", "enable")
    assert set(enable) >= REQUIRED_APIS
    assert plan.index(enable) == 0


def test_secret_is_checked_before_the_functions_are_deployed(plan):
    check = plan.one("gcloud", "secrets", "describe", "svix-api-key")
    first_deploy = plan.find("gcloud", "functions", "deploy")[0]
    assert plan.index(check) < plan.index(first_deploy)


# --------------------------------------------------------------------------------------------
# HTTP functions
# --------------------------------------------------------------------------------------------


def test_http_functions_require_authentication(plan):
    for name, entry_point, sa in (
        ("notifier-notifications", "notifications", API_SA),
        ("notifier-app-portal", "app_portal", PORTAL_SA),
    ):
        deploy = plan.one("gcloud", "functions", "deploy", name)
        assert flag(deploy, "entry-point") == entry_point
        assert "--trigger-http" in deploy
        assert "--no-allow-unauthenticated" in deploy
        assert "--allow-unauthenticated" not in deploy
        assert "--gen2" in deploy
        assert flag(deploy, "runtime") == "python311"
        assert flag(deploy, "service-account") == sa
        assert flag(deploy, "set-secrets") == "SVIX_API_KEY=svix-api-key:1"
        # The narrowest ingress by default; IAM applies on top.
        assert flag(deploy, "ingress-settings") == "internal-only"
    # Without --invoker nobody but project owners may call them.
    assert not plan.find("gcloud", "functions", "add-invoker-policy-binding", "notifier-app-portal")


def test_invokers_are_granted_on_the_http_functions_only(tmp_path):
    member = "serviceAccount:platform@other.iam.gserviceaccount.com"
    plan = dry_run(tmp_path, "--project", PROJECT, f"--invoker={member}")
    granted = {
        c[3]
        for c in plan.find("gcloud", "functions", "add-invoker-policy-binding")
        if flag(c, "member") == member
    }
    assert granted == {"notifier-notifications", "notifier-app-portal"}


def test_ingress_of_each_http_function_is_an_option(tmp_path):
    plan = dry_run(
        tmp_path,
        "--project",
        PROJECT,
        "--notifications-ingress=all",
        "--app-portal-ingress=internal-and-gclb",
    )
    notifications = plan.one("gcloud", "functions", "deploy", "notifier-notifications")
    assert flag(notifications, "ingress-settings") == "all"
    portal = plan.one("gcloud", "functions", "deploy", "notifier-app-portal")
    assert flag(portal, "ingress-settings") == "internal-and-gclb"
    assert flag(plan.one("gcloud", "functions", "deploy", "notifier"), "ingress-settings") == (
        "internal-only"
    )


def test_a_re_run_removes_invokers_no_longer_asked_for(tmp_path):
    kept = "group:ops@example.com"
    plan = dry_run(tmp_path, "--project", PROJECT, "--assume-existing", f"--invoker={kept}")
    for name in ("notifier-notifications", "notifier-app-portal"):
        read = plan.one("gcloud", "run", "services", "get-iam-policy", name)
        assert flag(read, "filter") == "bindings.role=roles/run.invoker"
        removed = plan.one("gcloud", "functions", "remove-invoker-policy-binding", name)
        assert flag(removed, "member") == DROPPED
        added = plan.one("gcloud", "functions", "add-invoker-policy-binding", name)
        assert flag(added, "member") == kept
        assert plan.index(added) < plan.index(read) < plan.index(removed)
    # A fresh project has nobody to remove.
    fresh = dry_run(tmp_path, "--project", PROJECT, f"--invoker={kept}")
    assert not fresh.find("gcloud", "functions", "remove-invoker-policy-binding")


# --------------------------------------------------------------------------------------------
# Firestore
# --------------------------------------------------------------------------------------------


def test_firestore_ttl_policies(plan):
    for collection in ("notifications", "rejected"):
        [ttl] = [
            c
            for c in plan.find("gcloud", "firestore", "fields", "ttls", "update", "expires_at")
            if flag(c, "collection-group") == collection
        ]
        assert "--enable-ttl" in ttl
        assert flag(ttl, "database") == "(default)"


def test_firestore_database_is_created_only_when_missing(plan):
    describe = plan.one("gcloud", "firestore", "databases", "describe")
    create = plan.one("gcloud", "firestore", "databases", "create")
    assert plan.index(describe) < plan.index(create)
    assert flag(create, "location") == "europe-west1"
    assert flag(create, "type") == "firestore-native"


# --------------------------------------------------------------------------------------------
# Observability
# --------------------------------------------------------------------------------------------


def test_five_log_based_metrics_on_the_outcome_field(plan):
    metrics = [
        c
        for c in plan.find("gcloud", "logging", "metrics", "create")
        if c[4].removeprefix("notifier_") in OUTCOMES
    ]
    assert sorted(c[4] for c in metrics) == sorted(f"notifier_{o}" for o in OUTCOMES)
    for command in metrics:
        outcome = command[4].removeprefix("notifier_")
        log_filter = flag(command, "log-filter")
        assert f'jsonPayload.outcome="{outcome}"' in log_filter
        assert 'resource.type="cloud_run_revision"' in log_filter
        assert 'resource.labels.service_name="notifier"' in log_filter


def policies(plan: Plan, verb: str = "create") -> dict[str, dict]:
    """The alert policies of the plan, by display name."""
    found = {}
    for command in plan.find("gcloud", "alpha", "monitoring", "policies", verb):
        policy = json.loads(flag(command, "policy"))
        found[policy["displayName"]] = policy
    return found


def test_alert_policy_on_failures_is_looked_up_by_display_name(plan):
    lookups = plan.find("gcloud", "alpha", "monitoring", "policies", "list")
    creates = plan.find("gcloud", "alpha", "monitoring", "policies", "create")
    assert len(lookups) == len(creates) == 3
    for lookup, create in zip(lookups, creates, strict=True):
        assert plan.index(lookup) < plan.index(create)
        name = json.loads(flag(create, "policy"))["displayName"]
        assert flag(lookup, "filter") == f'displayName="{name}"'
    policy = policies(plan)["notifier (notifier): delivery failures"]
    filters = [c["conditionThreshold"]["filter"] for c in policy["conditions"]]
    assert any('metric.type="logging.googleapis.com/user/notifier_failed"' in f for f in filters)
    assert any("platform-events-dead-letter-sub" in f for f in filters)
    assert policy["combiner"] == "OR"
    assert policy["notificationChannels"] == []
    # The metric must exist before a policy can refer to it.
    metric = plan.one("gcloud", "logging", "metrics", "create", "notifier_failed")
    assert plan.index(metric) < plan.index(creates[0])


def test_alert_email_gets_a_notification_channel(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--alert-email=oncall@example.com")
    lookup = plan.one("gcloud", "beta", "monitoring", "channels", "list")
    assert "oncall@example.com" in flag(lookup, "filter")
    channel = plan.one("gcloud", "beta", "monitoring", "channels", "create")
    assert flag(channel, "type") == "email"
    assert flag(channel, "channel-labels") == "email_address=oncall@example.com"
    for policy in policies(plan).values():
        assert policy["notificationChannels"] == [
            f"projects/{PROJECT}/notificationChannels/ALERT_EMAIL_CHANNEL_ID"
        ]


def test_existing_notification_channels_are_used(tmp_path):
    channel = f"projects/{PROJECT}/notificationChannels/123"
    plan = dry_run(tmp_path, "--project", PROJECT, "--notification-channel", channel)
    for policy in policies(plan).values():
        assert policy["notificationChannels"] == [channel]
    assert not plan.find("gcloud", "beta", "monitoring", "channels")


# --------------------------------------------------------------------------------------------
# Issue 11: index exemptions, retention, backlog, capacity
# --------------------------------------------------------------------------------------------

# Every timestamp, ever-growing value and blob of the records (CONTRACTS.md, issue 11), and
# every other field no operator query uses (tests/integration/test_indexes.py derives the set
# from the queries and the records; this is the plan's side).
UNINDEXED = {
    "notifications": {
        "created_at", "updated_at", "expires_at", "lease_expires_at", "sent_at", "failed_at",
        "last_error_at", "reopened_at", "event_time", "svix_first_call_at", "last_delivery_at",
        "payload", "event_id", "pubsub_message_id", "svix_message_id",
    },
    "rejected": {
        "created_at", "updated_at", "expires_at", "rejected_at", "last_delivery_at", "raw",
        "pubsub_message_id", "publish_time",
    },
    "heartbeats": {"expires_at", "published_at"},
}  # fmt: skip
# What the operator tools query by equality, or order by: these keep Firestore's default indexes.
QUERIED = {
    "notifications": {"status", "project", "event_type"},
    "rejected": set(),
    "heartbeats": {"arrived_at"},  # `latest` orders by it
}


def exemptions(plan: Plan) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for command in plan.find("gcloud", "firestore", "indexes", "fields", "update"):
        assert "--disable-indexes" in command
        assert flag(command, "database") == "(default)"
        found.setdefault(flag(command, "collection-group"), set()).add(command[5])
    return found


def test_ever_growing_fields_and_blobs_are_exempt_from_indexing(plan):
    found = exemptions(plan)
    for collection, fields in UNINDEXED.items():
        assert fields <= found[collection], fields - found[collection]
        assert not QUERIED[collection] & found[collection]
    # Each is looked up first, so that a re-run changes nothing (see the re-run test).
    for collection, fields in found.items():
        for field in fields:
            [describe] = [
                c
                for c in plan.find("gcloud", "firestore", "indexes", "fields", "describe", field)
                if flag(c, "collection-group") == collection
                and flag(c, "format") == "value(indexConfig.indexes)"
            ]
            assert describe


def test_the_ttl_field_is_exempted_before_its_ttl_policy_and_before_any_traffic(plan):
    first_deploy = plan.find("gcloud", "functions", "deploy")[0]
    for collection in ("notifications", "rejected", "heartbeats"):
        [exempt] = [
            c
            for c in plan.find("gcloud", "firestore", "indexes", "fields", "update", "expires_at")
            if flag(c, "collection-group") == collection
        ]
        [ttl] = [
            c
            for c in plan.find("gcloud", "firestore", "fields", "ttls", "update", "expires_at")
            if flag(c, "collection-group") == collection
        ]
        # Waited for: Firestore runs one operation per field at a time.
        assert "--async" not in exempt
        assert plan.index(exempt) < plan.index(ttl) < plan.index(first_deploy)


def test_retention_of_the_trigger_subscription_is_an_option_up_to_31_days(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--retention=31d")
    update = plan.one("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)
    assert flag(update, "message-retention-duration") == "31d"
    plan = dry_run(tmp_path, "--project", PROJECT, "--retention=36h")
    update = plan.one("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)
    assert flag(update, "message-retention-duration") == "36h"


def backlog_condition(plan: Plan) -> dict:
    [condition] = policies(plan)["notifier (notifier): backlog"]["conditions"]
    return condition["conditionThreshold"]


def test_an_alert_on_the_age_of_the_oldest_waiting_event(plan, tmp_path):
    condition = backlog_condition(plan)
    assert (
        'metric.type="pubsub.googleapis.com/subscription/oldest_unacked_message_age"'
        in condition["filter"]
    )
    # The subscription Eventarc made, by its short id (the resource label).
    assert 'resource.labels.subscription_id="TRIGGER_SUBSCRIPTION"' in condition["filter"]
    assert condition["thresholdValue"] == 900
    assert condition["comparison"] == "COMPARISON_GT"
    other = dry_run(tmp_path, "--project", PROJECT, "--backlog-age-alert=300")
    assert backlog_condition(other)["thresholdValue"] == 300


def bench_cpu_ms_per_new_event() -> float:
    """The function's CPU per new event, the highest of BENCHMARKS.md's "Where the CPU goes"."""
    text = (ROOT / "BENCHMARKS.md").read_text()
    section = text.split("## Where the CPU goes", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ")
    ]
    values = [float(r[3]) for r in rows if r[1:3] == ["new", "function"]]
    assert values, "BENCHMARKS.md has no CPU per new event: run make bench"
    return max(values)


def expected_sizing(rate: int, latency_ms: int = 300) -> dict[str, int]:
    """The capacity model of SCALING.md, computed here from its inputs."""
    cpu_ms = bench_cpu_ms_per_new_event()
    per_instance = int(0.60 * 1000 / cpu_ms)  # Cloud Run's 60% CPU target, 1 vCPU
    needed = -(-rate // per_instance)
    return {
        "per_instance": per_instance,
        "needed": needed,
        "max-instances": min(1000, max(2, 2 * needed)),
        "min-instances": -(-needed // 4),
        "concurrency": max(2, -(-per_instance * latency_ms // 1000)),
        "cpu": 1,
    }


@pytest.mark.parametrize("rate", [100, 1000, 10000])
def test_target_rate_derives_the_event_functions_capacity(tmp_path, rate):
    plan = dry_run(tmp_path, "--project", PROJECT, f"--target-rate={rate}")
    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    expected = expected_sizing(rate)
    for name in ("max-instances", "min-instances", "concurrency", "cpu"):
        assert int(flag(deploy, name)) == expected[name], name
    assert env_vars(deploy)["THREADS"] == str(expected["concurrency"])
    # In flight at most: enough for the rate at the planned latency.
    assert expected["max-instances"] * expected["concurrency"] >= rate * 0.3
    # The plan says which model it used.
    assert f"--target-rate={rate} events/s: {expected['per_instance']} events/s" in plan.stdout
    # The HTTP functions keep their own sizing.
    http = plan.one("gcloud", "functions", "deploy", "notifier-notifications")
    assert flag(http, "max-instances") == "10"


def test_explicit_sizing_wins_over_the_target_rate(tmp_path):
    plan = dry_run(
        tmp_path, "--project", PROJECT, "--target-rate=1000", "--max-instances=30",
        "--concurrency=20",
    )  # fmt: skip
    deploy = plan.one("gcloud", "functions", "deploy", "notifier")
    assert flag(deploy, "max-instances") == "30"
    assert flag(deploy, "concurrency") == "20"
    assert int(flag(deploy, "min-instances")) == expected_sizing(1000)["min-instances"]
    env = scrubbed_env(tmp_path, NOTIFIER_MAX_INSTANCES="40")
    plan = dry_run(tmp_path, "--project", PROJECT, "--target-rate=1000", env=env)
    assert flag(plan.one("gcloud", "functions", "deploy", "notifier"), "max-instances") == "40"


def test_scaling_md_shows_what_deploy_sh_derives(tmp_path):
    """SCALING.md's sizing table is the script's output, not a copy that drifts."""
    text = (ROOT / "SCALING.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().replace(",", "") for c in line.strip().strip("|").split("|")]
        if line.startswith("| `--target-rate=") and len(cells) >= 6:
            rows[int(cells[0].strip("`").split("=")[1])] = cells
    assert set(rows) == {100, 1000, 10000}
    for rate, cells in rows.items():
        plan = dry_run(tmp_path, "--project", PROJECT, f"--target-rate={rate}")
        deploy = plan.one("gcloud", "functions", "deploy", "notifier")
        expected = expected_sizing(rate)
        assert int(cells[1]) == expected["needed"]
        assert [int(c) for c in cells[2:6]] == [
            int(flag(deploy, n)) for n in ("max-instances", "min-instances", "concurrency", "cpu")
        ]


# --------------------------------------------------------------------------------------------
# Issue 12: heartbeat job, canary, heartbeat metrics and alerts, dashboard
# --------------------------------------------------------------------------------------------


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


def test_the_canary_is_the_one_public_function_and_is_set_up_before_it_is_deployed(plan):
    canary = plan.one("gcloud", "functions", "deploy", "notifier-canary")
    assert flag(canary, "entry-point") == "canary"
    assert "--allow-unauthenticated" in canary
    assert flag(canary, "ingress-settings") == "all"
    assert int(flag(canary, "max-instances")) <= 3
    assert "--trigger-http" in canary
    public = [
        c for c in plan.find("gcloud", "functions", "deploy") if "--allow-unauthenticated" in c
    ]
    assert public == [canary]
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


def test_the_catalog_is_synced_without_pruning(plan):
    [sync] = [c for c in operator_commands(plan) if c[3:5] == ["catalog", "sync"]]
    assert "--prune" not in sync
    assert "--dry-run" not in sync
    read = plan.one("gcloud", "secrets", "versions", "access", "1")
    assert plan.index(read) < plan.index(sync)


def test_catalog_drift_and_heartbeat_metrics(plan):
    drift = plan.one("gcloud", "logging", "metrics", "create", "notifier_catalog_drift")
    assert "jsonPayload.catalog_drift:*" in flag(drift, "log-filter")
    assert "jsonPayload.outcome:*" in flag(drift, "log-filter")  # per event, not the warnings
    assert 'resource.labels.service_name="notifier"' in flag(drift, "log-filter")
    heartbeat = plan.one("gcloud", "logging", "metrics", "create", "notifier_heartbeat")
    assert 'jsonPayload.message="heartbeat arrived"' in flag(heartbeat, "log-filter")
    assert 'resource.labels.service_name="notifier-canary"' in flag(heartbeat, "log-filter")
    latency = plan.one("gcloud", "logging", "metrics", "create", "notifier_heartbeat_latency")
    config = json.loads(Path(flag(latency, "config-from-file")).read_text())
    assert config["name"] == "notifier_heartbeat_latency"
    assert config["valueExtractor"] == "EXTRACT(jsonPayload.heartbeat_latency_ms)"
    assert config["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    assert config["metricDescriptor"]["metricKind"] == "DELTA"
    assert config["filter"] == flag(heartbeat, "log-filter")
    assert "exponentialBuckets" in config["bucketOptions"]
    # The plan shows the file it wrote.
    assert f"# wrote {flag(latency, 'config-from-file')}: " in plan.stdout


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


# Built-in metric types as Google documents them (cloud.google.com/monitoring/api/metrics_gcp).
DOCUMENTED_METRICS = {
    "pubsub.googleapis.com/subscription/num_undelivered_messages",
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "pubsub.googleapis.com/subscription/dead_letter_message_count",
    "run.googleapis.com/request_latencies",
    "run.googleapis.com/container/instance_count",
}


def dashboard(plan: Plan) -> dict:
    [command] = plan.find("gcloud", "monitoring", "dashboards", "create") or plan.find(
        "gcloud", "monitoring", "dashboards", "update"
    )
    return json.loads(flag(command, "config"))


def charted_metrics(config: dict) -> list[str]:
    filters = [
        data_set["timeSeriesQuery"]["timeSeriesFilter"]["filter"]
        for widget in config["gridLayout"]["widgets"]
        for data_set in widget["xyChart"]["dataSets"]
    ]
    return [re.search(r'metric\.type="([^"]+)"', f).group(1) for f in filters]


def test_every_metric_the_dashboard_charts_exists(plan):
    config = dashboard(plan)
    assert "@" not in json.dumps(config)  # every template field filled in
    created = {
        c[4]
        for c in plan.find("gcloud", "logging", "metrics", "create")
        + plan.find("gcloud", "logging", "metrics", "update")
    }
    charted = charted_metrics(config)
    for metric in charted:
        if metric.startswith("logging.googleapis.com/user/"):
            assert metric.removeprefix("logging.googleapis.com/user/") in created, metric
        else:
            assert metric in DOCUMENTED_METRICS, metric
    # What issue 12 asks it to show.
    user = "logging.googleapis.com/user/notifier_"
    for name in ("sent", "duplicate", "retried", "failed", "rejected", "heartbeat_latency"):
        assert user + name in charted
    assert set(charted) >= DOCUMENTED_METRICS
    # Created after the metrics it charts.
    create = plan.find("gcloud", "monitoring", "dashboards", "create")[0]
    assert all(plan.index(c) < plan.index(create)
               for c in plan.find("gcloud", "logging", "metrics", "create"))  # fmt: skip


def test_the_dashboard_follows_the_function_name_and_the_subscriptions(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--function-name=notifier-staging")
    config = dashboard(plan)
    assert config["displayName"] == "notifier (notifier-staging)"
    text = json.dumps(config)
    assert "notifier_staging_sent" in text
    assert 'service_name=\\"notifier-staging\\"' in text
    assert "TRIGGER_SUBSCRIPTION" in text and "platform-events-dead-letter-sub" in text


def test_dashboard_template_is_valid_json():
    config = json.loads((ROOT / "monitoring" / "dashboard.json").read_text())
    assert config["gridLayout"]["widgets"]


# --------------------------------------------------------------------------------------------
# Dry-run behaviour, idempotency, configuration
# --------------------------------------------------------------------------------------------


def operator_commands(plan: Plan) -> list[list[str]]:
    return [c for c in plan.commands if c[0] != "gcloud"]


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
    assert len(plan.find("gcloud", "logging", "metrics", "update")) == 8
    assert plan.find(
        "gcloud", "pubsub", "subscriptions", "update", "platform-events-dead-letter-sub"
    )
    for kind in ("ALERT", "BACKLOG", "HEARTBEAT"):
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
    # The canary's signing secret is unchanged: no new version, the canary keeps version 1.
    assert not plan.find("gcloud", "secrets", "versions", "add")
    canary = plan.one("gcloud", "functions", "deploy", "notifier-canary")
    assert flag(canary, "set-secrets") == "NOTIFIER_CANARY_SECRET=notifier-canary-secret:1"
    # Deploys, IAM bindings and the dead-letter policy are re-applied as they are.
    assert len(plan.find("gcloud", "functions", "deploy")) == 4
    assert plan.find("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)


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
    ):
        assert re.search(rf"(^|, )\s*{option}(=|\s)", result.stdout, re.M), option


# --------------------------------------------------------------------------------------------
# A real (non-dry) run against a stub gcloud: the plan is exactly what gets executed
# --------------------------------------------------------------------------------------------

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
  " secrets versions access "*)
    if [[ "$*" == *notifier-canary-secret* ]]; then printf %s "$STUB_CANARY_SECRET";
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
# Svix token; `heartbeat setup` writes the endpoint's signing secret where it is told to.
STUB_PYTHON = r"""#!/usr/bin/env bash
printf '%s\x1f' "$@" >>"$STUB_PY_LOG"
printf 'token=%s\x1f\x1e' "$([[ $SVIX_API_KEY == "$STUB_SVIX_TOKEN" ]] && echo ok)" >>"$STUB_PY_LOG"
[[ "$3 $4" == "${STUB_PY_FAIL:-none}" ]] && exit 1
if [[ "$3 $4" == "heartbeat setup" ]]; then
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
    bin_dir.mkdir(exist_ok=True)
    stub = bin_dir / "gcloud"
    stub.write_text(STUB_GCLOUD)
    stub.chmod(0o755)
    stub_python = bin_dir / "python-stub"
    stub_python.write_text(STUB_PYTHON)
    stub_python.chmod(0o755)
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
    """The canary's secret file lives in a fresh temporary directory; the plan names it."""
    return [
        [
            re.sub(r"=/\S*/notifier-deploy\.[^/]+/canary-secret$", "=CANARY_SECRET_FILE", a)
            for a in c
        ]
        for c in commands
    ]


def stub_plan(tmp: Path, *args: str) -> Plan:
    stub_python = tmp / "stub-bin" / "python-stub"
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


@pytest.mark.parametrize("failing", ["catalog sync", "heartbeat setup"])
def test_a_failing_operator_command_stops_the_deploy_and_leaves_no_secret_behind(tmp_path, failing):
    run = run_with_stub(tmp_path, "fresh", "--project", PROJECT, python_fails=failing)
    assert run.result.returncode != 0
    assert "operator command failed" in run.result.stderr
    assert not [c for c in run.gcloud if c[:3] == ["functions", "deploy", "notifier-canary"]]
    assert not [c for c in run.gcloud if c[:3] == ["secrets", "versions", "add"]]
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


# --------------------------------------------------------------------------------------------
# Static checks
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    result = subprocess.run(
        ["shellcheck", str(DEPLOY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_strict_and_executable():
    text = DEPLOY.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(DEPLOY, os.X_OK)


# --------------------------------------------------------------------------------------------
# .gcloudignore
# --------------------------------------------------------------------------------------------

# schemas/events/: the catalog the drift check loads at run time (without it every event is
# "unknown_type").
NEEDED = {
    "main.py",
    "notifier/__init__.py",
    "schemas/event.schema.json",
    "schemas/events/payment/payment.succeeded.json",
    "requirements.txt",
}
EXCLUDED = [
    "tests/x.py",
    "tests/unit/test_x.py",
    "devstack/x.py",
    ".venv/x",
    ".venv/lib/python3.11/site-packages/x.py",
    "samples/x.json",
    "samples/events/y.json",
    "benchmarks/x.py",
    "README.md",
    "Makefile",
    "deploy.sh",
    "requirements-dev.txt",
    "pyproject.toml",
    ".ci/run",
    ".git/HEAD",
    ".gitignore",
    "docs/index.md",
    ".pytest_cache/x",
    "notifier/__pycache__/x.cpython-311.pyc",
    "schemas/README.md",
]


def list_files_for_upload(directory: Path, tmp: Path) -> set[str]:
    result = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", str(directory)],
        env=scrubbed_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {
        line.strip().replace(os.sep, "/") for line in result.stdout.splitlines() if line.strip()
    }


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud CLI is not installed")
def test_gcloudignore_uploads_exactly_what_the_function_needs(tmp_path):
    source = tmp_path / "src"
    for name in [*NEEDED, *EXCLUDED]:
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# placeholder\n")
    shutil.copy(GCLOUDIGNORE, source / ".gcloudignore")
    assert list_files_for_upload(source, tmp_path) == NEEDED


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud CLI is not installed")
def test_real_tree_uploads_only_runtime_files(tmp_path):
    uploaded = list_files_for_upload(ROOT, tmp_path)
    assert "main.py" in uploaded
    for name in uploaded:
        top = name.split("/", 1)[0]
        assert name in {"main.py", "requirements.txt"} or top in {"notifier", "schemas"}, name
        assert "__pycache__" not in name


# --------------------------------------------------------------------------------------------
# Heavy: every planned command is accepted by the real gcloud CLI (offline).
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("NOTIFIER_HEAVY") != "1", reason="set NOTIFIER_HEAVY=1")
@pytest.mark.skipif(shutil.which("gcloud") is None, reason="gcloud CLI is not installed")
def test_gcloud_accepts_every_planned_command(tmp_path):
    """Each command reaches gcloud's authentication step, i.e. its arguments parse.

    Without credentials (and with the metadata server and any proxy disabled) nothing can be
    changed anywhere; an argument error would be reported before authentication.
    """
    commands: dict[tuple[str, ...], None] = {}
    for args in (
        ["--project", PROJECT, "--alert-email=ops@example.com", "--invoker=group:ops@example.com"],
        [
            "--project",
            PROJECT,
            "--assume-existing",
            "--svix-server-url=https://api.eu.svix.com",
            "--invoker=user:kept@example.com",
            "--target-rate=10000",
        ],
    ):
        for command in dry_run(tmp_path, *args).commands:
            if command[0] == "gcloud":  # the operator commands are the project's own CLI
                commands[tuple(command)] = None
    # The plan's placeholder for the canary's secret file, relative to the working directory.
    (tmp_path / "CANARY_SECRET_FILE").write_text("whsec_placeholder")
    env = scrubbed_env(tmp_path, HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9")

    def attempt(command: tuple[str, ...]) -> tuple[tuple[str, ...], int, str]:
        result = subprocess.run(
            list(command), env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        return command, result.returncode, result.stderr

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, commands))
    for command, returncode, stderr in results:
        assert returncode != 0, f"ran without credentials?! {command}"
        assert "active account" in stderr or "gcloud auth login" in stderr, (command, stderr)
