# shellcheck shell=bash
# monitoring.sh - log-based metrics, alert policies and the dashboard, each from its JSON
# template in monitoring/ (metrics/, policies/, dashboard.json), filled in by deploy/render.py.

# render TEMPLATE [--get KEY]... VALUE...: monitoring/TEMPLATE with its placeholders filled in
# inside the parsed JSON (deploy/render.py: NAME=TEXT, NAME:=NUMBER, NAME[]=TEXT), as one line;
# with --get, the text of each KEY instead, one per line.
render() {
  local template="$SCRIPT_DIR/monitoring/$1"
  shift
  [[ -f "$template" ]] || die "$template is missing: run deploy.sh from a complete checkout"
  "$PYTHON" "$SCRIPT_DIR/deploy/render.py" "$template" "$@" || die "could not fill in $template"
}

# upsert_counter_metric TEMPLATE VALUE...: the counter metrics/TEMPLATE describes, created or
# updated with its description and filter.
upsert_counter_metric() {
  local template="metrics/$1" fields name description filter
  shift
  fields="$(render "$template" --get name --get description --get filter "$@")"
  {
    IFS= read -r name
    IFS= read -r description
    IFS= read -r filter
  } <<<"$fields"
  if exists gcloud logging metrics describe "$name" --project="$PROJECT" --format=none; then
    run gcloud logging metrics update "$name" --project="$PROJECT" \
      --description="$description" --log-filter="$filter"
  else
    run gcloud logging metrics create "$name" --project="$PROJECT" \
      --description="$description" --log-filter="$filter"
  fi
}

ensure_log_metrics() {
  section "Log-based metrics"
  # The on_event and notifications functions both log one JSON line per
  # outcome; Cloud Run puts it under jsonPayload.
  local names=("METRIC_PREFIX=$METRIC_PREFIX" "FUNCTION_NAME=$FUNCTION_NAME")
  local events=("${names[@]}" "NOTIFICATIONS_FUNCTION=$NOTIFICATIONS_FUNCTION")
  local canary=("${names[@]}" "CANARY_FUNCTION=$CANARY_FUNCTION") outcome
  for outcome in sent duplicate rejected failed retried; do
    upsert_counter_metric outcome.json "${events[@]}" "OUTCOME=$outcome"
  done
  # Events sent although off the catalog (unknown type or drifted data):
  # their outcome lines, one per event (the WARNING, once per type and
  # cause, carries catalog_drift too but no outcome).
  upsert_counter_metric catalog_drift.json "${events[@]}"
  upsert_counter_metric heartbeat.json "${canary[@]}"
  # The latency distribution needs a value extractor and buckets, and the
  # disabled endpoints' counter its project label: only a configuration file
  # carries those.
  upsert_metric_from_file heartbeat_latency.json "${canary[@]}"
  upsert_metric_from_file endpoint_disabled.json "${names[@]}" \
    "OPERATIONAL_FUNCTION=$OPERATIONAL_FUNCTION"
}

# upsert_metric_from_file TEMPLATE VALUE...: the metric metrics/TEMPLATE describes, whole, from
# a configuration file (written to .run/deploy/, shown in the plan).
upsert_metric_from_file() {
  local template="metrics/$1" name config file
  shift
  name="$(render "$template" --get name "$@")"
  config="$(render "$template" "$@")"
  file="$RUN_DIR/$name.json"
  mkdir -p "$RUN_DIR"
  printf '%s\n' "$config" >"$file"
  printf '# wrote %s: %s\n' "$file" "$config" >&3
  if exists gcloud logging metrics describe "$name" --project="$PROJECT" --format=none; then
    run gcloud logging metrics update "$name" --project="$PROJECT" --config-from-file="$file"
  else
    run gcloud logging metrics create "$name" --project="$PROJECT" --config-from-file="$file"
  fi
}

# resolve_alert_channels ARRAY: fills ARRAY with the channels the alert policies notify: the
# --notification-channel ones and the --alert-email one (found, else created).
resolve_alert_channels() {
  local -n resolved="$1"
  resolved=("${NOTIFICATION_CHANNELS[@]}")
  local channel=""
  if [[ -n "$ALERT_EMAIL" ]]; then
    channel="$(capture "$(if_existing "projects/$PROJECT/notificationChannels/ALERT_EMAIL_CHANNEL_ID")" \
      gcloud beta monitoring channels list --project="$PROJECT" \
      --filter="type=\"email\" AND labels.email_address=\"$ALERT_EMAIL\"" \
      --format='value(name)' --limit=1)"
    if [[ -z "$channel" ]]; then
      channel="$(capture "projects/$PROJECT/notificationChannels/ALERT_EMAIL_CHANNEL_ID" \
        gcloud beta monitoring channels create --project="$PROJECT" --type=email \
        --display-name="notifier alerts ($ALERT_EMAIL)" \
        --channel-labels="email_address=$ALERT_EMAIL" --format='value(name)')"
    fi
    [[ -n "$channel" ]] || die "could not create a notification channel for $ALERT_EMAIL"
    resolved+=("$channel")
  fi
  if ((${#resolved[@]} == 0)); then
    warn "no --alert-email/--notification-channel: the alert policies will open incidents but notify nobody"
  fi
}

# upsert_policy TEMPLATE KIND VALUE...: the alert policy policies/TEMPLATE describes, looked
# up by its display name so that a re-run replaces it in place (KIND_POLICY_ID in a dry run).
upsert_policy() {
  local template="policies/$1" kind="$2" name policy existing
  shift 2
  name="$(render "$template" --get displayName "$@")"
  policy="$(render "$template" "$@")"
  existing="$(capture "$(if_existing "projects/$PROJECT/alertPolicies/${kind}_POLICY_ID")" \
    gcloud alpha monitoring policies list --project="$PROJECT" \
    --filter="displayName=\"$name\"" --format='value(name)')"
  if [[ "$existing" == *$'\n'* ]]; then
    warn "several alert policies are named '$name'; updating the first"
    existing="${existing%%$'\n'*}"
  fi
  if [[ -n "$existing" ]]; then
    run gcloud alpha monitoring policies update "$existing" --project="$PROJECT" \
      --policy="$policy" --format=none
  else
    run gcloud alpha monitoring policies create --project="$PROJECT" \
      --policy="$policy" --format=none
  fi
}

ensure_alert_policies() {
  section "Alert policies"
  local channel channels=()
  resolve_alert_channels channels
  local common=("FUNCTION_NAME=$FUNCTION_NAME" "CHANNELS[]")
  for channel in "${channels[@]}"; do
    common+=("CHANNELS[]=$channel")
  done
  upsert_policy delivery_failures.json ALERT "${common[@]}" \
    "NOTIFICATIONS_FUNCTION=$NOTIFICATIONS_FUNCTION" "METRIC_PREFIX=$METRIC_PREFIX" \
    "MAX_DELIVERY_ATTEMPTS=$MAX_DELIVERY_ATTEMPTS" "DEAD_LETTER_RETENTION=$DEAD_LETTER_RETENTION" \
    "DEAD_LETTER_SUBSCRIPTION=$DEAD_LETTER_SUBSCRIPTION" "PROJECT=$PROJECT" \
    "FAILURE_THRESHOLD:=$ALERT_FAILURE_THRESHOLD"
  upsert_policy backlog.json BACKLOG "${common[@]}" \
    "TRIGGER_SUBSCRIPTION_ID=$TRIGGER_SUBSCRIPTION_ID" "RETENTION=$RETENTION" \
    "BACKLOG_AGE_SECONDS:=$BACKLOG_AGE_ALERT_SECONDS"
  upsert_policy heartbeat.json HEARTBEAT "${common[@]}" \
    "CANARY_FUNCTION=$CANARY_FUNCTION" "METRIC_PREFIX=$METRIC_PREFIX" \
    "HEARTBEAT_JOB=$HEARTBEAT_JOB" "HEARTBEAT_MINUTES=$HEARTBEAT_MINUTES" \
    "ABSENT_MINUTES=$HEARTBEAT_ABSENT_MINUTES" "ABSENT_SECONDS:=$((HEARTBEAT_ABSENT_MINUTES * 60))" \
    "LATENCY_ALERT_MS:=$HEARTBEAT_LATENCY_ALERT_MS"
  upsert_policy endpoint_disabled.json ENDPOINT_DISABLED "${common[@]}" \
    "OPERATIONAL_FUNCTION=$OPERATIONAL_FUNCTION" "METRIC_PREFIX=$METRIC_PREFIX"
}

ensure_dashboard() {
  section "Cloud Monitoring dashboard (monitoring/dashboard.json)"
  local values=(
    "FUNCTION_NAME=$FUNCTION_NAME" "METRIC_PREFIX=$METRIC_PREFIX"
    "TRIGGER_SUBSCRIPTION_ID=$TRIGGER_SUBSCRIPTION_ID"
    "DEAD_LETTER_SUBSCRIPTION=$DEAD_LETTER_SUBSCRIPTION"
  )
  local name config existing
  name="$(render dashboard.json --get displayName "${values[@]}")"
  config="$(render dashboard.json "${values[@]}")"
  existing="$(capture "$(if_existing "projects/$PROJECT_NUMBER/dashboards/DASHBOARD_ID")" \
    gcloud monitoring dashboards list --project="$PROJECT" \
    --filter="displayName=\"$name\"" --format='value(name)')"
  existing="${existing%%$'\n'*}"
  if [[ -n "$existing" ]]; then
    run gcloud monitoring dashboards update "$existing" --project="$PROJECT" --config="$config" \
      --format=none
  else
    run gcloud monitoring dashboards create --project="$PROJECT" --config="$config" --format=none
  fi
}
