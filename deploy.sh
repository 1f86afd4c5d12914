#!/usr/bin/env bash
#
# deploy.sh - deploy "notifier" (platform Pub/Sub events -> Svix webhook messages)
# to Google Cloud Functions (2nd gen, Python 3.11) and set up everything it needs.
#
# What it sets up, in the order of main() below; every step is idempotent (a second
# run looks up what exists, updates or skips it, and never fails because it is there):
# the APIs; the Firestore database (created only if missing: its location is
# permanent); a check of the Svix API key secret and the version to pin; one service
# account per function with only what it uses (docs/operations/iam.md); the event topic, its
# dead-letter topic and pull subscription; Firestore index exemptions and TTL policies,
# before any traffic; the event function (Pub/Sub trigger via Eventarc, --retry, sized
# by --target-rate) and its trigger subscription (retention, dead-lettering, backoff);
# the HTTP functions notifications and app_portal (authenticated only, invokers exactly
# the --invoker members); Svix (`python -m notifier catalog sync`, `heartbeat setup`),
# the canary's signing secret and the public canary; Svix's operational-webhook endpoint
# (`operational setup`), its signing secret and the public operational_webhooks function
# (customer endpoint health); the heartbeat Scheduler job;
# log-based metrics, alert policies and the dashboard.
#
# Usage: ./deploy.sh --project=my-project [options]   (./deploy.sh --help)
#        ./deploy.sh --dry-run --project=my-project    print the plan, run nothing
#
# --dry-run prints every command (one per line, shell-quoted, prefixed "+ ")
# and needs neither credentials nor network. Lookups are not run: values they
# would return are shown as upper-case placeholders (PROJECT_NUMBER,
# TRIGGER_ID, TRIGGER_SUBSCRIPTION, ...). Existence checks are printed with a
# trailing "# exists?" and are assumed to fail (a fresh project), so the create
# branch is shown; add --assume-existing to preview a re-run (update branch).
#
# The deploying identity needs to be able to enable services, create service
# accounts, set IAM policies on the project/secrets/topics/subscriptions/service
# accounts/Cloud Run services, deploy functions (plus iam.serviceAccounts.actAs
# on the functions' and the Scheduler job's accounts), create Firestore
# databases/TTL policies/index exemptions, secrets and their versions (and read
# them: the operator commands get the Svix token), Scheduler jobs, log metrics,
# alert policies and dashboards; roles/owner covers all of it. The gcloud alpha
# and beta components are used (alert policies exist only in "gcloud alpha").
#
# Its parts live in deploy/ (lib.sh: running and tracing commands; names.sh: every
# derived name; one file per area), the JSON it sends in monitoring/, as templates
# filled by deploy/render.py. The functions' settings are notifier/config.py's: its
# defaults, and its rules checked before anything runs (python -m notifier config check).

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
# shellcheck source=deploy/lib.sh
source "$SCRIPT_DIR/deploy/lib.sh"
# shellcheck source=deploy/names.sh
source "$SCRIPT_DIR/deploy/names.sh"
# shellcheck source=deploy/project.sh
source "$SCRIPT_DIR/deploy/project.sh"
# shellcheck source=deploy/iam.sh
source "$SCRIPT_DIR/deploy/iam.sh"
# shellcheck source=deploy/firestore.sh
source "$SCRIPT_DIR/deploy/firestore.sh"
# shellcheck source=deploy/pubsub.sh
source "$SCRIPT_DIR/deploy/pubsub.sh"
# shellcheck source=deploy/functions.sh
source "$SCRIPT_DIR/deploy/functions.sh"
# shellcheck source=deploy/svix.sh
source "$SCRIPT_DIR/deploy/svix.sh"
# shellcheck source=deploy/monitoring.sh
source "$SCRIPT_DIR/deploy/monitoring.sh"

# ===== Configuration: flag > environment variable > default; empty: notifier/config.py's.
PROJECT="${GOOGLE_CLOUD_PROJECT:-}"
REGION="${NOTIFIER_REGION:-europe-west1}"
TOPIC="${NOTIFIER_TOPIC:-platform-events}"
FUNCTION_NAME="${NOTIFIER_FUNCTION_NAME:-notifier}"
SECRET="${NOTIFIER_SECRET:-svix-api-key}"
SVIX_SERVER_URL="${SVIX_SERVER_URL:-}"
FIRESTORE_DATABASE="${FIRESTORE_DATABASE:-}"
FIRESTORE_LOCATION="${NOTIFIER_FIRESTORE_LOCATION:-}" # empty: same as --region
ALERT_EMAIL="${NOTIFIER_ALERT_EMAIL:-}"
NOTIFICATION_CHANNELS=()
if [[ -n "${NOTIFIER_NOTIFICATION_CHANNELS:-}" ]]; then
  IFS=',' read -r -a NOTIFICATION_CHANNELS <<<"${NOTIFIER_NOTIFICATION_CHANNELS}"
fi
INVOKERS=()
if [[ -n "${NOTIFIER_INVOKERS:-}" ]]; then
  IFS=',' read -r -a INVOKERS <<<"${NOTIFIER_INVOKERS}"
fi
BUILD_SERVICE_ACCOUNT="${NOTIFIER_BUILD_SERVICE_ACCOUNT:-}"

# Function sizing; why these defaults: deploy/functions.sh. The timeout is config.py's.
CONCURRENCY="${NOTIFIER_CONCURRENCY:-10}"
CPU="${NOTIFIER_CPU:-1}"
MEMORY="${NOTIFIER_MEMORY:-512Mi}"
MAX_INSTANCES="${NOTIFIER_MAX_INSTANCES:-10}"
MIN_INSTANCES="${NOTIFIER_MIN_INSTANCES:-0}"
TIMEOUT_SECONDS="${NOTIFIER_TIMEOUT_SECONDS:-}"
# Chosen explicitly (flag or environment): these win over what --target-rate derives.
EXPLICIT_SIZING=" "
for _var in CONCURRENCY CPU MAX_INSTANCES MIN_INSTANCES; do
  _env="NOTIFIER_${_var}"
  [[ -n "${!_env:-}" ]] && EXPLICIT_SIZING+="$_var "
done
unset _var _env
TARGET_RATE="${NOTIFIER_TARGET_RATE:-}"
EVENT_LATENCY_MS="${NOTIFIER_EVENT_LATENCY_MS:-300}"

# config.py's settings that deploy.sh passes to the functions: each is the flag --NAME (its
# underscores as hyphens) and the variable NOTIFIER_NAME, for deploy.sh as for the functions.
# RUNTIME holds what was asked for, then what config.py makes of it (ask_config).
readonly RUNTIME_KNOBS=(retry_budget_seconds lease_seconds svix_timeout_seconds
  record_ttl_days portal_expiry_seconds log_level)
declare -A RUNTIME=()
for _knob in "${RUNTIME_KNOBS[@]}"; do
  _env="NOTIFIER_${_knob^^}"
  [[ -z "${!_env:-}" ]] || RUNTIME[$_knob]="${!_env}"
done
unset _knob _env

# Secrets are mounted by pinned version: --secret-version (default: the newest enabled
# version at deploy time); the canary's signing secret is versioned by the heartbeat setup.
SECRET_VERSION="${NOTIFIER_SECRET_VERSION:-}"
CANARY_SECRET="${NOTIFIER_CANARY_SECRET_NAME:-notifier-canary-secret}"
# The operational-webhook endpoint's signing secret, versioned by `operational setup`.
OPERATIONAL_SECRET="${NOTIFIER_OPERATIONAL_SECRET_NAME:-notifier-operational-secret}"

# Ingress of the HTTP functions: internal-only (callers inside the project's VPC networks /
# perimeter, Google services such as Pub/Sub, Scheduler, Eventarc), internal-and-gclb (also
# through an external load balancer), all.
NOTIFICATIONS_INGRESS="${NOTIFIER_NOTIFICATIONS_INGRESS:-internal-only}"
APP_PORTAL_INGRESS="${NOTIFIER_APP_PORTAL_INGRESS:-internal-only}"

# Heartbeat: a Scheduler job every N minutes; alerts when none arrived for M minutes (both
# config.py's by default: `status` judges by them), or when they stay late.
HEARTBEAT_MINUTES="${NOTIFIER_HEARTBEAT_MINUTES:-}"
HEARTBEAT_ABSENT_MINUTES="${NOTIFIER_HEARTBEAT_ABSENT_MINUTES:-}"
HEARTBEAT_LATENCY_ALERT_MS="${NOTIFIER_HEARTBEAT_LATENCY_ALERT_MS:-60000}"

# The operator commands (config check, catalog sync, heartbeat setup) and deploy/render.py
# run with this Python: the checkout's .venv if there is one (make builds it), else python3.
PYTHON="${NOTIFIER_PYTHON:-$SCRIPT_DIR/.venv/bin/python}"
[[ -n "${NOTIFIER_PYTHON:-}" || -x "$PYTHON" ]] || PYTHON=python3

# Pub/Sub redelivery of events the function failed (it runs with --retry).
# 10 attempts with exponential backoff 10 s .. 600 s ride out roughly 40
# minutes of Svix/Firestore trouble before an event is dead-lettered, then
# kept DEAD_LETTER_RETENTION (deploy/pubsub.sh).
MAX_DELIVERY_ATTEMPTS="${NOTIFIER_MAX_DELIVERY_ATTEMPTS:-10}"
MIN_RETRY_DELAY_SECONDS="${NOTIFIER_MIN_RETRY_DELAY_SECONDS:-10}"
MAX_RETRY_DELAY_SECONDS="${NOTIFIER_MAX_RETRY_DELAY_SECONDS:-600}"
# Unacknowledged events wait in the trigger subscription this long (Eventarc: 24 h).
RETENTION="${NOTIFIER_RETENTION:-7d}"
# Alert when the trigger subscription's oldest unacknowledged event is older than this (s):
# one event being retried reaches ~40 min before it is dead-lettered, so 15 min means
# "trouble for a while", not a blip.
BACKLOG_AGE_ALERT_SECONDS="${NOTIFIER_BACKLOG_AGE_ALERT_SECONDS:-900}"
# Alert when more than this many events failed within 5 minutes.
ALERT_FAILURE_THRESHOLD="${NOTIFIER_ALERT_FAILURE_THRESHOLD:-0}"

DRY_RUN="${NOTIFIER_DRY_RUN:-0}"
ASSUME_EXISTING=0

usage() {
  local -A d=() # config.py's defaults, as `config check` shows them
  config_settings d GOOGLE_CLOUD_PROJECT=PROJECT || d=([said]="")
  local unknown="see notifier/config.py" runtime every="" absent=""
  runtime="$(runtime_help d)"
  [[ -z "${d[heartbeat_every_seconds]:-}" ]] || every=$((d[heartbeat_every_seconds] / 60))
  [[ -z "${d[heartbeat_late_after_seconds]:-}" ]] || absent=$((d[heartbeat_late_after_seconds] / 60))
  cat <<EOF
Usage: ./deploy.sh [options]

Deploys the notifier Cloud Functions (2nd gen, python311) and everything they
need: APIs, Firestore database, TTL policies and index exemptions, one service
account per function + IAM, topics, retention and dead-lettering, the event
catalog and heartbeat in Svix, the canary, the operational webhooks
endpoint and function, the heartbeat Scheduler job,
log-based metrics, alert policies and a dashboard. Safe to re-run.

Target
  --project=ID              Google Cloud project (env GOOGLE_CLOUD_PROJECT,
                            else 'gcloud config get-value project'; required)
  --region=REGION           functions region [europe-west1] (env NOTIFIER_REGION)
  --function-name=NAME      event function name [notifier], 3..20 characters;
                            also names the functions NAME-notifications /
                            NAME-app-portal / NAME-canary / NAME-operational,
                            the service accounts NAME-sa / -api-sa / -portal-sa /
                            -canary-sa / -ops-sa / -hb-sa,
                            the Scheduler job NAME-heartbeat and the log
                            metrics NAME_<outcome> (env NOTIFIER_FUNCTION_NAME)
  --topic=TOPIC             platform events topic [platform-events]; dead
                            letters go to TOPIC-dead-letter (env NOTIFIER_TOPIC)
  --secret=SECRET           Secret Manager secret holding the Svix API key
                            [svix-api-key] (env NOTIFIER_SECRET)
  --svix-server-url=URL     Svix server URL (env SVIX_SERVER_URL; default: none)
  --database=ID             Firestore database [${d[firestore_database]:-$unknown}]
                            (env FIRESTORE_DATABASE)
  --firestore-location=LOC  location if the database must be created
                            [same as --region] (env NOTIFIER_FIRESTORE_LOCATION)
  --build-service-account=EMAIL
                            Cloud Build service account for the function build
                            (env NOTIFIER_BUILD_SERVICE_ACCOUNT; default: the
                            project's default build service account)
  --secret-version=N        version of --secret the functions mount (pinned)
                            [the newest enabled version at deploy time]
                            (env NOTIFIER_SECRET_VERSION)
  --canary-secret=SECRET    Secret Manager secret for the canary's Svix signing
                            secret [notifier-canary-secret]; versioned by the
                            heartbeat setup (env NOTIFIER_CANARY_SECRET_NAME)
  --operational-secret=SECRET
                            Secret Manager secret for the signing secret of
                            Svix's operational webhooks [notifier-operational-secret];
                            versioned by operational setup (env
                            NOTIFIER_OPERATIONAL_SECRET_NAME)
  --python=PATH             Python for the operator commands (config check,
                            catalog sync, heartbeat setup) and deploy/render.py
                            [.venv/bin/python, else python3] (env NOTIFIER_PYTHON)

Access and alerting
  --invoker=MEMBER          may call the HTTP functions, e.g.
                            serviceAccount:platform@p.iam.gserviceaccount.com;
                            repeatable (env NOTIFIER_INVOKERS, comma-separated).
                            Exactly these: a member granted by an earlier run
                            and no longer listed is removed
  --notifications-ingress=SETTING, --app-portal-ingress=SETTING
                            internal-only | internal-and-gclb | all
                            [internal-only] (env NOTIFIER_NOTIFICATIONS_INGRESS,
                            NOTIFIER_APP_PORTAL_INGRESS); IAM applies either way
  --alert-email=EMAIL       create/reuse an email notification channel for the
                            alert policies (env NOTIFIER_ALERT_EMAIL)
  --notification-channel=projects/P/notificationChannels/ID
                            existing channel for the alert policies; repeatable
                            (env NOTIFIER_NOTIFICATION_CHANNELS, comma-separated)
  --alert-failure-threshold=N
                            alert when more than N events fail in 5 min [0]
  --backlog-age-alert=SECONDS
                            alert when the trigger subscription's oldest
                            unacknowledged event is older [900]
  --heartbeat-minutes=N     heartbeat every N minutes (a divisor of 60)
                            [${every:-$unknown}] (env NOTIFIER_HEARTBEAT_MINUTES)
  --heartbeat-absent-minutes=N
                            alert when no heartbeat arrived for N minutes
                            [${absent:-$unknown}] (env NOTIFIER_HEARTBEAT_ABSENT_MINUTES)
  --heartbeat-latency-alert-ms=N
                            alert when the median heartbeat latency stays
                            above N ms for 15 minutes [60000]

Sizing
  --target-rate=EVENTS_PER_SECOND
                            derive the event function's --max-instances,
                            --min-instances, --concurrency and --cpu from the
                            capacity model in SCALING.md; explicit flags win
                            (env NOTIFIER_TARGET_RATE)
  --event-latency-ms=N      latency per event the model plans for [300]
  --max-instances=N [10]  --min-instances=N [0]  --concurrency=N [10]
  --cpu=N [1]  --memory=SIZE [512Mi]  --timeout=SECONDS [${d[timeout_seconds]:-$unknown}]
  (env NOTIFIER_MAX_INSTANCES, _MIN_INSTANCES, _CONCURRENCY, _CPU, _MEMORY,
  _TIMEOUT_SECONDS; the canary runs at most $CANARY_MAX_INSTANCES instances)

Runtime knobs (notifier/config.py's, passed to the functions as environment variables)
${runtime}
  Checked before anything runs, by config.py's own rules (python -m notifier
  config check): the timeout must exceed the longest delivery by a second (the
  retry budget, then every Svix attempt: ${d[longest_delivery_seconds]:-$unknown} s with the defaults), the
  lease be at least 10 s (renewed every third of it while a delivery runs, each
  renewal bounded by that third: the timeout does not bound it), the portal
  expiry lie within Svix's range.
  Here: timeout <= 540; concurrency > 1 needs cpu >= 1.

Pub/Sub delivery of the event function's trigger subscription
  --retention=DURATION              keep unacknowledged events [7d]; 10m..31d
                                    (dead letters are kept $DEAD_LETTER_RETENTION)
  --max-delivery-attempts=N [10]      5..100, then the event is dead-lettered
  --min-retry-delay=SECONDS [10]      exponential backoff lower bound
  --max-retry-delay=SECONDS [600]     exponential backoff upper bound (<= 600)

Modes
  --dry-run                 print every command (shell-quoted, "+ " prefix)
                            instead of running it; no credentials or network.
                            Lookups show placeholders; existence checks are
                            assumed to fail (fresh project)
  --assume-existing         with --dry-run: assume existence checks succeed,
                            to preview what a re-run does
  -h, --help                show this help

The secret must exist before deploying; create it once with:
  printf %s "\$TOKEN" | gcloud secrets create svix-api-key --data-file=- --project=PROJECT
The operator commands need the project's CLI (python -m notifier) in --python.
Capacity model and what to request at high rates: SCALING.md.
EOF
}

# ===== Argument parsing: accepts --flag=value and --flag value.
parse_args() {
  local flag value has_value knob
  while (($# > 0)); do
    flag="$1"
    value=""
    has_value=0
    if [[ "$flag" == --*=* ]]; then
      value="${flag#*=}"
      flag="${flag%%=*}"
      has_value=1
    fi
    case "$flag" in
      -h | --help)
        usage
        exit 0
        ;;
      --dry-run)
        DRY_RUN=1
        shift
        continue
        ;;
      --assume-existing)
        ASSUME_EXISTING=1
        shift
        continue
        ;;
      --project | --region | --topic | --function-name | --secret | --svix-server-url | \
        --database | --firestore-location | --build-service-account | --invoker | \
        --alert-email | --notification-channel | --alert-failure-threshold | \
        --max-instances | --min-instances | --concurrency | --cpu | --memory | --timeout | \
        --retry-budget-seconds | --lease-seconds | --svix-timeout-seconds | \
        --record-ttl-days | --portal-expiry-seconds | --log-level | --max-delivery-attempts | \
        --min-retry-delay | --max-retry-delay | --target-rate | --event-latency-ms | \
        --retention | --backlog-age-alert | --secret-version | --canary-secret | --operational-secret | \
        --notifications-ingress | --app-portal-ingress | --heartbeat-minutes | \
        --heartbeat-absent-minutes | --heartbeat-latency-alert-ms | --python) ;;
      *) die "unknown option: $flag (see --help)" ;;
    esac
    if ((has_value == 0)); then
      (($# >= 2)) || die "option $flag needs a value (see --help)"
      value="$2"
      shift
    fi
    shift
    case "$flag" in
      --project) PROJECT="$value" ;;
      --region) REGION="$value" ;;
      --topic) TOPIC="$value" ;;
      --function-name) FUNCTION_NAME="$value" ;;
      --secret) SECRET="$value" ;;
      --svix-server-url) SVIX_SERVER_URL="$value" ;;
      --database) FIRESTORE_DATABASE="$value" ;;
      --firestore-location) FIRESTORE_LOCATION="$value" ;;
      --build-service-account) BUILD_SERVICE_ACCOUNT="$value" ;;
      --invoker) INVOKERS+=("$value") ;;
      --alert-email) ALERT_EMAIL="$value" ;;
      --notification-channel) NOTIFICATION_CHANNELS+=("$value") ;;
      --alert-failure-threshold) ALERT_FAILURE_THRESHOLD="$value" ;;
      --max-instances) MAX_INSTANCES="$value" EXPLICIT_SIZING+="MAX_INSTANCES " ;;
      --min-instances) MIN_INSTANCES="$value" EXPLICIT_SIZING+="MIN_INSTANCES " ;;
      --concurrency) CONCURRENCY="$value" EXPLICIT_SIZING+="CONCURRENCY " ;;
      --cpu) CPU="$value" EXPLICIT_SIZING+="CPU " ;;
      --target-rate) TARGET_RATE="$value" ;;
      --event-latency-ms) EVENT_LATENCY_MS="$value" ;;
      --retention) RETENTION="$value" ;;
      --backlog-age-alert) BACKLOG_AGE_ALERT_SECONDS="${value%s}" ;;
      --secret-version) SECRET_VERSION="$value" ;;
      --canary-secret) CANARY_SECRET="$value" ;;
      --operational-secret) OPERATIONAL_SECRET="$value" ;;
      --notifications-ingress) NOTIFICATIONS_INGRESS="$value" ;;
      --app-portal-ingress) APP_PORTAL_INGRESS="$value" ;;
      --heartbeat-minutes) HEARTBEAT_MINUTES="$value" ;;
      --heartbeat-absent-minutes) HEARTBEAT_ABSENT_MINUTES="$value" ;;
      --heartbeat-latency-alert-ms) HEARTBEAT_LATENCY_ALERT_MS="$value" ;;
      --python) PYTHON="$value" ;;
      --memory) MEMORY="$value" ;;
      --timeout) TIMEOUT_SECONDS="${value%s}" ;;
      --max-delivery-attempts) MAX_DELIVERY_ATTEMPTS="$value" ;;
      --min-retry-delay) MIN_RETRY_DELAY_SECONDS="${value%s}" ;;
      --max-retry-delay) MAX_RETRY_DELAY_SECONDS="${value%s}" ;;
      *) # the runtime knobs: --retry-budget-seconds ... --log-level
        knob="${flag#--}"
        RUNTIME[${knob//-/_}]="$value"
        ;;
    esac
  done
}

# ===== Validation: fail before touching anything.
validate() {
  if [[ -z "$PROJECT" ]] && command -v gcloud >/dev/null 2>&1; then
    PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
  fi
  [[ -n "$PROJECT" ]] ||
    die "no project: pass --project=ID (or set GOOGLE_CLOUD_PROJECT, or 'gcloud config set project ID')"
  require_match project "$PROJECT" '^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$' 'a project ID'
  require_match region "$REGION" '^[a-z]+-[a-z]+[0-9]+$' 'e.g. europe-west1'
  require_match topic "$TOPIC" '^[A-Za-z][A-Za-z0-9._-]{2,200}$' 'a Pub/Sub topic ID'
  # 3..20 characters so that "<name>-portal-sa" / "<name>-canary-sa" are
  # valid (6..30 character) service account IDs.
  require_match function-name "$FUNCTION_NAME" '^[a-z][a-z0-9-]{1,18}[a-z0-9]$' \
    '3-20 lowercase letters, digits or hyphens, starting with a letter'
  require_match secret "$SECRET" '^[A-Za-z0-9_-]{1,255}$' 'a Secret Manager secret ID'
  if [[ -n "$SVIX_SERVER_URL" ]]; then
    require_match svix-server-url "$SVIX_SERVER_URL" '^https?://[^,[:space:]]+$' \
      'an http(s) URL without commas'
  fi
  # The functions' settings, by config.py's rules; then its defaults fill in the rest.
  [[ -z "$TIMEOUT_SECONDS" ]] || require_int timeout "$TIMEOUT_SECONDS" 1 540
  ask_config
  if [[ "$FIRESTORE_DATABASE" != "(default)" ]]; then
    require_match database "$FIRESTORE_DATABASE" '^[a-z][a-z0-9-]{2,61}[a-z0-9]$' \
      '(default) or a Firestore database ID'
  fi
  FIRESTORE_LOCATION="${FIRESTORE_LOCATION:-$REGION}"
  require_match firestore-location "$FIRESTORE_LOCATION" '^[a-z0-9-]+$' 'e.g. europe-west1 or eur3'
  if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then
    require_match build-service-account "$BUILD_SERVICE_ACCOUNT" \
      '^[^@[:space:]/]+@[^@[:space:]/]+$' 'a service account email'
  fi
  local member channel
  for member in "${INVOKERS[@]}"; do
    require_match invoker "$member" '^(user|group|serviceAccount|domain):[^,[:space:]]+$' \
      'e.g. serviceAccount:caller@project.iam.gserviceaccount.com'
  done
  if [[ -n "$ALERT_EMAIL" ]]; then
    require_match alert-email "$ALERT_EMAIL" '^[^@[:space:],"\\]+@[^@[:space:],"\\]+$' 'an email address'
  fi
  for channel in "${NOTIFICATION_CHANNELS[@]}"; do
    require_match notification-channel "$channel" '^projects/[^/]+/notificationChannels/[0-9]+$' \
      'projects/PROJECT/notificationChannels/ID'
  done
  require_int alert-failure-threshold "$ALERT_FAILURE_THRESHOLD" 0 1000000
  require_int max-instances "$MAX_INSTANCES" 1 1000
  require_int min-instances "$MIN_INSTANCES" 0 "$MAX_INSTANCES"
  require_int concurrency "$CONCURRENCY" 1 1000
  [[ -z "$TARGET_RATE" ]] || require_int target-rate "$TARGET_RATE" 1 100000
  require_match cpu "$CPU" '^[0-9]+(\.[0-9]+)?$' 'a number of vCPUs, e.g. 1 or 0.5'
  require_match memory "$MEMORY" '^[0-9]+(Mi|Gi|M|G)$' 'e.g. 512Mi or 1Gi'
  require_int max-delivery-attempts "$MAX_DELIVERY_ATTEMPTS" 5 100
  require_match secret "$CANARY_SECRET" '^[A-Za-z0-9_-]{1,255}$' 'a Secret Manager secret ID'
  require_match secret "$OPERATIONAL_SECRET" '^[A-Za-z0-9_-]{1,255}$' 'a Secret Manager secret ID'
  [[ -z "$SECRET_VERSION" ]] || require_int secret-version "$SECRET_VERSION" 1 999999999
  local setting
  for setting in "notifications-ingress:$NOTIFICATIONS_INGRESS" "app-portal-ingress:$APP_PORTAL_INGRESS"; do
    require_match "${setting%%:*}" "${setting#*:}" '^(internal-only|internal-and-gclb|all)$' \
      'internal-only, internal-and-gclb or all'
  done
  require_int heartbeat-minutes "$HEARTBEAT_MINUTES" 1 30
  # "*/N" in cron restarts at every hour: only divisors of 60 keep the interval even.
  ((60 % HEARTBEAT_MINUTES == 0)) ||
    die "invalid heartbeat-minutes: $HEARTBEAT_MINUTES (a divisor of 60: 1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)"
  require_int heartbeat-absent-minutes "$HEARTBEAT_ABSENT_MINUTES" "$((HEARTBEAT_MINUTES * 2))" 1440
  require_int heartbeat-latency-alert-ms "$HEARTBEAT_LATENCY_ALERT_MS" 1 3600000
  require_int backlog-age-alert "$BACKLOG_AGE_ALERT_SECONDS" 60 2678400
  # Pub/Sub accepts 10 minutes to 31 days.
  [[ "$RETENTION" =~ ^[1-9][0-9]{0,6}[smhd]$ ]] ||
    die "invalid retention: '$RETENTION' (e.g. 7d, 36h; 10m..31d)"
  local retention_seconds
  retention_seconds="$(duration_seconds "$RETENTION")"
  ((retention_seconds >= 600 && retention_seconds <= 2678400)) ||
    die "invalid retention: $RETENTION (expected 10m..31d)"
  require_int event-latency-ms "$EVENT_LATENCY_MS" 1 60000
  derive_capacity
  require_int min-retry-delay "$MIN_RETRY_DELAY_SECONDS" 0 600
  require_int max-retry-delay "$MAX_RETRY_DELAY_SECONDS" "$MIN_RETRY_DELAY_SECONDS" 600
  # Concurrency > 1 needs a whole vCPU in Cloud Functions 2nd gen.
  if ((CONCURRENCY > 1)) && [[ "$CPU" =~ ^0*(\.[0-9]*)?$ ]]; then
    die "concurrency $CONCURRENCY needs --cpu >= 1 (got $CPU)"
  fi
  if ((EVENT_SIZING[concurrency] > 1)) && [[ "${EVENT_SIZING[cpu]}" =~ ^0*(\.[0-9]*)?$ ]]; then
    die "concurrency ${EVENT_SIZING[concurrency]} needs --cpu >= 1 (got ${EVENT_SIZING[cpu]})"
  fi
  ((EVENT_SIZING[min] <= EVENT_SIZING[max])) ||
    die "min-instances ${EVENT_SIZING[min]} exceeds max-instances ${EVENT_SIZING[max]} for the event function"
  [[ "$DRY_RUN" =~ ^[01]$ ]] || die "NOTIFIER_DRY_RUN must be 0 or 1"
  if ((ASSUME_EXISTING == 1 && DRY_RUN == 0)); then
    die "--assume-existing only makes sense with --dry-run"
  fi
}

main() {
  parse_args "$@"
  validate
  derive_names

  start_trace
  if ((DRY_RUN == 0)); then
    command -v gcloud >/dev/null 2>&1 || die "gcloud not found: install the Google Cloud CLI"
    # Never wait for an interactive answer.
    export CLOUDSDK_CORE_DISABLE_PROMPTS=1
    check_source
  fi
  printf '# project=%s region=%s function=%s topic=%s secret=%s database=%s\n' \
    "$PROJECT" "$REGION" "$FUNCTION_NAME" "$TOPIC" "$SECRET" "$FIRESTORE_DATABASE" >&3

  cd "$SCRIPT_DIR" # --source=. is the project root (see .gcloudignore)
  enable_apis
  resolve_project_number
  ensure_firestore
  check_secret
  ensure_service_accounts
  ensure_topics
  ensure_index_exemptions
  ensure_ttl_policies
  deploy_event_function
  configure_trigger_subscription
  deploy_http_functions
  load_svix_token
  sync_catalog
  ensure_canary_secret
  deploy_canary
  ensure_operational_secret
  deploy_operational
  ensure_heartbeat_job
  ensure_log_metrics
  ensure_alert_policies
  ensure_dashboard
  section "Done"
  if ((DRY_RUN == 0)); then
    printf 'deploy.sh: %s deployed to %s/%s\n' "$FUNCTION_NAME" "$PROJECT" "$REGION" >&2
  fi
}

main "$@"
