# shellcheck shell=bash
# functions.sh - the five Cloud Functions (2nd gen, python311): their settings as
# notifier/config.py has them, the event function's capacity model (--target-rate), and the
# deploys, each followed by its invokers.

# The common sizing (deploy.sh's defaults), and why:
# - CONCURRENCY 10: the work is I/O-bound (Firestore + one Svix HTTP call,
#   plus in-process retry sleeps), so one instance can serve several events
#   at once instead of scaling out per event. Concurrency > 1 requires at
#   least 1 vCPU in Cloud Functions 2nd gen, hence CPU 1.
# - MEMORY 512Mi: plenty for ~10 concurrent small JSON requests with the
#   Firestore and Svix clients loaded; valid with 1 vCPU.
# - MAX_INSTANCES 10: caps parallelism at 10 x 10 = 100 in-flight events,
#   which protects Svix rate limits and Firestore from a retry storm; Pub/Sub
#   simply keeps the backlog. MIN_INSTANCES 0: no idle cost.
# - The timeout is config.py's (Deployment): above the longest delivery, so
#   the function records the outcome itself. The claim's lease (10 s) is renewed
#   while a delivery runs, so the timeout does not bound it.
#
# Capacity on purpose (SCALING.md): --target-rate=EVENTS_PER_SECOND derives the
# event function's instances and concurrency from a model whose inputs are
# measured (`make bench`, BENCHMARKS.md) or documented:
# - CPU per event: 3.83 ms, the function process at 32 concurrent new events
#   (BENCHMARKS.md, "Where the CPU goes"; the highest of its figures).
# - Cloud Run's autoscaler keeps instances near 60% CPU utilisation, so one
#   1-vCPU instance plans for 0.6 s of CPU per second: 156 events/s.
# - Latency per event on Google Cloud (--event-latency-ms, 300 by default):
#   two Firestore commits and one Svix call; locally 28-136 ms p50 against a
#   twin answering in 20 ms (BENCHMARKS.md), Svix's own latency on top.
#   Concurrency per instance = events/s per instance x latency (Little's law).
# - Headroom: max instances = 2 x needed (bursts, redeliveries, a slower
#   Svix); min instances = a quarter of needed, so a burst starts warm.
readonly MODEL_CPU_MS_X100=607 # 6.07 ms of CPU per event (BENCHMARKS.md)
readonly MODEL_CPU_MS=6.07
readonly MODEL_CPU_TARGET_PERCENT=60
readonly MODEL_HEADROOM=2
# The canary serves one heartbeat every few minutes and is public: a few
# instances at most bound what anyone can make it cost.
readonly CANARY_MAX_INSTANCES=3

# config_settings ARRAY ARG...: `python -m notifier config check ARG...`, run from the
# checkout, into the associative ARRAY by setting name. Its exit status; when not 0, its last
# line (the refusal) as ARRAY[said].
# shellcheck disable=SC2034 # settings is the caller's array, by name
config_settings() {
  local -n settings="$1"
  shift
  local out status=0 key value
  out="$(cd "$SCRIPT_DIR" && "$PYTHON" -m notifier config check "$@" 2>&1)" || status=$?
  if ((status != 0)); then
    settings[said]="${out##*$'\n'}"
    return "$status"
  fi
  while read -r key value; do
    settings["$key"]="$value"
  done <<<"$out"
}

# ask_config: config.py's own rules on the functions' settings: the environment they will get,
# and their timeout. Fills RUNTIME with the values the functions get, and what no option chose
# with config.py's defaults: the database, the timeout, the heartbeat's schedule. Dies with
# config.py's message, naming the flags that set what it names.
ask_config() {
  local asked=("GOOGLE_CLOUD_PROJECT=$PROJECT") knob status=0
  local -A checked=()
  [[ -z "$FIRESTORE_DATABASE" ]] || asked+=("FIRESTORE_DATABASE=$FIRESTORE_DATABASE")
  [[ -z "$SVIX_SERVER_URL" ]] || asked+=("SVIX_SERVER_URL=$SVIX_SERVER_URL")
  for knob in "${!RUNTIME[@]}"; do
    asked+=("NOTIFIER_${knob^^}=${RUNTIME[$knob]}")
  done
  [[ -z "$TIMEOUT_SECONDS" ]] || asked+=(--function-timeout="$TIMEOUT_SECONDS")
  config_settings checked "${asked[@]}" || status=$?
  if ((status != 0)); then
    local said="${checked[said]}" flags=""
    [[ "$said" == "notifier: "* ]] ||
      die "cannot run '$PYTHON -m notifier config check' (status $status: ${said:-no output}); pass --python=PATH (see --help)"
    said="${said#notifier: }"
    for knob in "${RUNTIME_KNOBS[@]}"; do
      [[ "$said" != *"NOTIFIER_${knob^^}"* ]] || flags+="${flags:+, }--${knob//_/-}"
    done
    die "$said${flags:+ (set by $flags)}"
  fi
  for knob in "${RUNTIME_KNOBS[@]}"; do
    RUNTIME["$knob"]="${checked[$knob]}"
  done
  FIRESTORE_DATABASE="${checked[firestore_database]}"
  TIMEOUT_SECONDS="${checked[timeout_seconds]}"
  HEARTBEAT_MINUTES="${HEARTBEAT_MINUTES:-$((checked[heartbeat_every_seconds] / 60))}"
  HEARTBEAT_ABSENT_MINUTES="${HEARTBEAT_ABSENT_MINUTES:-$((checked[heartbeat_late_after_seconds] / 60))}"
}

# runtime_help DEFAULTS: a --help line per runtime knob, with its default from the
# associative array DEFAULTS (config_settings).
runtime_help() {
  local -n defaults="$1"
  local knob meta
  for knob in "${RUNTIME_KNOBS[@]}"; do
    meta=N
    [[ "$knob" != log_level ]] || meta=LEVEL
    printf '  %-34s (env %s)\n' "--${knob//_/-}=$meta [${defaults[$knob]:-see notifier/config.py}]" \
      "NOTIFIER_${knob^^}"
  done
}

# derive_capacity: EVENT_SIZING, the event function's [concurrency], [cpu], [max] and [min]
# instances. Without --target-rate it is the common sizing; with it, the capacity model (see
# above and SCALING.md) fills in what was not chosen explicitly, and [rate] (events/s one
# instance sustains) and [needed] (instances) say how.
derive_capacity() {
  declare -gA EVENT_SIZING=(
    [concurrency]="$CONCURRENCY" [cpu]="$CPU" [max]="$MAX_INSTANCES" [min]="$MIN_INSTANCES"
  )
  [[ -n "$TARGET_RATE" ]] || return 0
  local cpu_whole=1 rate needed
  if [[ "$EXPLICIT_SIZING" == *" CPU "* && "$CPU" =~ ^([1-9][0-9]*)$ ]]; then
    cpu_whole="$CPU"
  fi
  # events/s one instance sustains at the autoscaler's CPU target
  rate=$((MODEL_CPU_TARGET_PERCENT * 10 * cpu_whole * 100 / MODEL_CPU_MS_X100))
  ((rate >= 1)) || rate=1
  needed=$(((TARGET_RATE + rate - 1) / rate))
  local concurrency=$(((rate * EVENT_LATENCY_MS + 999) / 1000))
  ((concurrency >= 2)) || concurrency=2
  ((concurrency <= 1000)) || concurrency=1000
  local max=$((needed * MODEL_HEADROOM)) min=$(((needed + 3) / 4))
  ((max >= 2)) || max=2
  ((max <= 1000)) || max=1000
  EVENT_SIZING[rate]="$rate" EVENT_SIZING[needed]="$needed"
  [[ "$EXPLICIT_SIZING" == *" CONCURRENCY "* ]] || EVENT_SIZING[concurrency]="$concurrency"
  [[ "$EXPLICIT_SIZING" == *" CPU "* ]] || EVENT_SIZING[cpu]="$cpu_whole"
  [[ "$EXPLICIT_SIZING" == *" MAX_INSTANCES "* ]] || EVENT_SIZING[max]="$max"
  [[ "$EXPLICIT_SIZING" == *" MIN_INSTANCES "* ]] || EVENT_SIZING[min]="$min"
  if ((EVENT_SIZING[min] > EVENT_SIZING[max])); then
    EVENT_SIZING[min]="${EVENT_SIZING[max]}"
  fi
}

check_source() {
  ((DRY_RUN == 1)) && return 0
  local f
  for f in main.py requirements.txt; do
    [[ -f "$SCRIPT_DIR/$f" ]] || die "$SCRIPT_DIR/$f is missing: run deploy.sh from a complete checkout"
  done
}

# deploy_function NAME SA CONCURRENCY CPU MAX_INSTANCES MIN_INSTANCES SECRETS FLAG...: one
# function with the flags every function has, then FLAG.... --set-env-vars / --set-secrets
# replace the whole set on every deploy, so a re-run converges to exactly this.
deploy_function() {
  local name="$1" account="$2" concurrency="$3" cpu="$4" max="$5" min="$6" secrets="$7" knob
  shift 7
  local env_vars=(
    # Newer runtimes (python311) do not set GOOGLE_CLOUD_PROJECT themselves.
    "GOOGLE_CLOUD_PROJECT=$PROJECT"
    "FIRESTORE_DATABASE=$FIRESTORE_DATABASE"
  )
  for knob in "${RUNTIME_KNOBS[@]}"; do
    env_vars+=("NOTIFIER_${knob^^}=${RUNTIME[$knob]}")
  done
  # The Functions Framework serves requests on (cpu count x 4) gunicorn
  # threads by default; match it to the per-instance concurrency.
  env_vars+=("THREADS=$concurrency")
  [[ -z "$SVIX_SERVER_URL" ]] || env_vars+=("SVIX_SERVER_URL=$SVIX_SERVER_URL")
  local joined
  joined="$(
    IFS=,
    printf '%s' "${env_vars[*]}"
  )"
  local flags=(
    --gen2 --runtime=python311 --region="$REGION" --project="$PROJECT" --source=.
    --service-account="$account"
    # Secrets come from Secret Manager by pinned version, never from --set-env-vars.
    --set-secrets="$secrets"
    --set-env-vars="$joined"
    --max-instances="$max" --min-instances="$min"
    --concurrency="$concurrency" --cpu="$cpu" --memory="$MEMORY"
    --timeout="${TIMEOUT_SECONDS}s"
  )
  if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then
    flags+=(--build-service-account="projects/$PROJECT/serviceAccounts/$BUILD_SERVICE_ACCOUNT")
  fi
  run gcloud functions deploy "$name" "${flags[@]}" "$@"
}

deploy_event_function() {
  section "Event function $FUNCTION_NAME (entry point on_event)"
  if [[ -n "$TARGET_RATE" ]]; then
    printf '# capacity model (SCALING.md) for --target-rate=%s events/s: %s events/s per instance at %s ms CPU and %s ms per event -> %s instances needed; max %s, min %s, concurrency %s, cpu %s\n' \
      "$TARGET_RATE" "${EVENT_SIZING[rate]}" "$MODEL_CPU_MS" "$EVENT_LATENCY_MS" \
      "${EVENT_SIZING[needed]}" "${EVENT_SIZING[max]}" "${EVENT_SIZING[min]}" \
      "${EVENT_SIZING[concurrency]}" "${EVENT_SIZING[cpu]}" >&3
  fi
  # --retry: a failed invocation is redelivered by Pub/Sub (backoff and
  # dead-lettering are configured on the trigger subscription, pubsub.sh).
  # --trigger-service-account: the identity Eventarc/Pub/Sub uses to invoke
  # the function: the function's own account, which needs only
  # roles/run.invoker on this one service (eventarc.eventReceiver is not
  # needed for Pub/Sub triggers).
  # --ingress-settings=internal-only: Eventarc and Pub/Sub push from the same
  # project count as internal, so nothing else can even reach the endpoint.
  deploy_function "$FUNCTION_NAME" "$SA_EMAIL" "${EVENT_SIZING[concurrency]}" \
    "${EVENT_SIZING[cpu]}" "${EVENT_SIZING[max]}" "${EVENT_SIZING[min]}" \
    "SVIX_API_KEY=${SECRET}:${SECRET_VERSION}" \
    --entry-point=on_event --trigger-topic="$TOPIC" --retry \
    --trigger-service-account="$SA_EMAIL" --ingress-settings=internal-only
  # gcloud only checks project-level bindings and may warn that the trigger
  # SA lacks roles/run.invoker; this service-level binding is what counts.
  converge_invokers "$FUNCTION_NAME" "serviceAccount:$SA_EMAIL"
  # Pub/Sub mints the OIDC token of the trigger SA for each push. Service
  # agents created before 2021-04-08 lack that permission by default; grant
  # it on this one service account (not project-wide).
  run_retry gcloud iam service-accounts add-iam-policy-binding "$SA_EMAIL" \
    --project="$PROJECT" --member="serviceAccount:$PUBSUB_AGENT" \
    --role=roles/iam.serviceAccountTokenCreator --condition=None --format=none
}

deploy_http_functions() {
  section "HTTP functions (authenticated callers only)"
  # --no-allow-unauthenticated: callers need roles/run.invoker on the
  # function: exactly the --invoker members (project owners/editors have it
  # implicitly). Members granted by an earlier run and no longer listed are
  # removed. No runtime account gets an invoker role on these.
  deploy_private_http "$NOTIFICATIONS_FUNCTION" notifications "$API_SA_EMAIL" \
    "$NOTIFICATIONS_INGRESS"
  deploy_private_http "$APP_PORTAL_FUNCTION" app_portal "$PORTAL_SA_EMAIL" \
    "$APP_PORTAL_INGRESS"
}

# deploy_private_http SERVICE ENTRY_POINT SERVICE_ACCOUNT INGRESS: one
# IAM-protected HTTP function with the Svix token, invokable by exactly the
# --invoker members.
deploy_private_http() {
  deploy_function "$1" "$3" "$CONCURRENCY" "$CPU" "$MAX_INSTANCES" "$MIN_INSTANCES" \
    "SVIX_API_KEY=${SECRET}:${SECRET_VERSION}" \
    --entry-point="$2" --trigger-http --no-allow-unauthenticated --ingress-settings="$4"
  converge_invokers "$1" "${INVOKERS[@]}"
}

deploy_operational() {
  section "Operational webhooks function $OPERATIONAL_FUNCTION (public; trusts only Svix signatures)"
  # Svix sends its operational webhooks (customer endpoints failing,
  # disabled, ...) without Google credentials: public as the canary, its own
  # account (Firestore only), its own signing secret, a few instances (a
  # handful of webhooks per failing endpoint and day).
  deploy_function "$OPERATIONAL_FUNCTION" "$OPERATIONAL_SA_EMAIL" "$CONCURRENCY" "$CPU" \
    "$CANARY_MAX_INSTANCES" 0 \
    "SVIX_OPERATIONAL_WEBHOOK_SECRET=${OPERATIONAL_SECRET}:${OPERATIONAL_SECRET_VERSION}" \
    --entry-point=operational_webhooks --trigger-http --allow-unauthenticated \
    --ingress-settings=all
}

deploy_canary() {
  section "Canary function $CANARY_FUNCTION (public; trusts only Svix signatures)"
  # Svix calls it without Google credentials: --allow-unauthenticated and all
  # ingress. It needs no Svix token, only its endpoint's signing secret, and
  # a few instances at most (one heartbeat every few minutes).
  deploy_function "$CANARY_FUNCTION" "$CANARY_SA_EMAIL" "$CONCURRENCY" "$CPU" \
    "$CANARY_MAX_INSTANCES" 0 "NOTIFIER_CANARY_SECRET=${CANARY_SECRET}:${CANARY_SECRET_VERSION}" \
    --entry-point=canary --trigger-http --allow-unauthenticated --ingress-settings=all
}
