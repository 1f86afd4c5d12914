#!/usr/bin/env bash
#
# deploy.sh - deploy "notifier" (platform Pub/Sub events -> Svix webhook messages)
# to Google Cloud Functions (2nd gen, Python 3.11) and set up everything it needs.
#
# What it sets up, in order (every step is idempotent: a second run updates or
# skips what exists and never fails because something is already there):
#   1. the APIs the function and this script use;
#   2. the Firestore database (created only if missing; location is permanent);
#   3. a check that the Svix API key secret exists (it is never read or printed);
#   4. a dedicated least-privilege service account <function>-sa:
#        roles/datastore.user on the project and
#        roles/secretmanager.secretAccessor on the ONE secret only;
#   5. the event topic, a dead-letter topic <topic>-dead-letter and its pull
#      subscription <topic>-dead-letter-sub (dead letters are kept 7 days);
#   6. the event function (entry point on_event, Pub/Sub trigger via Eventarc,
#      --retry, secret from Secret Manager) plus roles/run.invoker on its Cloud
#      Run service for the trigger identity;
#   7. the trigger's Eventarc-managed subscription: dead-letter policy,
#      exponential retry backoff, and the Pub/Sub service agent grants that
#      dead-lettering needs;
#   8. the HTTP functions notifications and app_portal (authenticated only);
#   9. Firestore TTL policies on expires_at for notifications and rejected;
#  10. log-based counter metrics <prefix>_{sent,duplicate,rejected,failed,retried};
#  11. an alert policy on failures and on dead-lettered events (optionally
#      notifying an email channel or existing notification channels).
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
# accounts, set IAM policies on the project/secret/topics/subscriptions/service
# accounts, deploy functions (plus iam.serviceAccounts.actAs on <function>-sa),
# create Firestore databases/TTL policies, log metrics and alert policies;
# roles/owner covers all of it. The gcloud alpha and beta components are used
# (alert policies exist only in "gcloud alpha monitoring policies").

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
# dead letters are then kept 7 days (the Pub/Sub maximum for a subscription).
MAX_DELIVERY_ATTEMPTS="${NOTIFIER_MAX_DELIVERY_ATTEMPTS:-10}"
MIN_RETRY_DELAY_SECONDS="${NOTIFIER_MIN_RETRY_DELAY_SECONDS:-10}"
MAX_RETRY_DELAY_SECONDS="${NOTIFIER_MAX_RETRY_DELAY_SECONDS:-600}"
DEAD_LETTER_RETENTION="7d"
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
need: APIs, Firestore database + TTL policies, service account + IAM, topics,
dead-lettering, log-based metrics and an alert policy. Safe to re-run.

Target
  --project=ID              Google Cloud project (env GOOGLE_CLOUD_PROJECT,
                            else 'gcloud config get-value project'; required)
  --region=REGION           functions region [europe-west1] (env NOTIFIER_REGION)
  --function-name=NAME      event function name [notifier]; also names the
                            service account NAME-sa, the HTTP functions
                            NAME-notifications / NAME-app-portal and the log
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

Access and alerting
  --invoker=MEMBER          may call the HTTP functions, e.g.
                            serviceAccount:platform@p.iam.gserviceaccount.com;
                            repeatable (env NOTIFIER_INVOKERS, comma-separated)
  --alert-email=EMAIL       create/reuse an email notification channel for the
                            alert policy (env NOTIFIER_ALERT_EMAIL)
  --notification-channel=projects/P/notificationChannels/ID
                            existing channel for the alert policy; repeatable
                            (env NOTIFIER_NOTIFICATION_CHANNELS, comma-separated)
  --alert-failure-threshold=N
                            alert when more than N events fail in 5 min [0]

Sizing (all functions)
  --max-instances=N [10]  --min-instances=N [0]  --concurrency=N [10]
  --cpu=N [1]  --memory=SIZE [512Mi]  --timeout=SECONDS [90]
  (env NOTIFIER_MAX_INSTANCES, _MIN_INSTANCES, _CONCURRENCY, _CPU, _MEMORY,
  _TIMEOUT_SECONDS)

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

Pub/Sub redelivery of the event function's trigger subscription
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
        --min-retry-delay | --max-retry-delay) ;;
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
      --max-instances) MAX_INSTANCES="$value" ;;
      --min-instances) MIN_INSTANCES="$value" ;;
      --concurrency) CONCURRENCY="$value" ;;
      --cpu) CPU="$value" ;;
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

validate() {
  if [[ -z "$PROJECT" ]] && command -v gcloud >/dev/null 2>&1; then
    PROJECT="$(gcloud config get-value project 2>/dev/null || true)"
  fi
  [[ -n "$PROJECT" ]] ||
    die "no project: pass --project=ID (or set GOOGLE_CLOUD_PROJECT, or 'gcloud config set project ID')"
  require_match project "$PROJECT" '^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$' 'a project ID'
  require_match region "$REGION" '^[a-z]+-[a-z]+[0-9]+$' 'e.g. europe-west1'
  require_match topic "$TOPIC" '^[A-Za-z][A-Za-z0-9._-]{2,200}$' 'a Pub/Sub topic ID'
  # 3..27 characters so that "<name>-sa" is a valid (6..30 character)
  # service account ID and "<name>-notifications" a valid function name.
  require_match function-name "$FUNCTION_NAME" '^[a-z][a-z0-9-]{1,25}[a-z0-9]$' \
    '3-27 lowercase letters, digits or hyphens, starting with a letter'
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
    artifactregistry.googleapis.com iam.googleapis.com \
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

check_secret() {
  section "Svix API key secret (checked, never read)"
  trace -n "must exist" gcloud secrets describe "$SECRET" --project="$PROJECT" --format=none
  ((DRY_RUN == 1)) && return 0
  if ! gcloud secrets describe "$SECRET" --project="$PROJECT" --format=none >/dev/null 2>&1; then
    die "secret '$SECRET' not found (or not readable) in project $PROJECT. Create it once with:
  printf %s \"\$TOKEN\" | gcloud secrets create $SECRET --data-file=- --project=$PROJECT
(then re-run ./deploy.sh; the token is never stored in the function's configuration)"
  fi
}

ensure_service_account() {
  section "Service account $SA_EMAIL"
  if ! exists gcloud iam service-accounts describe "$SA_EMAIL" --project="$PROJECT" \
    --format=none; then
    run gcloud iam service-accounts create "$SA_ID" --project="$PROJECT" \
      --display-name="notifier function ($FUNCTION_NAME)"
  fi
  # Read/write the notifier's Firestore collections (applications,
  # notifications, rejected). datastore.user is the narrowest predefined role
  # for Firestore data access; it cannot manage indexes or databases.
  run_retry gcloud projects add-iam-policy-binding "$PROJECT" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/datastore.user \
    --condition=None --format=none
  # Read the Svix API key: on this one secret only, not project-wide.
  run_retry gcloud secrets add-iam-policy-binding "$SECRET" --project="$PROJECT" \
    --member="serviceAccount:$SA_EMAIL" --role=roles/secretmanager.secretAccessor \
    --condition=None --format=none
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

# Flags shared by the three functions. --set-env-vars / --set-secrets replace
# the whole set on every deploy, so a re-run converges to exactly this.
common_deploy_flags() {
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
    "THREADS=$CONCURRENCY"
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
    --service-account="$SA_EMAIL"
    # The Svix token comes from Secret Manager, never from --set-env-vars.
    --set-secrets="SVIX_API_KEY=${SECRET}:latest"
    --set-env-vars="$joined"
    --max-instances="$MAX_INSTANCES" --min-instances="$MIN_INSTANCES"
    --concurrency="$CONCURRENCY" --cpu="$CPU" --memory="$MEMORY"
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

deploy_event_function() {
  section "Event function $FUNCTION_NAME (entry point on_event)"
  # --retry: a failed invocation is redelivered by Pub/Sub (backoff and
  # dead-lettering are configured on the trigger subscription below).
  # --trigger-service-account: the identity Eventarc/Pub/Sub uses to invoke
  # the function. We reuse the dedicated SA instead of the default compute SA
  # (often a project Editor). It needs only roles/run.invoker on this one
  # service (granted below; eventarc.eventReceiver is not needed for Pub/Sub
  # triggers). Invoking its own function grants it nothing new.
  # --ingress-settings=internal-only: Eventarc and Pub/Sub push from the same
  # project count as internal, so nothing else can even reach the endpoint.
  run gcloud functions deploy "$FUNCTION_NAME" "${DEPLOY_FLAGS[@]}" \
    --entry-point=on_event --trigger-topic="$TOPIC" --retry \
    --trigger-service-account="$SA_EMAIL" --ingress-settings=internal-only
  # gcloud only checks project-level bindings and may warn that the trigger
  # SA lacks roles/run.invoker; this service-level binding is what counts.
  run_retry gcloud functions add-invoker-policy-binding "$FUNCTION_NAME" \
    --region="$REGION" --project="$PROJECT" --member="serviceAccount:$SA_EMAIL" --format=none
  # Pub/Sub mints the OIDC token of the trigger SA for each push. Service
  # agents created before 2021-04-08 lack that permission by default; grant
  # it on this one service account (not project-wide).
  run_retry gcloud iam service-accounts add-iam-policy-binding "$SA_EMAIL" \
    --project="$PROJECT" --member="serviceAccount:$PUBSUB_AGENT" \
    --role=roles/iam.serviceAccountTokenCreator --condition=None --format=none
}

configure_trigger_subscription() {
  section "Trigger subscription: dead-lettering and retry backoff"
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

  # The Pub/Sub service agent publishes dead letters to the dead-letter topic
  # and must be able to acknowledge (subscriber) the forwarded messages on
  # the source subscription.
  run_retry gcloud pubsub topics add-iam-policy-binding "$DEAD_LETTER_TOPIC" \
    --project="$PROJECT" --member="serviceAccount:$PUBSUB_AGENT" \
    --role=roles/pubsub.publisher --format=none
  run gcloud pubsub subscriptions update "$subscription" --project="$PROJECT" \
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
  # function (granted below for each --invoker; project owners/editors have
  # it implicitly). The runtime SA gets no invoker role on these.
  local name entry_point member
  for entry_point in notifications app_portal; do
    name="${FUNCTION_NAME}-${entry_point//_/-}"
    run gcloud functions deploy "$name" "${DEPLOY_FLAGS[@]}" \
      --entry-point="$entry_point" --trigger-http --no-allow-unauthenticated
    for member in "${INVOKERS[@]}"; do
      run_retry gcloud functions add-invoker-policy-binding "$name" \
        --region="$REGION" --project="$PROJECT" --member="$member" --format=none
    done
  done
}

ensure_ttl_policies() {
  section "Firestore TTL policies (field expires_at)"
  # Firestore deletes documents some time (typically within 24 h) after their
  # expires_at; the function sets it NOTIFIER_RECORD_TTL_DAYS ahead.
  # (At very high write rates, consider also exempting expires_at from
  # single-field indexing to avoid index hotspots.)
  local collection state
  for collection in notifications rejected; do
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

ensure_log_metrics() {
  section "Log-based metrics"
  # The on_event and notifications functions both log one JSON line per
  # outcome; Cloud Run puts it under jsonPayload.
  local filter_base outcome metric description filter
  filter_base="resource.type=\"cloud_run_revision\" AND (resource.labels.service_name=\"$FUNCTION_NAME\" OR resource.labels.service_name=\"$FUNCTION_NAME-notifications\")"
  for outcome in sent duplicate rejected failed retried; do
    metric="${METRIC_PREFIX}_${outcome}"
    description="notifier ($FUNCTION_NAME): events with outcome=$outcome"
    filter="$filter_base AND jsonPayload.outcome=\"$outcome\""
    if exists gcloud logging metrics describe "$metric" --project="$PROJECT" --format=none; then
      run gcloud logging metrics update "$metric" --project="$PROJECT" \
        --description="$description" --log-filter="$filter"
    else
      run gcloud logging metrics create "$metric" --project="$PROJECT" \
        --description="$description" --log-filter="$filter"
    fi
  done
}

ensure_alert_policy() {
  section "Alert policy"
  local channels=("${NOTIFICATION_CHANNELS[@]}") channel=""
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
    channels+=("$channel")
  fi
  if ((${#channels[@]} == 0)); then
    warn "no --alert-email/--notification-channel: the alert policy will open incidents but notify nobody"
  fi

  local display_name="notifier ($FUNCTION_NAME): delivery failures"
  local failed_filter dead_filter documentation channels_json="" policy
  failed_filter="resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${METRIC_PREFIX}_failed\""
  dead_filter="resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"$DEAD_LETTER_SUBSCRIPTION\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
  documentation="Events failed to reach Svix (jsonPayload.outcome=\"failed\" in the logs of $FUNCTION_NAME and $FUNCTION_NAME-notifications), or events were dead-lettered after $MAX_DELIVERY_ATTEMPTS delivery attempts.

Logs: resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(\"$FUNCTION_NAME\" OR \"$FUNCTION_NAME-notifications\") AND jsonPayload.outcome=\"failed\"

Dead letters are kept $DEAD_LETTER_RETENTION in subscription $DEAD_LETTER_SUBSCRIPTION (gcloud pubsub subscriptions pull $DEAD_LETTER_SUBSCRIPTION --project=$PROJECT); republish them to $TOPIC once the cause is fixed."
  for channel in "${channels[@]}"; do
    channels_json+="${channels_json:+,}$(json_str "$channel")"
  done
  policy="{\"displayName\":$(json_str "$display_name")"
  policy+=",\"documentation\":{\"content\":$(json_str "$documentation"),\"mimeType\":\"text/markdown\"}"
  policy+=",\"combiner\":\"OR\",\"conditions\":["
  policy+="{\"displayName\":$(json_str "More than $ALERT_FAILURE_THRESHOLD failed events in 5 min")"
  policy+=",\"conditionThreshold\":{\"filter\":$(json_str "$failed_filter")"
  policy+=",\"aggregations\":[{\"alignmentPeriod\":\"300s\",\"perSeriesAligner\":\"ALIGN_SUM\",\"crossSeriesReducer\":\"REDUCE_SUM\"}]"
  policy+=",\"comparison\":\"COMPARISON_GT\",\"thresholdValue\":$ALERT_FAILURE_THRESHOLD,\"duration\":\"0s\",\"trigger\":{\"count\":1}}}"
  policy+=",{\"displayName\":$(json_str "Dead-lettered events waiting in $DEAD_LETTER_SUBSCRIPTION")"
  policy+=",\"conditionThreshold\":{\"filter\":$(json_str "$dead_filter")"
  policy+=",\"aggregations\":[{\"alignmentPeriod\":\"300s\",\"perSeriesAligner\":\"ALIGN_MAX\"}]"
  policy+=",\"comparison\":\"COMPARISON_GT\",\"thresholdValue\":0,\"duration\":\"0s\",\"trigger\":{\"count\":1}}}"
  policy+="],\"alertStrategy\":{\"autoClose\":\"86400s\"}"
  policy+=",\"notificationChannels\":[${channels_json}],\"enabled\":true}"

  # Looked up by display name, so a re-run replaces the policy in place.
  local existing
  existing="$(capture "$(if_existing "projects/$PROJECT/alertPolicies/ALERT_POLICY_ID")" \
    gcloud alpha monitoring policies list --project="$PROJECT" \
    --filter="displayName=\"$display_name\"" --format='value(name)')"
  if [[ "$existing" == *$'\n'* ]]; then
    warn "several alert policies are named '$display_name'; updating the first"
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

main() {
  parse_args "$@"
  validate

  SA_ID="${FUNCTION_NAME}-sa"
  SA_EMAIL="${SA_ID}@${PROJECT}.iam.gserviceaccount.com"
  DEAD_LETTER_TOPIC="${TOPIC}-dead-letter"
  DEAD_LETTER_SUBSCRIPTION="${TOPIC}-dead-letter-sub"
  METRIC_PREFIX="${FUNCTION_NAME//-/_}"

  if ((DRY_RUN == 1)); then
    exec 3>&1
    printf '# deploy.sh --dry-run: nothing is executed; placeholders stand for looked-up values.\n'
    if ((ASSUME_EXISTING == 1)); then
      printf '# Existence checks ("# exists?") are assumed to succeed (re-run).\n'
    else
      printf '# Existence checks ("# exists?") are assumed to fail (fresh project).\n'
    fi
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
  common_deploy_flags
  enable_apis
  resolve_project_number
  ensure_firestore
  check_secret
  ensure_service_account
  ensure_topics
  deploy_event_function
  configure_trigger_subscription
  deploy_http_functions
  ensure_ttl_policies
  ensure_log_metrics
  ensure_alert_policy
  section "Done"
  if ((DRY_RUN == 0)); then
    printf 'deploy.sh: %s deployed to %s/%s\n' "$FUNCTION_NAME" "$PROJECT" "$REGION" >&2
  fi
}

main "$@"
