"""The four functions: gen2 on python311, each with its own identity, the Svix token from Secret
Manager by pinned version, config.py's settings, and who may call the HTTP ones."""

from __future__ import annotations

from notifier.config import Deployment, Settings
from tests.unit.deploy.plan import (
    API_SA,
    DROPPED,
    PORTAL_SA,
    PROJECT,
    SA,
    dry_run,
    env_vars,
    flag,
)
from tests.unit.deploy.running import run_deploy, scrubbed_env


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
        "notifier-operational",
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
    # Nor do the operational webhooks: theirs is the operational-webhook endpoint's secret.
    assert flag(deploys[4], "set-secrets") == (
        "SVIX_OPERATIONAL_WEBHOOK_SECRET=notifier-operational-secret:1"
    )
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
    assert "SVIX_SERVER_URL" not in env  # optional: only when given
    # Every knob config.py reads that deploy.sh sets, at config.py's own default.
    assert {n for n in env if n.startswith("NOTIFIER_")} == {
        "NOTIFIER_RETRY_BUDGET_SECONDS",
        "NOTIFIER_LEASE_SECONDS",
        "NOTIFIER_SVIX_TIMEOUT_SECONDS",
        "NOTIFIER_RECORD_TTL_DAYS",
        "NOTIFIER_PORTAL_EXPIRY_SECONDS",
        "NOTIFIER_LOG_LEVEL",
    }
    settings = Settings.from_env(env, svix=False)
    assert settings == Settings(gcp_project=PROJECT, svix_api_key="")


def test_chosen_limits_are_consistent(plan):
    for deploy in plan.find("gcloud", "functions", "deploy"):
        env = env_vars(deploy)
        timeout = int(flag(deploy, "timeout").removesuffix("s"))
        settings = Settings.from_env(env, svix=False)
        # The longest delivery, a second to record its outcome, then the timeout; the lease is
        # renewed while a delivery runs, so it is short whatever the timeout.
        assert settings.longest_delivery_seconds + 1 <= timeout
        assert settings.lease_seconds == 10 < timeout
        Deployment(settings, timeout_seconds=timeout).check()  # config.py's own rules
        assert timeout < 600  # below the Pub/Sub push ack deadline
        concurrency = int(flag(deploy, "concurrency"))
        assert concurrency > 1
        assert float(flag(deploy, "cpu")) >= 1  # required for concurrency > 1
        assert env["THREADS"] == str(concurrency)
        assert flag(deploy, "memory")
        assert int(flag(deploy, "max-instances")) >= 1


def test_the_functions_get_what_config_py_makes_of_the_options(tmp_path):
    """deploy.sh passes config.py's reading of a knob (the level upper-cased, a whole number
    of seconds bare), not the text typed."""
    plan = dry_run(
        tmp_path, "--project", PROJECT, "--log-level=debug", "--lease-seconds=150.0",
        "--retry-budget-seconds=12.5", "--timeout=100",
    )  # fmt: skip
    for deploy in plan.find("gcloud", "functions", "deploy"):
        env = env_vars(deploy)
        assert env["NOTIFIER_LOG_LEVEL"] == "DEBUG"
        assert env["NOTIFIER_LEASE_SECONDS"] == "150"
        assert env["NOTIFIER_RETRY_BUDGET_SECONDS"] == "12.5"
        assert flag(deploy, "timeout") == "100s"


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
