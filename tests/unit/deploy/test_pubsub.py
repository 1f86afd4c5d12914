"""Pub/Sub: the dead-letter topic and its subscription, the trigger subscription Eventarc makes
(retention, dead-lettering, backoff), and what the Pub/Sub service agent may do."""

from __future__ import annotations

from tests.unit.deploy.plan import (
    PROJECT,
    PUBSUB_AGENT,
    TRIGGER_SUB,
    dry_run,
    flag,
)


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


def test_retention_of_the_trigger_subscription_is_an_option_up_to_31_days(tmp_path):
    plan = dry_run(tmp_path, "--project", PROJECT, "--retention=31d")
    update = plan.one("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)
    assert flag(update, "message-retention-duration") == "31d"
    plan = dry_run(tmp_path, "--project", PROJECT, "--retention=36h")
    update = plan.one("gcloud", "pubsub", "subscriptions", "update", TRIGGER_SUB)
    assert flag(update, "message-retention-duration") == "36h"
