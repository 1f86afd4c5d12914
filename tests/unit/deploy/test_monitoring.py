"""Observability from monitoring/'s templates: the log-based metrics, the alert policies and
their channels, the dashboard and every metric it charts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.unit.deploy.plan import (
    OUTCOMES,
    PROJECT,
    Plan,
    dashboard,
    dry_run,
    flag,
    policies,
)
from tests.unit.deploy.running import ROOT


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


def test_alert_policy_on_failures_is_looked_up_by_display_name(plan):
    lookups = plan.find("gcloud", "alpha", "monitoring", "policies", "list")
    creates = plan.find("gcloud", "alpha", "monitoring", "policies", "create")
    assert len(lookups) == len(creates) == 4
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


# Built-in metric types as Google documents them (cloud.google.com/monitoring/api/metrics_gcp).
DOCUMENTED_METRICS = {
    "pubsub.googleapis.com/subscription/num_undelivered_messages",
    "pubsub.googleapis.com/subscription/oldest_unacked_message_age",
    "pubsub.googleapis.com/subscription/dead_letter_message_count",
    "run.googleapis.com/request_latencies",
    "run.googleapis.com/container/instance_count",
}


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
