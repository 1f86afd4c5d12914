"""IAM and the project: one service account per function, each granted only what it uses; the
APIs first, and the Svix token's secret checked before any function is deployed."""

from __future__ import annotations

from tests.unit.deploy.plan import (
    API_SA,
    CANARY_SA,
    DATABASE_CONDITION,
    HEARTBEAT_SA,
    OPERATIONAL_SA,
    PORTAL_SA,
    PROJECT,
    PUBSUB_AGENT,
    SA,
    dry_run,
    flag,
    grants,
)

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


def test_one_service_account_per_function(plan):
    created = {c[4] for c in plan.find("gcloud", "iam", "service-accounts", "create")}
    assert created == {
        "notifier-sa",
        "notifier-api-sa",
        "notifier-portal-sa",
        "notifier-canary-sa",
        "notifier-ops-sa",
        "notifier-hb-sa",
    }
    for name, sa in (
        ("notifier", SA),
        ("notifier-notifications", API_SA),
        ("notifier-app-portal", PORTAL_SA),
        ("notifier-canary", CANARY_SA),
        ("notifier-operational", OPERATIONAL_SA),
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
        # The operational webhooks write endpoint_health/ and the exhausted facts.
        (f"serviceAccount:{OPERATIONAL_SA}", "roles/datastore.user"),
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
    project_grants = plan.find("gcloud", "projects", "add-iam-policy-binding")
    members = {flag(grant, "member") for grant in project_grants}
    assert members >= {f"serviceAccount:{sa}" for sa in (SA, API_SA, PORTAL_SA, CANARY_SA)}
    for grant in project_grants:
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
    assert grants(plan, "secrets", "notifier-operational-secret") == {
        (OPERATIONAL_SA, "roles/secretmanager.secretAccessor")
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
