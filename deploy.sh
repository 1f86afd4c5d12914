#!/usr/bin/env bash
#
# deploy.sh - deploy "notifier" (platform Pub/Sub events -> Svix webhook messages)
# to Google Cloud Functions (2nd gen, Python 3.11) and set up everything it needs.
#
# What it sets up, in order (every step is idempotent: a second run looks up
# what exists, updates or skips it, and never fails because it is there):
#   1. the APIs the functions and this script use;
#   2. the Firestore database (created only if missing; location is permanent);
#   3. a check that the Svix API key secret exists, and its version to pin
#      (--secret-version, default the newest enabled one);
#   4. one service account per function, each with only what it uses:
#      Firestore roles conditioned to the notifier's database, the secret
#      accessor on exactly the secrets it mounts (README "IAM");
#   5. the event topic, a dead-letter topic <topic>-dead-letter and its pull
#      subscription <topic>-dead-letter-sub (dead letters are kept 31 days);
#   6. Firestore index exemptions (every field the operator tools never query)
#      and TTL policies on expires_at, before any traffic;
#   7. the event function (entry point on_event, Pub/Sub trigger via Eventarc,
#      --retry, sized by --target-rate from SCALING.md's model) and exactly
#      its trigger identity as invoker;
#   8. the trigger's Eventarc-managed subscription: retention (--retention,
#      7 days), dead-letter policy, exponential retry backoff, and the Pub/Sub
#      service agent grants that dead-lettering needs;
#   9. the HTTP functions notifications and app_portal (authenticated only,
#      ingress options; invokers converge to exactly the --invoker members);
#  10. Svix: `python -m notifier catalog sync` and `python -m notifier
#      heartbeat setup` (the token in their environment only), the canary's
#      signing secret as a new secret version only when it changed;
#  11. the public canary function, pinned to that version;
#  12. the Cloud Scheduler job <function>-heartbeat publishing a heartbeat;
#  13. log-based metrics <prefix>_{sent,duplicate,rejected,failed,retried,
#      catalog_drift,heartbeat} and the distribution <prefix>_heartbeat_latency;
#  14. alert policies: delivery failures, backlog age, heartbeat (optionally
#      notifying an email channel or existing notification channels);
#  15. the Cloud Monitoring dashboard from monitoring/dashboard.json.
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
# alert policies and dashboards; roles/owner covers all of it. The gcloud
# alpha and beta components are used (alert policies exist only in "gcloud
# alpha monitoring policies").

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR

# --------------------------------------------------------------------------
# Configuration: flag > environment variable > default.
# --------------------------------------------------------------------------
PROJECT="${GOOGLE_CLOUD_PROJECT:-}"
REGION="${NOTIFIER_REGION:-europe-west1}"
TOPIC="${NOTIFIER_TOPIC:-platform-events}"
FUNCTION_NAME="${NOTIFIER_FUNCTION_NAME:-notifier}"
SECRET="${NOTIFIER_SECRET:-svix-api-key}"
SVIX_SERVER_URL="${SVIX_SERVER_URL:-}"
FIRESTORE_DATABASE="${FIRESTORE_DATABASE:-(default)}"
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

# Function sizing. Why these defaults:
# - CONCURRENCY 10: the work is I/O-bound (Firestore + one Svix HTTP call,
#   plus in-process retry sleeps), so one instance can serve several events
#   at once instead of scaling out per event. Concurrency > 1 requires at
#   least 1 vCPU in Cloud Functions 2nd gen, hence CPU 1.
# - MEMORY 512Mi: plenty for ~10 concurrent small JSON requests with the
#   Firestore and Svix clients loaded; valid with 1 vCPU.
# - MAX_INSTANCES 10: caps parallelism at 10 x 10 = 100 in-flight events,
#   which protects Svix rate limits and Firestore from a retry storm; Pub/Sub
#   simply keeps the backlog. MIN_INSTANCES 0: no idle cost.
# - TIMEOUT 90s: must exceed the longest delivery the function can make, so
#   it records the outcome itself instead of being killed mid-flight. That is
#   the in-process retry budget (30 s) plus one last Svix call with the Svix
#   SDK's own retries (4 attempts x 10 s + 0.35 s of backoff, see
#   notifier/config.py), i.e. ~70 s, plus Firestore work. Kept far below the
#   600 s Pub/Sub push ack deadline so Pub/Sub never redelivers an event that
#   is still being processed.
# - LEASE 120s: a claim lease must outlive the longest possible invocation
#   (the timeout), otherwise a Pub/Sub redelivery could claim an event whose
#   first attempt is still running and send it twice.
CONCURRENCY="${NOTIFIER_CONCURRENCY:-10}"
CPU="${NOTIFIER_CPU:-1}"
MEMORY="${NOTIFIER_MEMORY:-512Mi}"
MAX_INSTANCES="${NOTIFIER_MAX_INSTANCES:-10}"
MIN_INSTANCES="${NOTIFIER_MIN_INSTANCES:-0}"
# Which of them were chosen explicitly (flag or environment): those win over
# what --target-rate derives.
EXPLICIT_SIZING=" "
for _var in CONCURRENCY CPU MAX_INSTANCES MIN_INSTANCES; do
  _env="NOTIFIER_${_var}"
  [[ -n "${!_env:-}" ]] && EXPLICIT_SIZING+="$_var "
done
unset _var _env

# Capacity on purpose (SCALING.md): --target-rate=EVENTS_PER_SECOND derives the
# event function's instances and concurrency from a model whose inputs are
# measured (`make bench`, BENCHMARKS.md) or documented:
# - CPU per event: 4.6 ms, the function process at 32 concurrent new events
#   (BENCHMARKS.md, "Where the CPU goes"; the highest of its figures).
# - Cloud Run's autoscaler keeps instances near 60% CPU utilisation, so one
#   1-vCPU instance plans for 0.6 s of CPU per second: 130 events/s.
# - Latency per event on Google Cloud (--event-latency-ms, 300 by default):
#   two Firestore commits and one Svix call; locally 28-136 ms p50 against a
#   stand-in answering in 20 ms (BENCHMARKS.md), Svix's own latency on top.
#   Concurrency per instance = events/s per instance x latency (Little's law).
# - Headroom: max instances = 2 x needed (bursts, redeliveries, a slower
#   Svix); min instances = a quarter of needed, so a burst starts warm.
TARGET_RATE="${NOTIFIER_TARGET_RATE:-}"
EVENT_LATENCY_MS="${NOTIFIER_EVENT_LATENCY_MS:-300}"
readonly MODEL_CPU_MS_X100=460 # 4.60 ms of CPU per event (BENCHMARKS.md)
readonly MODEL_CPU_MS=4.6
readonly MODEL_CPU_TARGET_PERCENT=60
readonly MODEL_HEADROOM=2
# The canary serves one heartbeat every few minutes and is public: a few
# instances at most bound what anyone can make it cost.
readonly CANARY_MAX_INSTANCES=3

# Secrets are mounted by pinned version: --secret-version (default: the
# newest enabled version at deploy time); the canary's signing secret is
# versioned by the heartbeat setup below.
SECRET_VERSION="${NOTIFIER_SECRET_VERSION:-}"
CANARY_SECRET="${NOTIFIER_CANARY_SECRET_NAME:-notifier-canary-secret}"

# Ingress of the HTTP functions: internal-only (callers inside the project's
# VPC networks / perimeter, and Google services such as Pub/Sub, Scheduler,
# Eventarc), internal-and-gclb (also through an external load balancer), all.
NOTIFICATIONS_INGRESS="${NOTIFIER_NOTIFICATIONS_INGRESS:-internal-only}"
APP_PORTAL_INGRESS="${NOTIFIER_APP_PORTAL_INGRESS:-internal-only}"

# Heartbeat: a Cloud Scheduler job every N minutes; alerts when none arrived
# for M minutes, or when their latency stays above a threshold.
HEARTBEAT_MINUTES="${NOTIFIER_HEARTBEAT_MINUTES:-5}"
HEARTBEAT_ABSENT_MINUTES="${NOTIFIER_HEARTBEAT_ABSENT_MINUTES:-15}"
HEARTBEAT_LATENCY_ALERT_MS="${NOTIFIER_HEARTBEAT_LATENCY_ALERT_MS:-60000}"

# The operator commands (catalog sync, heartbeat setup) run with this Python:
# the checkout's .venv if there is one (make unit builds it), else python3.
if [[ -n "${NOTIFIER_PYTHON:-}" ]]; then
  PYTHON="$NOTIFIER_PYTHON"
elif [[ -x "$SCRIPT_DIR/.venv/bin/python" ]]; then
  PYTHON="$SCRIPT_DIR/.venv/bin/python"
else
  PYTHON=python3
fi
TIMEOUT_SECONDS="${NOTIFIER_TIMEOUT_SECONDS:-90}"

# Runtime knobs passed to the function as environment variables.
RETRY_BUDGET_SECONDS="${NOTIFIER_RETRY_BUDGET_SECONDS:-30}"
LEASE_SECONDS="${NOTIFIER_LEASE_SECONDS:-120}"
SVIX_TIMEOUT_SECONDS="${NOTIFIER_SVIX_TIMEOUT_SECONDS:-10}"
RECORD_TTL_DAYS="${NOTIFIER_RECORD_TTL_DAYS:-30}"
PORTAL_EXPIRY_SECONDS="${NOTIFIER_PORTAL_EXPIRY_SECONDS:-3600}"
LOG_LEVEL="${NOTIFIER_LOG_LEVEL:-INFO}"
# One Svix call is up to 1 + 3 attempts (the SDK's default retry schedule,
# NOTIFIER_SVIX_RETRY_SCHEDULE, which this script leaves at its default).
readonly SVIX_ATTEMPTS=4

# Pub/Sub redelivery of events the function failed (it runs with --retry).
# 10 attempts with exponential backoff 10 s .. 600 s ride out roughly 40
# minutes of Svix/Firestore trouble before an event is dead-lettered;
# dead letters are then kept 31 days (the Pub/Sub maximum for a subscription's
# retention, `gcloud pubsub subscriptions update --help`).
MAX_DELIVERY_ATTEMPTS="${NOTIFIER_MAX_DELIVERY_ATTEMPTS:-10}"
MIN_RETRY_DELAY_SECONDS="${NOTIFIER_MIN_RETRY_DELAY_SECONDS:-10}"
MAX_RETRY_DELAY_SECONDS="${NOTIFIER_MAX_RETRY_DELAY_SECONDS:-600}"
DEAD_LETTER_RETENTION="31d"
# Unacknowledged events wait in the trigger subscription this long (Eventarc
# creates it with 24 h); 10m..31d.
RETENTION="${NOTIFIER_RETENTION:-7d}"
# Alert when the trigger subscription's oldest unacknowledged event is older
# than this (seconds). A single event being retried reaches ~40 min before it
# is dead-lettered, so 15 min means "trouble for a while", not a blip.
BACKLOG_AGE_ALERT_SECONDS="${NOTIFIER_BACKLOG_AGE_ALERT_SECONDS:-900}"
# Push ack deadline of the trigger subscription: the Pub/Sub maximum, so a
# push request is never considered lost while the function still runs.
ACK_DEADLINE_SECONDS=600

# Alert when more than this many events failed within 5 minutes.
ALERT_FAILURE_THRESHOLD="${NOTIFIER_ALERT_FAILURE_THRESHOLD:-0}"

DRY_RUN="${NOTIFIER_DRY_RUN:-0}"
ASSUME_EXISTING=0

usage() {
  cat <<EOF
Usage: ./deploy.sh [options]

Deploys the notifier Cloud Functions (2nd gen, python311) and everything they
need: APIs, Firestore database, TTL policies and index exemptions, one service
account per function + IAM, topics, retention and dead-lettering, the event
catalog and heartbeat in Svix, the canary, the heartbeat Scheduler job,
log-based metrics, alert policies and a dashboard. Safe to re-run.

Target
  --project=ID              Google Cloud project (env GOOGLE_CLOUD_PROJECT,
                            else 'gcloud config get-value project'; required)
  --region=REGION           functions region [europe-west1] (env NOTIFIER_REGION)
  --function-name=NAME      event function name [notifier], 3..20 characters;
                            also names the functions NAME-notifications /
                            NAME-app-portal / NAME-canary, the service accounts
                            NAME-sa / -api-sa / -portal-sa / -canary-sa / -hb-sa,
                            the Scheduler job NAME-heartbeat and the log
                            metrics NAME_<outcome> (env NOTIFIER_FUNCTION_NAME)
  --topic=TOPIC             platform events topic [platform-events]; dead
                            letters go to TOPIC-dead-letter (env NOTIFIER_TOPIC)
  --secret=SECRET           Secret Manager secret holding the Svix API key
                            [svix-api-key] (env NOTIFIER_SECRET)
  --svix-server-url=URL     Svix server URL (env SVIX_SERVER_URL; default: none)
  --database=ID             Firestore database [(default)] (env FIRESTORE_DATABASE)
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
  --python=PATH             Python for the operator commands (catalog sync,
                            heartbeat setup) [.venv/bin/python, else python3]
                            (env NOTIFIER_PYTHON)

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
  --heartbeat-minutes=N     heartbeat every N minutes (a divisor of 60) [5]
  --heartbeat-absent-minutes=N
                            alert when no heartbeat arrived for N minutes [15]
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
  --cpu=N [1]  --memory=SIZE [512Mi]  --timeout=SECONDS [90]
  (env NOTIFIER_MAX_INSTANCES, _MIN_INSTANCES, _CONCURRENCY, _CPU, _MEMORY,
  _TIMEOUT_SECONDS; the canary runs at most 3 instances)

Runtime knobs (passed to the functions as environment variables)
  --retry-budget-seconds=N [30]   (env NOTIFIER_RETRY_BUDGET_SECONDS)
  --lease-seconds=N [120]         (env NOTIFIER_LEASE_SECONDS)
  --svix-timeout-seconds=N [10]   (env NOTIFIER_SVIX_TIMEOUT_SECONDS)
  --record-ttl-days=N [30]        (env NOTIFIER_RECORD_TTL_DAYS)
  --portal-expiry-seconds=N [3600] (env NOTIFIER_PORTAL_EXPIRY_SECONDS; 3600..604800)
  --log-level=LEVEL [INFO]        (env NOTIFIER_LOG_LEVEL)
  Constraints checked before anything runs: timeout > longest delivery
  (retry budget + 4 x Svix timeout + 1 s: a last call with the Svix SDK's 3
  retries); lease > timeout; timeout <= 540; concurrency > 1 needs cpu >= 1.

Pub/Sub delivery of the event function's trigger subscription
  --retention=DURATION              keep unacknowledged events [7d]; 10m..31d
                                    (dead letters are kept 31d)
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

die() {
  printf 'deploy.sh: error: %s\n' "$*" >&2
  exit 2
}

warn() {
  printf 'deploy.sh: warning: %s\n' "$*" >&2
}

# --------------------------------------------------------------------------
# Argument parsing: accepts --flag=value and --flag value.
# --------------------------------------------------------------------------
parse_args() {
  local flag value has_value
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
        --retention | --backlog-age-alert | --secret-version | --canary-secret | \
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
      --notifications-ingress) NOTIFICATIONS_INGRESS="$value" ;;
      --app-portal-ingress) APP_PORTAL_INGRESS="$value" ;;
      --heartbeat-minutes) HEARTBEAT_MINUTES="$value" ;;
      --heartbeat-absent-minutes) HEARTBEAT_ABSENT_MINUTES="$value" ;;
      --heartbeat-latency-alert-ms) HEARTBEAT_LATENCY_ALERT_MS="$value" ;;
      --python) PYTHON="$value" ;;
      --memory) MEMORY="$value" ;;
      --timeout) TIMEOUT_SECONDS="${value%s}" ;;
      --retry-budget-seconds) RETRY_BUDGET_SECONDS="$value" ;;
      --lease-seconds) LEASE_SECONDS="$value" ;;
      --svix-timeout-seconds) SVIX_TIMEOUT_SECONDS="$value" ;;
      --record-ttl-days) RECORD_TTL_DAYS="$value" ;;
      --portal-expiry-seconds) PORTAL_EXPIRY_SECONDS="$value" ;;
      --log-level) LOG_LEVEL="$value" ;;
      --max-delivery-attempts) MAX_DELIVERY_ATTEMPTS="$value" ;;
      --min-retry-delay) MIN_RETRY_DELAY_SECONDS="${value%s}" ;;
      --max-retry-delay) MAX_RETRY_DELAY_SECONDS="${value%s}" ;;
    esac
  done
}

# --------------------------------------------------------------------------
# Validation: fail before touching anything.
# --------------------------------------------------------------------------
require_match() { # NAME VALUE REGEX HINT
  [[ "$2" =~ $3 ]] || die "invalid $1: '$2' ($4)"
}

require_int() { # NAME VALUE MIN MAX
  [[ "$2" =~ ^(0|[1-9][0-9]{0,8})$ ]] || die "invalid $1: '$2' (expected a whole number)"
  (("$2" >= $3 && "$2" <= $4)) || die "invalid $1: $2 (expected $3..$4)"
}

# derive_capacity: the event function's sizing. Without --target-rate it is
# the common sizing; with it, the capacity model (see the constants above and
# SCALING.md) fills in what was not chosen explicitly.
derive_capacity() {
  EVENT_CONCURRENCY="$CONCURRENCY" EVENT_CPU="$CPU"
  EVENT_MAX_INSTANCES="$MAX_INSTANCES" EVENT_MIN_INSTANCES="$MIN_INSTANCES"
  [[ -n "$TARGET_RATE" ]] || return 0
  local cpu_whole=1
  if [[ "$EXPLICIT_SIZING" == *" CPU "* && "$CPU" =~ ^([1-9][0-9]*)$ ]]; then
    cpu_whole="$CPU"
  fi
  # events/s one instance sustains at the autoscaler's CPU target
  MODEL_RATE_PER_INSTANCE=$((MODEL_CPU_TARGET_PERCENT * 10 * cpu_whole * 100 / MODEL_CPU_MS_X100))
  ((MODEL_RATE_PER_INSTANCE >= 1)) || MODEL_RATE_PER_INSTANCE=1
  MODEL_INSTANCES=$(((TARGET_RATE + MODEL_RATE_PER_INSTANCE - 1) / MODEL_RATE_PER_INSTANCE))
  local concurrency=$(((MODEL_RATE_PER_INSTANCE * EVENT_LATENCY_MS + 999) / 1000))
  ((concurrency >= 2)) || concurrency=2
  ((concurrency <= 1000)) || concurrency=1000
  local max=$((MODEL_INSTANCES * MODEL_HEADROOM)) min=$(((MODEL_INSTANCES + 3) / 4))
  ((max >= 2)) || max=2
  ((max <= 1000)) || max=1000
  [[ "$EXPLICIT_SIZING" == *" CONCURRENCY "* ]] || EVENT_CONCURRENCY="$concurrency"
  [[ "$EXPLICIT_SIZING" == *" CPU "* ]] || EVENT_CPU="$cpu_whole"
  [[ "$EXPLICIT_SIZING" == *" MAX_INSTANCES "* ]] || EVENT_MAX_INSTANCES="$max"
  [[ "$EXPLICIT_SIZING" == *" MIN_INSTANCES "* ]] || EVENT_MIN_INSTANCES="$min"
  if ((EVENT_MIN_INSTANCES > EVENT_MAX_INSTANCES)); then
    EVENT_MIN_INSTANCES="$EVENT_MAX_INSTANCES"
  fi
}

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
  if [[ -n "$TARGET_RATE" ]]; then
    require_int target-rate "$TARGET_RATE" 1 100000
  fi
  require_match cpu "$CPU" '^[0-9]+(\.[0-9]+)?$' 'a number of vCPUs, e.g. 1 or 0.5'
  require_match memory "$MEMORY" '^[0-9]+(Mi|Gi|M|G)$' 'e.g. 512Mi or 1Gi'
  require_int timeout "$TIMEOUT_SECONDS" 1 540
  require_int retry-budget-seconds "$RETRY_BUDGET_SECONDS" 0 3600
  require_int lease-seconds "$LEASE_SECONDS" 1 86400
  require_int svix-timeout-seconds "$SVIX_TIMEOUT_SECONDS" 1 3600
  require_int record-ttl-days "$RECORD_TTL_DAYS" 1 3650
  require_int portal-expiry-seconds "$PORTAL_EXPIRY_SECONDS" 3600 604800
  require_match log-level "$LOG_LEVEL" '^(DEBUG|INFO|WARNING|ERROR)$' \
    'DEBUG, INFO, WARNING or ERROR'
  require_int max-delivery-attempts "$MAX_DELIVERY_ATTEMPTS" 5 100
  require_match secret "$CANARY_SECRET" '^[A-Za-z0-9_-]{1,255}$' 'a Secret Manager secret ID'
  if [[ -n "$SECRET_VERSION" ]]; then
    require_int secret-version "$SECRET_VERSION" 1 999999999
  fi
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
  [[ "$RETENTION" =~ ^([1-9][0-9]{0,6})([smhd])$ ]] ||
    die "invalid retention: '$RETENTION' (e.g. 7d, 36h; 10m..31d)"
  local retention_seconds
  case "${BASH_REMATCH[2]}" in
    s) retention_seconds=$((BASH_REMATCH[1])) ;;
    m) retention_seconds=$((BASH_REMATCH[1] * 60)) ;;
    h) retention_seconds=$((BASH_REMATCH[1] * 3600)) ;;
    *) retention_seconds=$((BASH_REMATCH[1] * 86400)) ;;
  esac
  ((retention_seconds >= 600 && retention_seconds <= 2678400)) ||
    die "invalid retention: $RETENTION (expected 10m..31d)"
  require_int event-latency-ms "$EVENT_LATENCY_MS" 1 60000
  derive_capacity
  require_int min-retry-delay "$MIN_RETRY_DELAY_SECONDS" 0 600
  require_int max-retry-delay "$MAX_RETRY_DELAY_SECONDS" "$MIN_RETRY_DELAY_SECONDS" 600

  # The invariants the function's correctness relies on (see the defaults).
  # Longest delivery as computed by notifier/config.py: the retry budget,
  # then a last Svix call of 1 + 3 SDK retries (0.35 s backoff, rounded up).
  local longest=$((RETRY_BUDGET_SECONDS + SVIX_ATTEMPTS * SVIX_TIMEOUT_SECONDS + 1))
  ((TIMEOUT_SECONDS > longest)) ||
    die "timeout ($TIMEOUT_SECONDS s) must exceed the longest delivery ($longest s: retry budget $RETRY_BUDGET_SECONDS s + $SVIX_ATTEMPTS x Svix timeout $SVIX_TIMEOUT_SECONDS s + 1 s)"
  ((LEASE_SECONDS > TIMEOUT_SECONDS)) ||
    die "lease ($LEASE_SECONDS s) must exceed the function timeout ($TIMEOUT_SECONDS s)"
  if ((CONCURRENCY > 1)) && [[ "$CPU" =~ ^0*(\.[0-9]*)?$ ]]; then
    die "concurrency $CONCURRENCY needs --cpu >= 1 (got $CPU)"
  fi
  if ((EVENT_CONCURRENCY > 1)) && [[ "$EVENT_CPU" =~ ^0*(\.[0-9]*)?$ ]]; then
    die "concurrency $EVENT_CONCURRENCY needs --cpu >= 1 (got $EVENT_CPU)"
  fi
  ((EVENT_MIN_INSTANCES <= EVENT_MAX_INSTANCES)) ||
    die "min-instances $EVENT_MIN_INSTANCES exceeds max-instances $EVENT_MAX_INSTANCES for the event function"
  [[ "$DRY_RUN" =~ ^[01]$ ]] || die "NOTIFIER_DRY_RUN must be 0 or 1"
  if ((ASSUME_EXISTING == 1 && DRY_RUN == 0)); then
    die "--assume-existing only makes sense with --dry-run"
  fi
}

# --------------------------------------------------------------------------
# Command execution. Every command is traced as "+ <shell-quoted command>"
# (stdout in dry-run, stderr otherwise) on file descriptor 3, so tracing
# also works inside $(...).
# --------------------------------------------------------------------------
# quote_word WORD: sets REPLY to WORD, single-quoted unless it is plainly safe.
quote_word() {
  local safe='^[A-Za-z0-9_@%+=:,./-]+$'
  if [[ "$1" =~ $safe ]]; then
    REPLY="$1"
  else
    REPLY="'${1//\'/\'\\\'\'}'"
  fi
}

# quote ARG...: shell-quote a command line; "--flag=value" keeps the flag
# bare and quotes only the value, e.g. --format='value(name)'.
quote() {
  local arg out=()
  local flag_re='^(--[A-Za-z0-9-]+=)(.*)$'
  for arg in "$@"; do
    if [[ "$arg" =~ $flag_re ]]; then
      local flag="${BASH_REMATCH[1]}"
      quote_word "${BASH_REMATCH[2]}"
      out+=("$flag$REPLY")
    else
      quote_word "$arg"
      out+=("$REPLY")
    fi
  done
  printf '%s' "${out[*]}"
}

trace() { # [-n NOTE] CMD...
  local note=""
  if [[ "$1" == "-n" ]]; then
    note="  # $2"
    shift 2
  fi
  printf '+ %s%s\n' "$(quote "$@")" "$note" >&3
}

section() {
  printf '\n# --- %s\n' "$*" >&3
}

# run CMD...: a command that changes something.
run() {
  trace "$@"
  ((DRY_RUN == 1)) || "$@"
}

# run_retry CMD...: like run, retried a few times. IAM bindings that name a
# service account created seconds ago can fail until it has propagated.
run_retry() {
  trace "$@"
  ((DRY_RUN == 1)) && return 0
  local attempt
  for attempt in 1 2 3 4 5; do
    "$@" && return 0
    ((attempt < 5)) || break
    warn "attempt $attempt failed; retrying in $((attempt * 5)) s"
    sleep $((attempt * 5))
  done
  die "command failed: $(quote "$@")"
}

# exists CMD...: true if the (read-only) command succeeds. In dry-run it is
# only printed and answers "no" (or "yes" with --assume-existing).
exists() {
  trace -n "exists?" "$@"
  if ((DRY_RUN == 1)); then
    ((ASSUME_EXISTING == 1))
    return
  fi
  "$@" >/dev/null 2>&1
}

# capture PLACEHOLDER CMD...: print the (read-only) command's stdout. In
# dry-run the command is only printed and PLACEHOLDER is returned instead.
capture() {
  local placeholder="$1"
  shift
  trace "$@"
  if ((DRY_RUN == 1)); then
    printf '%s\n' "$placeholder"
    return 0
  fi
  "$@"
}

# if_existing VALUE: VALUE with --assume-existing, else nothing (placeholder
# for lookups that find nothing on a fresh project).
if_existing() {
  if ((ASSUME_EXISTING == 1)); then
    printf '%s' "$1"
  fi
}

# Minimal JSON string encoding for the generated alert policy.
json_str() {
  local s="$1"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\n'/\\n}"
  printf '"%s"' "$s"
}

# --------------------------------------------------------------------------
# Steps
# --------------------------------------------------------------------------
enable_apis() {
  section "APIs"
  run gcloud services enable \
    cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com \
    pubsub.googleapis.com firestore.googleapis.com secretmanager.googleapis.com \
    logging.googleapis.com monitoring.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com iam.googleapis.com cloudscheduler.googleapis.com \
    --project="$PROJECT"
}

resolve_project_number() {
  section "Project number and Pub/Sub service agent"
  PROJECT_NUMBER="$(capture PROJECT_NUMBER gcloud projects describe "$PROJECT" \
    --format='value(projectNumber)')"
  [[ -n "$PROJECT_NUMBER" ]] || die "could not read the number of project $PROJECT"
  PUBSUB_AGENT="service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"
  # The Pub/Sub service agent forwards dead letters and signs push requests;
  # make sure it exists before granting it roles (no-op if it does).
  run gcloud beta services identity create --service=pubsub.googleapis.com \
    --project="$PROJECT" --format=none
}

ensure_firestore() {
  section "Firestore database $FIRESTORE_DATABASE"
  if ! exists gcloud firestore databases describe --database="$FIRESTORE_DATABASE" \
    --project="$PROJECT" --format=none; then
    # The location of a Firestore database can never be changed.
    run gcloud firestore databases create --database="$FIRESTORE_DATABASE" \
      --location="$FIRESTORE_LOCATION" --type=firestore-native --delete-protection \
      --project="$PROJECT"
  fi
}

# newest_enabled_version SECRET: the newest enabled version number of SECRET
# ("" if it has none). In dry-run shown as 1 (a number: gcloud's
# --set-secrets accepts only numbers or "latest").
newest_enabled_version() {
  capture "$2" gcloud secrets versions list "$1" --project="$PROJECT" \
    --filter=state=enabled --sort-by=~createTime --limit=1 \
    --format='value(name.basename())'
}

check_secret() {
  section "Svix API key secret (checked; its version pinned)"
  trace -n "must exist" gcloud secrets describe "$SECRET" --project="$PROJECT" --format=none
  if ((DRY_RUN == 0)) &&
    ! gcloud secrets describe "$SECRET" --project="$PROJECT" --format=none >/dev/null 2>&1; then
    die "secret '$SECRET' not found (or not readable) in project $PROJECT. Create it once with:
  printf %s \"\$TOKEN\" | gcloud secrets create $SECRET --data-file=- --project=$PROJECT
(then re-run ./deploy.sh; the token is never stored in the function's configuration)"
  fi
  # Google advises against "latest" for secrets in environment variables: a
  # new version would reach instances at random as they start. Every
  # function is pinned to one version, rolled on purpose by re-running this.
  if [[ -z "$SECRET_VERSION" ]]; then
    SECRET_VERSION="$(newest_enabled_version "$SECRET" 1)"
    [[ -n "$SECRET_VERSION" ]] || die "secret '$SECRET' has no enabled version; add one with:
  printf %s \"\$TOKEN\" | gcloud secrets versions add $SECRET --data-file=- --project=$PROJECT"
  fi
  require_int "version of $SECRET" "$SECRET_VERSION" 1 999999999
}

# ensure_sa ID DESCRIPTION: create service account ID unless it exists.
ensure_sa() {
  local email="$1@${PROJECT}.iam.gserviceaccount.com"
  if ! exists gcloud iam service-accounts describe "$email" --project="$PROJECT" --format=none; then
    run gcloud iam service-accounts create "$1" --project="$PROJECT" --display-name="$2"
  fi
}

# grant_firestore SA_EMAIL ROLE: ROLE on the project, conditioned to the
# notifier's database only (IAM condition on resource.name).
grant_firestore() {
  local db_resource="projects/$PROJECT/databases/$FIRESTORE_DATABASE"
  run_retry gcloud projects add-iam-policy-binding "$PROJECT" \
    --member="serviceAccount:$1" --role="$2" \
    --condition="expression=resource.name==\"$db_resource\",title=notifier-database-only,description=Only the Firestore database of the notifier ($FIRESTORE_DATABASE)" \
    --format=none
}

grant_secret() { # SECRET SA_EMAIL
  run_retry gcloud secrets add-iam-policy-binding "$1" --project="$PROJECT" \
    --member="serviceAccount:$2" --role=roles/secretmanager.secretAccessor \
    --condition=None --format=none
}

ensure_service_accounts() {
  section "Service accounts: one per function, each with only what it uses"
  ensure_sa "$SA_ID" "notifier on_event ($FUNCTION_NAME)"
  ensure_sa "$API_SA_ID" "notifier notifications ($FUNCTION_NAME-notifications)"
  ensure_sa "$PORTAL_SA_ID" "notifier app_portal ($FUNCTION_NAME-app-portal)"
  ensure_sa "$CANARY_SA_ID" "notifier canary ($FUNCTION_NAME-canary)"
  ensure_sa "$HEARTBEAT_SA_ID" "notifier heartbeat publisher ($HEARTBEAT_JOB)"
  # Firestore: datastore.user (read/write documents, nothing administrative)
  # for the functions that write records; the App Portal link only reads
  # applications/, so datastore.viewer. Both conditioned to the one database.
  grant_firestore "$SA_EMAIL" roles/datastore.user
  grant_firestore "$API_SA_EMAIL" roles/datastore.user
  grant_firestore "$PORTAL_SA_EMAIL" roles/datastore.viewer
  grant_firestore "$CANARY_SA_EMAIL" roles/datastore.user
  # Earlier versions of this script granted datastore.user project-wide,
  # unconditioned: remove that binding if it is still there.
  local legacy
  legacy="$(capture "" gcloud projects get-iam-policy "$PROJECT" \
    --flatten='bindings[].members' \
    --filter="bindings.role=roles/datastore.user AND bindings.members=serviceAccount:$SA_EMAIL AND -bindings.condition:*" \
    --format='value(bindings.members)')"
  if [[ -n "$legacy" ]]; then
    run_retry gcloud projects remove-iam-policy-binding "$PROJECT" \
      --member="serviceAccount:$SA_EMAIL" --role=roles/datastore.user --condition=None --format=none
  fi
  # The Svix token: only the functions that call Svix. The canary never
  # calls Svix; it reads its own signing secret (granted with the secret).
  grant_secret "$SECRET" "$SA_EMAIL"
  grant_secret "$SECRET" "$API_SA_EMAIL"
  grant_secret "$SECRET" "$PORTAL_SA_EMAIL"
  # Logs need no role: Cloud Run collects stdout itself.
}

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

# deploy_flags SA CONCURRENCY CPU MAX_INSTANCES MIN_INSTANCES SECRETS: sets
# DEPLOY_FLAGS for one function. --set-env-vars / --set-secrets replace the
# whole set on every deploy, so a re-run converges to exactly this.
deploy_flags() {
  local env_vars=(
    # Newer runtimes (python311) do not set GOOGLE_CLOUD_PROJECT themselves.
    "GOOGLE_CLOUD_PROJECT=$PROJECT"
    "FIRESTORE_DATABASE=$FIRESTORE_DATABASE"
    "NOTIFIER_RETRY_BUDGET_SECONDS=$RETRY_BUDGET_SECONDS"
    "NOTIFIER_LEASE_SECONDS=$LEASE_SECONDS"
    "NOTIFIER_SVIX_TIMEOUT_SECONDS=$SVIX_TIMEOUT_SECONDS"
    "NOTIFIER_RECORD_TTL_DAYS=$RECORD_TTL_DAYS"
    "NOTIFIER_PORTAL_EXPIRY_SECONDS=$PORTAL_EXPIRY_SECONDS"
    "NOTIFIER_LOG_LEVEL=$LOG_LEVEL"
    # The Functions Framework serves requests on (cpu count x 4) gunicorn
    # threads by default; match it to the per-instance concurrency.
    "THREADS=$2"
  )
  if [[ -n "$SVIX_SERVER_URL" ]]; then
    env_vars+=("SVIX_SERVER_URL=$SVIX_SERVER_URL")
  fi
  local joined
  joined="$(
    IFS=,
    printf '%s' "${env_vars[*]}"
  )"
  DEPLOY_FLAGS=(
    --gen2 --runtime=python311 --region="$REGION" --project="$PROJECT" --source=.
    --service-account="$1"
    # Secrets come from Secret Manager by pinned version, never from --set-env-vars.
    --set-secrets="$6"
    --set-env-vars="$joined"
    --max-instances="$4" --min-instances="$5"
    --concurrency="$2" --cpu="$3" --memory="$MEMORY"
    --timeout="${TIMEOUT_SECONDS}s"
  )
  if [[ -n "$BUILD_SERVICE_ACCOUNT" ]]; then
    DEPLOY_FLAGS+=(--build-service-account="projects/$PROJECT/serviceAccounts/$BUILD_SERVICE_ACCOUNT")
  fi
}

check_source() {
  ((DRY_RUN == 1)) && return 0
  local f
  for f in main.py requirements.txt; do
    [[ -f "$SCRIPT_DIR/$f" ]] || die "$SCRIPT_DIR/$f is missing: run deploy.sh from a complete checkout"
  done
}

# converge_invokers FUNCTION MEMBER...: roles/run.invoker on FUNCTION's Cloud
# Run service for exactly these members: grants the missing, removes the
# ones no longer asked for (read from the service's current IAM policy).
converge_invokers() {
  local name="$1" member current wanted keep
  shift
  for member in "$@"; do
    run_retry gcloud functions add-invoker-policy-binding "$name" \
      --region="$REGION" --project="$PROJECT" --member="$member" --format=none
  done
  current="$(capture "$(if_existing "$DROPPED_INVOKER_PLACEHOLDER")" \
    gcloud run services get-iam-policy "$name" --region="$REGION" --project="$PROJECT" \
    --flatten='bindings[].members' --filter='bindings.role=roles/run.invoker' \
    --format='value(bindings.members)')"
  while IFS= read -r member; do
    [[ -n "$member" ]] || continue
    keep=0
    for wanted in "$@"; do
      [[ "${member,,}" == "${wanted,,}" ]] && keep=1
    done
    if ((keep == 0)); then
      run_retry gcloud functions remove-invoker-policy-binding "$name" \
        --region="$REGION" --project="$PROJECT" --member="$member" --format=none
    fi
  done <<<"$current"
}

deploy_event_function() {
  section "Event function $FUNCTION_NAME (entry point on_event)"
  if [[ -n "$TARGET_RATE" ]]; then
    printf '# capacity model (SCALING.md) for --target-rate=%s events/s: %s events/s per instance at %s ms CPU and %s ms per event -> %s instances needed; max %s, min %s, concurrency %s, cpu %s\n' \
      "$TARGET_RATE" "$MODEL_RATE_PER_INSTANCE" "$MODEL_CPU_MS" "$EVENT_LATENCY_MS" \
      "$MODEL_INSTANCES" "$EVENT_MAX_INSTANCES" "$EVENT_MIN_INSTANCES" "$EVENT_CONCURRENCY" \
      "$EVENT_CPU" >&3
  fi
  deploy_flags "$SA_EMAIL" "$EVENT_CONCURRENCY" "$EVENT_CPU" "$EVENT_MAX_INSTANCES" \
    "$EVENT_MIN_INSTANCES" "SVIX_API_KEY=${SECRET}:${SECRET_VERSION}"
  # --retry: a failed invocation is redelivered by Pub/Sub (backoff and
  # dead-lettering are configured on the trigger subscription below).
  # --trigger-service-account: the identity Eventarc/Pub/Sub uses to invoke
  # the function: the function's own account, which needs only
  # roles/run.invoker on this one service (eventarc.eventReceiver is not
  # needed for Pub/Sub triggers).
  # --ingress-settings=internal-only: Eventarc and Pub/Sub push from the same
  # project count as internal, so nothing else can even reach the endpoint.
  run gcloud functions deploy "$FUNCTION_NAME" "${DEPLOY_FLAGS[@]}" \
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

deploy_http_functions() {
  section "HTTP functions (authenticated callers only)"
  # --no-allow-unauthenticated: callers need roles/run.invoker on the
  # function: exactly the --invoker members (project owners/editors have it
  # implicitly). Members granted by an earlier run and no longer listed are
  # removed. No runtime account gets an invoker role on these.
  deploy_private_http "$FUNCTION_NAME-notifications" notifications "$API_SA_EMAIL" \
    "$NOTIFICATIONS_INGRESS"
  deploy_private_http "$FUNCTION_NAME-app-portal" app_portal "$PORTAL_SA_EMAIL" \
    "$APP_PORTAL_INGRESS"
}

# deploy_private_http SERVICE ENTRY_POINT SERVICE_ACCOUNT INGRESS: one
# IAM-protected HTTP function with the Svix token, invokable by exactly the
# --invoker members.
deploy_private_http() {
  deploy_flags "$3" "$CONCURRENCY" "$CPU" "$MAX_INSTANCES" "$MIN_INSTANCES" \
    "SVIX_API_KEY=${SECRET}:${SECRET_VERSION}"
  run gcloud functions deploy "$1" "${DEPLOY_FLAGS[@]}" \
    --entry-point="$2" --trigger-http --no-allow-unauthenticated \
    --ingress-settings="$4"
  converge_invokers "$1" "${INVOKERS[@]}"
}

# Every field of the records except the three the operator tools filter by
# (status, project, event_type; equality only, served by their single-field
# indexes, see tests/indexes.py). An index costs a write per field, and one on
# values that only grow (timestamps, event ids, Pub/Sub and Svix message ids)
# caps the collection at 500 writes/s (Firestore's soft limit). Records are
# looked up by their document key (notifier/store.py document_key), never by
# event_id. heartbeats keep arrived_at: `latest` orders by it (a write per 5 min).
readonly NOTIFICATIONS_UNINDEXED=(
  created_at updated_at expires_at lease_expires_at sent_at failed_at last_error_at
  reopened_at event_time svix_first_call_at last_delivery_at svix_message_id payload
  event_id pubsub_message_id attempts replays svix_status last_error
)
readonly REJECTED_UNINDEXED=(
  created_at updated_at expires_at rejected_at last_delivery_at publish_time raw
  pubsub_message_id reason detail errors subscription raw_size raw_truncated deliveries
)
# heartbeats.arrived_at keeps its index: `status` reads the latest heartbeat by it.
readonly HEARTBEATS_UNINDEXED=(expires_at published_at)

# exempt_from_indexing COLLECTION FIELD...: disable the single-field indexes of
# each FIELD unless already disabled (describe first: re-runs change nothing).
exempt_from_indexing() {
  local collection="$1" field indexes placeholder=ASCENDING
  ((ASSUME_EXISTING == 1)) && placeholder="" # a re-run finds them exempt
  shift
  for field in "$@"; do
    indexes="$(capture "$placeholder" \
      gcloud firestore indexes fields describe "$field" --collection-group="$collection" \
      --database="$FIRESTORE_DATABASE" --project="$PROJECT" \
      --format='value(indexConfig.indexes)')" || indexes="inherited"
    [[ -z "$indexes" ]] && continue # already exempt
    if [[ "$field" == expires_at ]]; then
      # Synchronous: the TTL policy on the same field follows, and Firestore
      # runs one operation per field at a time.
      run gcloud firestore indexes fields update "$field" --collection-group="$collection" \
        --database="$FIRESTORE_DATABASE" --disable-indexes --project="$PROJECT"
    else
      run gcloud firestore indexes fields update "$field" --collection-group="$collection" \
        --database="$FIRESTORE_DATABASE" --disable-indexes --async --project="$PROJECT"
    fi
  done
}

ensure_index_exemptions() {
  section "Firestore single-field index exemptions (all but status, project, event_type)"
  exempt_from_indexing notifications "${NOTIFICATIONS_UNINDEXED[@]}"
  exempt_from_indexing rejected "${REJECTED_UNINDEXED[@]}"
  exempt_from_indexing heartbeats "${HEARTBEATS_UNINDEXED[@]}"
}

ensure_ttl_policies() {
  section "Firestore TTL policies (field expires_at)"
  # Firestore deletes documents some time (typically within 24 h) after their
  # expires_at; the functions set it NOTIFIER_RECORD_TTL_DAYS ahead.
  local collection state
  for collection in notifications rejected heartbeats; do
    state="$(capture "$(if_existing ACTIVE)" \
      gcloud firestore indexes fields describe expires_at --collection-group="$collection" \
      --database="$FIRESTORE_DATABASE" --project="$PROJECT" \
      --format='value(ttlConfig.state)')" || state=""
    case "$state" in
      ACTIVE | CREATING) ;; # already enabled (or being enabled)
      *)
        # --async: enabling TTL is a long-running operation; no need to wait.
        run gcloud firestore fields ttls update expires_at --collection-group="$collection" \
          --database="$FIRESTORE_DATABASE" --enable-ttl --async --project="$PROJECT"
        ;;
    esac
  done
}

# --------------------------------------------------------------------------
# Svix: the catalog and the heartbeat endpoint (operator commands), canary
# --------------------------------------------------------------------------
# load_svix_token: the operator commands talk to Svix with the deployed
# token: SVIX_API_KEY from this shell if set, else the pinned version read
# into memory (never printed, never written anywhere).
load_svix_token() {
  if [[ -n "${SVIX_API_KEY:-}" ]]; then
    SVIX_TOKEN="$SVIX_API_KEY"
    printf '# operator commands use SVIX_API_KEY from the environment\n' >&3
    return 0
  fi
  trace -n "into memory for the operator commands, never printed" \
    gcloud secrets versions access "$SECRET_VERSION" --secret="$SECRET" --project="$PROJECT"
  if ((DRY_RUN == 0)); then
    SVIX_TOKEN="$(gcloud secrets versions access "$SECRET_VERSION" --secret="$SECRET" \
      --project="$PROJECT")" || die "could not read version $SECRET_VERSION of secret $SECRET"
  fi
}

# operator CMD...: run one of the project's operator commands against Svix,
# with the token in its environment only.
operator() {
  trace "$@"
  ((DRY_RUN == 1)) && return 0
  # Exported in a subshell, not passed as arguments: nothing else on this
  # machine can read it from a command line.
  (
    cd "$SCRIPT_DIR"
    export SVIX_API_KEY="$SVIX_TOKEN"
    if [[ -n "$SVIX_SERVER_URL" ]]; then
      export SVIX_SERVER_URL
    fi
    "$@"
  ) || die "operator command failed: $(quote "$@")"
}

sync_catalog() {
  section "Event catalog -> Svix event types"
  # Creates or updates every catalogued event type; never archives (no --prune).
  operator "$PYTHON" -m notifier catalog sync
}

ensure_canary_secret() {
  section "Heartbeat: Svix app and endpoint, canary signing secret $CANARY_SECRET"
  if ! exists gcloud secrets describe "$CANARY_SECRET" --project="$PROJECT" --format=none; then
    run gcloud secrets create "$CANARY_SECRET" --project="$PROJECT" --replication-policy=automatic
  fi
  grant_secret "$CANARY_SECRET" "$CANARY_SA_EMAIL"
  # The canary's URL is known before it is deployed (the cloudfunctions.net
  # address of a function), so Svix's endpoint can point at it first.
  local secret_file current current_value="" new_value
  if ((DRY_RUN == 1)); then
    secret_file=CANARY_SECRET_FILE
  else
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/notifier-deploy.XXXXXX")"
    chmod 700 "$WORK_DIR"
    trap 'rm -rf "$WORK_DIR"' EXIT # also when a later step fails
    secret_file="$WORK_DIR/canary-secret"
  fi
  operator "$PYTHON" -m notifier heartbeat setup --canary-url="$CANARY_URL" \
    --secret-file="$secret_file"
  # A new secret version only when the endpoint's secret differs from the
  # current one: a re-run leaves the canary's pinned version as it is.
  current="$(newest_enabled_version "$CANARY_SECRET" "$(if_existing 1)")"
  if [[ -n "$current" ]]; then
    trace -n "compared in memory, never printed" gcloud secrets versions access "$current" \
      --secret="$CANARY_SECRET" --project="$PROJECT"
    if ((DRY_RUN == 0)); then
      current_value="$(gcloud secrets versions access "$current" --secret="$CANARY_SECRET" \
        --project="$PROJECT")" || die "could not read version $current of $CANARY_SECRET"
    fi
  fi
  if ((DRY_RUN == 1)); then
    new_value="same" # a dry run assumes an existing version is already right
    current_value="same"
  else
    [[ -s "$secret_file" ]] || die "heartbeat setup wrote no signing secret to $secret_file"
    new_value="$(<"$secret_file")"
  fi
  if [[ -z "$current" || "$new_value" != "$current_value" ]]; then
    current="$(capture 1 gcloud secrets versions add "$CANARY_SECRET" --project="$PROJECT" \
      --data-file="$secret_file" --format='value(name.basename())')"
  fi
  if ((DRY_RUN == 0)); then
    rm -rf "$WORK_DIR"
  fi
  CANARY_SECRET_VERSION="$current"
  require_int "version of $CANARY_SECRET" "$CANARY_SECRET_VERSION" 1 999999999
}

deploy_canary() {
  section "Canary function $FUNCTION_NAME-canary (public; trusts only Svix signatures)"
  # Svix calls it without Google credentials: --allow-unauthenticated and all
  # ingress. It needs no Svix token, only its endpoint's signing secret, and
  # a few instances at most (one heartbeat every few minutes).
  deploy_flags "$CANARY_SA_EMAIL" "$CONCURRENCY" "$CPU" "$CANARY_MAX_INSTANCES" 0 \
    "NOTIFIER_CANARY_SECRET=${CANARY_SECRET}:${CANARY_SECRET_VERSION}"
  run gcloud functions deploy "$FUNCTION_NAME-canary" "${DEPLOY_FLAGS[@]}" \
    --entry-point=canary --trigger-http --allow-unauthenticated --ingress-settings=all
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
  # its own event id (hb-<messageId>).
  local body='{"messages":[{"data":"eyJvYmplY3QiOiJoZWFydGJlYXQifQ==","attributes":{"notifier":"heartbeat"}}]}'
  local scope=https://www.googleapis.com/auth/pubsub
  if exists gcloud scheduler jobs describe "$HEARTBEAT_JOB" --location="$REGION" \
    --project="$PROJECT" --format=none; then
    run gcloud scheduler jobs update http "$HEARTBEAT_JOB" --location="$REGION" \
      --project="$PROJECT" --schedule="$schedule" --time-zone=Etc/UTC --uri="$uri" \
      --http-method=POST --update-headers=Content-Type=application/json \
      --message-body="$body" --oauth-service-account-email="$HEARTBEAT_SA_EMAIL" \
      --oauth-token-scope="$scope" --attempt-deadline=60s
  else
    run gcloud scheduler jobs create http "$HEARTBEAT_JOB" --location="$REGION" \
      --project="$PROJECT" --schedule="$schedule" --time-zone=Etc/UTC --uri="$uri" \
      --http-method=POST --headers=Content-Type=application/json \
      --message-body="$body" --oauth-service-account-email="$HEARTBEAT_SA_EMAIL" \
      --oauth-token-scope="$scope" --attempt-deadline=60s \
      --description="notifier heartbeat: proves the path platform topic -> Svix -> canary"
  fi
}

# --------------------------------------------------------------------------
# Observability
# --------------------------------------------------------------------------
# upsert_counter_metric NAME DESCRIPTION FILTER
upsert_counter_metric() {
  if exists gcloud logging metrics describe "$1" --project="$PROJECT" --format=none; then
    run gcloud logging metrics update "$1" --project="$PROJECT" \
      --description="$2" --log-filter="$3"
  else
    run gcloud logging metrics create "$1" --project="$PROJECT" \
      --description="$2" --log-filter="$3"
  fi
}

ensure_log_metrics() {
  section "Log-based metrics"
  # The on_event and notifications functions both log one JSON line per
  # outcome; Cloud Run puts it under jsonPayload.
  local filter_base outcome canary_filter
  filter_base="resource.type=\"cloud_run_revision\" AND (resource.labels.service_name=\"$FUNCTION_NAME\" OR resource.labels.service_name=\"$FUNCTION_NAME-notifications\")"
  for outcome in sent duplicate rejected failed retried; do
    upsert_counter_metric "${METRIC_PREFIX}_${outcome}" \
      "notifier ($FUNCTION_NAME): events with outcome=$outcome" \
      "$filter_base AND jsonPayload.outcome=\"$outcome\""
  done
  # Events sent although off the catalog (unknown type or drifted data):
  # their outcome lines, one per event (the WARNING, once per type and
  # cause, carries catalog_drift too but no outcome).
  upsert_counter_metric "${METRIC_PREFIX}_catalog_drift" \
    "notifier ($FUNCTION_NAME): events off the catalog (jsonPayload.catalog_drift)" \
    "$filter_base AND jsonPayload.catalog_drift:* AND jsonPayload.outcome:*"
  canary_filter="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$FUNCTION_NAME-canary\" AND jsonPayload.message=\"heartbeat arrived\""
  upsert_counter_metric "${METRIC_PREFIX}_heartbeat" \
    "notifier ($FUNCTION_NAME): verified heartbeats that reached the canary" "$canary_filter"
  # The latency distribution needs a value extractor and buckets, which only
  # a configuration file can carry (written to .run/deploy/, shown below).
  local name="${METRIC_PREFIX}_heartbeat_latency" config file
  config="{\"name\":$(json_str "$name"),\"description\":$(json_str "notifier ($FUNCTION_NAME): heartbeat latency from publication to the canary, ms")"
  config+=",\"filter\":$(json_str "$canary_filter"),\"valueExtractor\":\"EXTRACT(jsonPayload.heartbeat_latency_ms)\""
  config+=",\"metricDescriptor\":{\"metricKind\":\"DELTA\",\"valueType\":\"DISTRIBUTION\",\"unit\":\"ms\"}"
  config+=",\"bucketOptions\":{\"exponentialBuckets\":{\"numFiniteBuckets\":40,\"growthFactor\":1.4,\"scale\":10}}}"
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

resolve_alert_channels() {
  ALERT_CHANNELS=("${NOTIFICATION_CHANNELS[@]}")
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
    ALERT_CHANNELS+=("$channel")
  fi
  if ((${#ALERT_CHANNELS[@]} == 0)); then
    warn "no --alert-email/--notification-channel: the alert policies will open incidents but notify nobody"
  fi
}

# upsert_policy DISPLAY_NAME DOCUMENTATION CONDITIONS_JSON: an alert policy,
# looked up by display name so that a re-run replaces it in place.
upsert_policy() {
  local channels_json="" channel policy existing
  for channel in "${ALERT_CHANNELS[@]}"; do
    channels_json+="${channels_json:+,}$(json_str "$channel")"
  done
  policy="{\"displayName\":$(json_str "$1")"
  policy+=",\"documentation\":{\"content\":$(json_str "$2"),\"mimeType\":\"text/markdown\"}"
  policy+=",\"combiner\":\"OR\",\"conditions\":[$3]"
  policy+=",\"alertStrategy\":{\"autoClose\":\"86400s\"}"
  policy+=",\"notificationChannels\":[${channels_json}],\"enabled\":true}"
  existing="$(capture "$(if_existing "projects/$PROJECT/alertPolicies/${4}_POLICY_ID")" \
    gcloud alpha monitoring policies list --project="$PROJECT" \
    --filter="displayName=\"$1\"" --format='value(name)')"
  if [[ "$existing" == *$'\n'* ]]; then
    warn "several alert policies are named '$1'; updating the first"
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

# threshold_condition NAME FILTER ALIGNER PERIOD THRESHOLD DURATION [REDUCER]
threshold_condition() {
  local c
  c="{\"displayName\":$(json_str "$1"),\"conditionThreshold\":{\"filter\":$(json_str "$2")"
  c+=",\"aggregations\":[{\"alignmentPeriod\":\"$4\",\"perSeriesAligner\":\"$3\"${7:+,\"crossSeriesReducer\":\"$7\"}}]"
  c+=",\"comparison\":\"COMPARISON_GT\",\"thresholdValue\":$5,\"duration\":\"$6\",\"trigger\":{\"count\":1}}}"
  printf '%s' "$c"
}

ensure_alert_policies() {
  section "Alert policies"
  resolve_alert_channels
  local user="logging.googleapis.com/user" run_filter conditions doc
  run_filter="resource.type=\"cloud_run_revision\""

  doc="Events failed to reach Svix (jsonPayload.outcome=\"failed\" in the logs of $FUNCTION_NAME and $FUNCTION_NAME-notifications), or events were dead-lettered after $MAX_DELIVERY_ATTEMPTS delivery attempts.

Logs: resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(\"$FUNCTION_NAME\" OR \"$FUNCTION_NAME-notifications\") AND jsonPayload.outcome=\"failed\"

Dead letters are kept $DEAD_LETTER_RETENTION in subscription $DEAD_LETTER_SUBSCRIPTION (gcloud pubsub subscriptions pull $DEAD_LETTER_SUBSCRIPTION --project=$PROJECT); redrive them once the cause is fixed."
  conditions="$(threshold_condition "More than $ALERT_FAILURE_THRESHOLD failed events in 5 min" \
    "$run_filter AND metric.type=\"$user/${METRIC_PREFIX}_failed\"" \
    ALIGN_SUM 300s "$ALERT_FAILURE_THRESHOLD" 0s REDUCE_SUM)"
  conditions+=",$(threshold_condition "Dead-lettered events waiting in $DEAD_LETTER_SUBSCRIPTION" \
    "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"$DEAD_LETTER_SUBSCRIPTION\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\"" \
    ALIGN_MAX 300s 0 0s)"
  upsert_policy "notifier ($FUNCTION_NAME): delivery failures" "$doc" "$conditions" ALERT

  doc="The oldest event waiting in the trigger subscription $TRIGGER_SUBSCRIPTION_ID is older than $BACKLOG_AGE_ALERT_SECONDS s: the function is not keeping up (see instances and latency on the dashboard), or one event is being retried (retried log lines, by jsonPayload.reason). Unacknowledged events are kept $RETENTION, then lost."
  conditions="$(threshold_condition "Oldest unacknowledged event older than $BACKLOG_AGE_ALERT_SECONDS s" \
    "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"$TRIGGER_SUBSCRIPTION_ID\" AND metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\"" \
    ALIGN_MAX 60s "$BACKLOG_AGE_ALERT_SECONDS" 0s)"
  upsert_policy "notifier ($FUNCTION_NAME): backlog" "$doc" "$conditions" BACKLOG

  doc="Heartbeats ($HEARTBEAT_JOB, every $HEARTBEAT_MINUTES min) go platform topic -> $FUNCTION_NAME -> Svix -> $FUNCTION_NAME-canary. None arrived for $HEARTBEAT_ABSENT_MINUTES min, or they arrive later than $HEARTBEAT_LATENCY_ALERT_MS ms: check Svix (status page, bad_credentials lines), the backlog alert, and the canary's logs (\"canary refused: ...\")."
  conditions="{\"displayName\":$(json_str "No heartbeat for $HEARTBEAT_ABSENT_MINUTES min")"
  conditions+=",\"conditionAbsent\":{\"filter\":$(json_str "$run_filter AND metric.type=\"$user/${METRIC_PREFIX}_heartbeat\"")"
  conditions+=",\"aggregations\":[{\"alignmentPeriod\":\"300s\",\"perSeriesAligner\":\"ALIGN_SUM\",\"crossSeriesReducer\":\"REDUCE_SUM\"}]"
  conditions+=",\"duration\":\"$((HEARTBEAT_ABSENT_MINUTES * 60))s\",\"trigger\":{\"count\":1}}}"
  conditions+=",$(threshold_condition "Heartbeat latency above $HEARTBEAT_LATENCY_ALERT_MS ms for 15 min" \
    "$run_filter AND metric.type=\"$user/${METRIC_PREFIX}_heartbeat_latency\"" \
    ALIGN_PERCENTILE_50 300s "$HEARTBEAT_LATENCY_ALERT_MS" 900s REDUCE_MAX)"
  upsert_policy "notifier ($FUNCTION_NAME): heartbeat" "$doc" "$conditions" HEARTBEAT
}

ensure_dashboard() {
  section "Cloud Monitoring dashboard (monitoring/dashboard.json)"
  local template="$SCRIPT_DIR/monitoring/dashboard.json" config display_name existing
  [[ -f "$template" ]] || die "$template is missing: run deploy.sh from a complete checkout"
  display_name="notifier ($FUNCTION_NAME)"
  config="$(<"$template")"
  config="${config//@DISPLAY_NAME@/$display_name}"
  config="${config//@METRIC_PREFIX@/$METRIC_PREFIX}"
  config="${config//@FUNCTION_NAME@/$FUNCTION_NAME}"
  config="${config//@TRIGGER_SUBSCRIPTION_ID@/$TRIGGER_SUBSCRIPTION_ID}"
  config="${config//@DEAD_LETTER_SUBSCRIPTION@/$DEAD_LETTER_SUBSCRIPTION}"
  config="${config//$'\n'/ }" # one line in the plan
  while [[ "$config" == *"  "* ]]; do
    config="${config//  / }"
  done
  existing="$(capture "$(if_existing "projects/$PROJECT_NUMBER/dashboards/DASHBOARD_ID")" \
    gcloud monitoring dashboards list --project="$PROJECT" \
    --filter="displayName=\"$display_name\"" --format='value(name)')"
  existing="${existing%%$'\n'*}"
  if [[ -n "$existing" ]]; then
    run gcloud monitoring dashboards update "$existing" --project="$PROJECT" --config="$config" \
      --format=none
  else
    run gcloud monitoring dashboards create --project="$PROJECT" --config="$config" --format=none
  fi
}

main() {
  parse_args "$@"
  validate

  SA_ID="${FUNCTION_NAME}-sa"
  API_SA_ID="${FUNCTION_NAME}-api-sa"
  PORTAL_SA_ID="${FUNCTION_NAME}-portal-sa"
  CANARY_SA_ID="${FUNCTION_NAME}-canary-sa"
  HEARTBEAT_SA_ID="${FUNCTION_NAME}-hb-sa"
  SA_EMAIL="${SA_ID}@${PROJECT}.iam.gserviceaccount.com"
  API_SA_EMAIL="${API_SA_ID}@${PROJECT}.iam.gserviceaccount.com"
  PORTAL_SA_EMAIL="${PORTAL_SA_ID}@${PROJECT}.iam.gserviceaccount.com"
  CANARY_SA_EMAIL="${CANARY_SA_ID}@${PROJECT}.iam.gserviceaccount.com"
  HEARTBEAT_SA_EMAIL="${HEARTBEAT_SA_ID}@${PROJECT}.iam.gserviceaccount.com"
  HEARTBEAT_JOB="${FUNCTION_NAME}-heartbeat"
  CANARY_URL="https://${REGION}-${PROJECT}.cloudfunctions.net/${FUNCTION_NAME}-canary"
  DEAD_LETTER_TOPIC="${TOPIC}-dead-letter"
  DEAD_LETTER_SUBSCRIPTION="${TOPIC}-dead-letter-sub"
  METRIC_PREFIX="${FUNCTION_NAME//-/_}"
  RUN_DIR="$SCRIPT_DIR/.run/deploy"
  DROPPED_INVOKER_PLACEHOLDER="serviceAccount:DROPPED_INVOKER@${PROJECT}.iam.gserviceaccount.com"

  if ((DRY_RUN == 1)); then
    exec 3>&1
    printf '# deploy.sh --dry-run: nothing is executed; placeholders stand for looked-up values.\n'
    if ((ASSUME_EXISTING == 1)); then
      printf '# Existence checks ("# exists?") are assumed to succeed (re-run); an earlier\n'
      printf '# invoker %s stands for members no longer asked for.\n' "$DROPPED_INVOKER_PLACEHOLDER"
    else
      printf '# Existence checks ("# exists?") are assumed to fail (fresh project).\n'
    fi
    printf '# Newest enabled secret versions are shown as 1.\n'
  else
    exec 3>&2
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
