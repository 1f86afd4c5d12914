# shellcheck shell=bash
# pubsub.sh - the event topic and its dead letters, the trigger subscription Eventarc makes
# (retention, dead-lettering, retry backoff), and the Scheduler job that publishes heartbeats.

# Dead letters are kept 31 days: the Pub/Sub maximum for a subscription's
# retention (`gcloud pubsub subscriptions update --help`).
readonly DEAD_LETTER_RETENTION="31d"
# Push ack deadline of the trigger subscription: the Pub/Sub maximum, so a
# push request is never considered lost while the function still runs.
readonly ACK_DEADLINE_SECONDS=600

ensure_topics() {
  section "Pub/Sub topics"
  if ! exists gcloud pubsub topics describe "$TOPIC" --project="$PROJECT" --format=none; then
    run gcloud pubsub topics create "$TOPIC" --project="$PROJECT"
  fi
  if ! exists gcloud pubsub topics describe "$DEAD_LETTER_TOPIC" --project="$PROJECT" \
    --format=none; then
    run gcloud pubsub topics create "$DEAD_LETTER_TOPIC" --project="$PROJECT"
  fi
  # Messages published to a topic without subscriptions are lost: this pull
  # subscription keeps dead letters for inspection and replay. Nothing
  # consumes it automatically; it never expires.
  if exists gcloud pubsub subscriptions describe "$DEAD_LETTER_SUBSCRIPTION" \
    --project="$PROJECT" --format=none; then
    run gcloud pubsub subscriptions update "$DEAD_LETTER_SUBSCRIPTION" --project="$PROJECT" \
      --message-retention-duration="$DEAD_LETTER_RETENTION" --expiration-period=never
  else
    run gcloud pubsub subscriptions create "$DEAD_LETTER_SUBSCRIPTION" --project="$PROJECT" \
      --topic="$DEAD_LETTER_TOPIC" --message-retention-duration="$DEAD_LETTER_RETENTION" \
      --expiration-period=never --ack-deadline=60
  fi
}

# configure_trigger_subscription: sets TRIGGER_SUBSCRIPTION_ID (the alerts and the dashboard
# watch it).
configure_trigger_subscription() {
  section "Trigger subscription: retention, dead-lettering and retry backoff"
  # Eventarc creates (and may re-create on redeploy) the push subscription
  # behind the trigger, so it is looked up and configured after every deploy:
  # function -> eventTrigger.trigger -> transport.pubsub.subscription.
  local trigger trigger_id trigger_location subscription="" attempt
  trigger="$(capture "projects/$PROJECT/locations/$REGION/triggers/TRIGGER_ID" \
    gcloud functions describe "$FUNCTION_NAME" --gen2 --region="$REGION" \
    --project="$PROJECT" --format='value(eventTrigger.trigger)')"
  [[ "$trigger" =~ ^projects/[^/]+/locations/([^/]+)/triggers/([^/]+)$ ]] ||
    die "unexpected Eventarc trigger name for $FUNCTION_NAME: '$trigger'"
  trigger_location="${BASH_REMATCH[1]}"
  trigger_id="${BASH_REMATCH[2]}"
  for attempt in 1 2 3 4 5 6; do
    subscription="$(capture "projects/$PROJECT/subscriptions/TRIGGER_SUBSCRIPTION" \
      gcloud eventarc triggers describe "$trigger_id" --location="$trigger_location" \
      --project="$PROJECT" --format='value(transport.pubsub.subscription)')"
    [[ -n "$subscription" ]] && break
    ((attempt < 6)) && sleep 10 # the trigger may still be provisioning
  done
  [[ -n "$subscription" ]] || die "Eventarc trigger $trigger has no Pub/Sub subscription yet; re-run later"
  # shellcheck disable=SC2034 # read by monitoring.sh
  TRIGGER_SUBSCRIPTION_ID="${subscription##*/}"

  # The Pub/Sub service agent publishes dead letters to the dead-letter topic
  # and must be able to acknowledge (subscriber) the forwarded messages on
  # the source subscription.
  run_retry gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
    --project="$PROJECT" --member="serviceAccount:$PUBSUB_AGENT" \
    --role=roles/pubsub.publisher --format=none
  # --message-retention-duration: how long an unacknowledged event waits for
  # the function (Eventarc's own default is 24 h; Pub/Sub allows up to 31 d).
  run gcloud pubsub subscriptions update "$subscription" --project="$PROJECT" \
    --message-retention-duration="$RETENTION" \
    --dead-letter-topic="projects/$PROJECT/topics/$DEAD_LETTER_TOPIC" \
    --max-delivery-attempts="$MAX_DELIVERY_ATTEMPTS" \
    --min-retry-delay="${MIN_RETRY_DELAY_SECONDS}s" \
    --max-retry-delay="${MAX_RETRY_DELAY_SECONDS}s" \
    --ack-deadline="$ACK_DEADLINE_SECONDS"
  run_retry gcloud pubsub subscriptions add-iam-policy-binding "$subscription" \
    --project="$PROJECT" --member="serviceAccount:$PUBSUB_AGENT" \
    --role=roles/pubsub.subscriber --format=none
}

ensure_heartbeat_job() {
  section "Cloud Scheduler job $HEARTBEAT_JOB (a heartbeat every $HEARTBEAT_MINUTES min)"
  # A Pub/Sub target publishes as Cloud Scheduler's service agent, which
  # holds publish rights on every topic of the project. An HTTP target that
  # calls Pub/Sub's publish method runs as our own account instead, with
  # roles/pubsub.publisher on this one topic only.
  run_retry gcloud pubsub topics add-iam-policy-binding "$TOPIC" --project="$PROJECT" \
    --member="serviceAccount:$HEARTBEAT_SA_EMAIL" --role=roles/pubsub.publisher --format=none
  local uri="https://pubsub.googleapis.com/v1/projects/$PROJECT/topics/$TOPIC:publish"
  local schedule="*/$HEARTBEAT_MINUTES * * * *"
  # data is base64 of {"object":"heartbeat"}; on_event gives each publish
  # its own event id (hb-<messageId>). A constant: no value of ours in it.
  local body='{"messages":[{"data":"eyJvYmplY3QiOiJoZWFydGJlYXQifQ==","attributes":{"notifier":"heartbeat"}}]}'
  local scope=https://www.googleapis.com/auth/pubsub
  local job=(--location="$REGION" --project="$PROJECT" --schedule="$schedule" --time-zone=Etc/UTC
    --uri="$uri" --http-method=POST)
  local auth=(--message-body="$body" --oauth-service-account-email="$HEARTBEAT_SA_EMAIL"
    --oauth-token-scope="$scope" --attempt-deadline=60s)
  if exists gcloud scheduler jobs describe "$HEARTBEAT_JOB" --location="$REGION" \
    --project="$PROJECT" --format=none; then
    run gcloud scheduler jobs update http "$HEARTBEAT_JOB" "${job[@]}" \
      --update-headers=Content-Type=application/json "${auth[@]}"
  else
    run gcloud scheduler jobs create http "$HEARTBEAT_JOB" "${job[@]}" \
      --headers=Content-Type=application/json "${auth[@]}" \
      --description="notifier heartbeat: proves the path platform topic -> Svix -> canary"
  fi
}
