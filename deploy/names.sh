# shellcheck shell=bash
# names.sh - every resource name deploy.sh derives from the options, once. The names are
# globals read by the other parts (hence no SC2034 here: none is used in this file).
# shellcheck disable=SC2034

# derive_names: the names that follow from PROJECT, REGION, TOPIC and FUNCTION_NAME.
derive_names() {
  # The functions (FUNCTION_NAME itself is the event function).
  readonly NOTIFICATIONS_FUNCTION="${FUNCTION_NAME}-notifications"
  readonly APP_PORTAL_FUNCTION="${FUNCTION_NAME}-app-portal"
  readonly CANARY_FUNCTION="${FUNCTION_NAME}-canary"
  # Cloud Functions' address of a function: known before the canary is deployed.
  readonly CANARY_URL="https://${REGION}-${PROJECT}.cloudfunctions.net/${CANARY_FUNCTION}"
  # Svix's operational webhooks (customer endpoint health): public as the canary, its own address.
  readonly OPERATIONAL_FUNCTION="${FUNCTION_NAME}-operational"
  readonly OPERATIONAL_URL="https://${REGION}-${PROJECT}.cloudfunctions.net/${OPERATIONAL_FUNCTION}"
  # One service account per function, and the heartbeat publisher's.
  readonly SA_EMAIL="${FUNCTION_NAME}-sa@${PROJECT}.iam.gserviceaccount.com"
  readonly API_SA_EMAIL="${FUNCTION_NAME}-api-sa@${PROJECT}.iam.gserviceaccount.com"
  readonly PORTAL_SA_EMAIL="${FUNCTION_NAME}-portal-sa@${PROJECT}.iam.gserviceaccount.com"
  readonly CANARY_SA_EMAIL="${FUNCTION_NAME}-canary-sa@${PROJECT}.iam.gserviceaccount.com"
  readonly OPERATIONAL_SA_EMAIL="${FUNCTION_NAME}-ops-sa@${PROJECT}.iam.gserviceaccount.com"
  readonly HEARTBEAT_SA_EMAIL="${FUNCTION_NAME}-hb-sa@${PROJECT}.iam.gserviceaccount.com"
  readonly HEARTBEAT_JOB="${FUNCTION_NAME}-heartbeat"
  readonly DEAD_LETTER_TOPIC="${TOPIC}-dead-letter"
  readonly DEAD_LETTER_SUBSCRIPTION="${TOPIC}-dead-letter-sub"
  # Log-based metric names allow no hyphen.
  readonly METRIC_PREFIX="${FUNCTION_NAME//-/_}"
  # Where the files the plan shows are written (the latency metric's configuration).
  readonly RUN_DIR="$SCRIPT_DIR/.run/deploy"
  # In a dry run with --assume-existing: an invoker granted earlier and no longer asked for.
  readonly DROPPED_INVOKER_PLACEHOLDER="serviceAccount:DROPPED_INVOKER@${PROJECT}.iam.gserviceaccount.com"
}

# name_pubsub_agent PROJECT_NUMBER: the project's Pub/Sub service agent, which forwards dead
# letters and signs push requests.
name_pubsub_agent() {
  readonly PUBSUB_AGENT="service-${1}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
