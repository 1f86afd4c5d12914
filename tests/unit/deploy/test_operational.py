"""The operational webhooks in the plan: their public function (own account, own pinned secret),
the setup that registers Svix's operational-webhook endpoint at its address, and the metric,
alert and panel for "a customer endpoint was disabled", matched against the line the function
really logs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import functions_framework

from notifier import bootstrap
from notifier.config import Settings
from tests import factories, fakes
from tests.support import logged_lines
from tests.unit.deploy.plan import (
    OPERATIONAL_SA,
    PROJECT,
    dashboard,
    env_vars,
    exemptions,
    flag,
    operator_commands,
    policies,
)
from tests.unit.deploy.running import ROOT

URL = f"https://europe-west1-{PROJECT}.cloudfunctions.net/notifier-operational"


def test_the_function_is_public_on_its_own_account_with_its_own_pinned_secret(plan):
    deploy = plan.one("gcloud", "functions", "deploy", "notifier-operational")
    assert flag(deploy, "entry-point") == "operational_webhooks"
    assert "--allow-unauthenticated" in deploy and "--trigger-http" in deploy
    assert flag(deploy, "ingress-settings") == "all"
    assert flag(deploy, "service-account") == OPERATIONAL_SA
    assert int(flag(deploy, "max-instances")) <= 3
    secrets = flag(deploy, "set-secrets")
    assert secrets == "SVIX_OPERATIONAL_WEBHOOK_SECRET=notifier-operational-secret:1"
    assert "SVIX_API_KEY" not in secrets  # it never calls Svix
    # It starts on its deployed environment, without a Svix token.
    settings = Settings.from_env(env_vars(deploy), svix=False)
    assert settings.gcp_project == PROJECT


def test_setup_points_svix_at_the_function_and_its_secret_becomes_the_pinned_version(plan):
    from notifier.cli.commands import registered
    from notifier.cli.parser import build_parser

    [setup] = [c for c in operator_commands(plan) if c[3:5] == ["operational", "setup"]]
    assert flag(setup, "url") == URL
    args = build_parser(registered().values()).parse_args(setup[3:])
    assert (args.command, args.action, args.url) == ("operational", "setup", URL)
    add = plan.one("gcloud", "secrets", "versions", "add", "notifier-operational-secret")
    assert flag(add, "data-file") == flag(setup, "secret-file") == str(args.secret_file)
    deploy = plan.one("gcloud", "functions", "deploy", "notifier-operational")
    assert plan.index(setup) < plan.index(add) < plan.index(deploy)
    create = plan.one("gcloud", "secrets", "create", "notifier-operational-secret")
    assert flag(create, "replication-policy") == "automatic"


def test_its_collections_expire_and_keep_only_the_index_status_asks_by(plan):
    exempt = exemptions(plan)
    assert "state" not in exempt["endpoint_health"]
    assert {"since", "exhausted", "expires_at"} <= exempt["endpoint_health"]
    assert "expires_at" in exempt["operational_webhooks"]
    assert "svix_exhausted" in exempt["notifications"]
    ttls = {flag(c, "collection-group") for c in plan.find("gcloud", "firestore", "fields", "ttls")}
    assert {"endpoint_health", "operational_webhooks"} <= ttls


def disabled_log_line() -> dict:
    """The line the function logs for a signed endpoint.disabled, as Cloud Run keeps it."""
    secret = "whsec_" + base64.b64encode(b"deploy-plan-operational-key-0123").decode()
    settings = Settings(gcp_project=PROJECT, svix_api_key="")
    deps = bootstrap.build_operational(settings, secret, endpoints=fakes.MemoryEndpointHealth())
    with logged_lines() as lines, bootstrap.provided_operational(deps):
        app = functions_framework.create_app(
            target="operational_webhooks", source=str(ROOT / "main.py"), signature_type="http"
        )
        body = factories.operational_webhook("endpoint.disabled", project="acme")
        answer = app.test_client().post("/", data=body, headers=factories.svix_signed(body, secret))
        assert answer.status_code == 200
        [line] = lines()
    return line


def test_the_disabled_metric_counts_the_line_the_function_logs_with_the_project_label(plan):
    metric = plan.one("gcloud", "logging", "metrics", "create", "notifier_endpoint_disabled")
    config = json.loads(Path(flag(metric, "config-from-file")).read_text())
    line = disabled_log_line()
    wanted = dict(re.findall(r'jsonPayload\.(\w+)="([^"]*)"', config["filter"]))
    assert wanted == {"webhook_type": "endpoint.disabled", "endpoint_state": "disabled"}
    assert {key: line.get(key) for key in wanted} == wanted
    assert 'resource.labels.service_name="notifier-operational"' in config["filter"]
    [(label, extractor)] = config["labelExtractors"].items()
    assert label == "project" and extractor == "EXTRACT(jsonPayload.project)"
    assert line["project"] == "acme"
    assert [d["key"] for d in config["metricDescriptor"]["labels"]] == ["project"]


def test_an_alert_per_project_and_a_dashboard_panel(plan):
    policy = policies(plan)["notifier (notifier): a customer endpoint was disabled"]
    [condition] = policy["conditions"]
    threshold = condition["conditionThreshold"]
    assert "user/notifier_endpoint_disabled" in threshold["filter"]
    assert threshold["aggregations"][0]["groupByFields"] == ["metric.label.project"]
    assert threshold["comparison"] == "COMPARISON_GT" and threshold["thresholdValue"] == 0
    assert "${metric.label.project}" in policy["documentation"]["content"]
    assert "docs/operations/endpoint-disabled.md" in policy["documentation"]["content"]
    assert (ROOT / "docs" / "operations" / "endpoint-disabled.md").is_file()
    metric = plan.one("gcloud", "logging", "metrics", "create", "notifier_endpoint_disabled")
    [create] = [
        c
        for c in plan.find("gcloud", "alpha", "monitoring", "policies", "create")
        if json.loads(flag(c, "policy"))["displayName"] == policy["displayName"]
    ]
    assert plan.index(metric) < plan.index(create)
    panels = [w for w in dashboard(plan)["gridLayout"]["widgets"] if "disabled" in w["title"]]
    [panel] = panels
    query = panel["xyChart"]["dataSets"][0]["timeSeriesQuery"]["timeSeriesFilter"]
    assert "user/notifier_endpoint_disabled" in query["filter"]
    assert query["aggregation"]["groupByFields"] == ["metric.label.project"]
