# shellcheck shell=bash
# svix.sh - Svix, through the project's operator commands (python -m notifier): the event
# catalog, the heartbeat's app and endpoint, the operational-webhook endpoint, and their
# signing secrets, versioned in Secret Manager only when they changed.

# load_svix_token: SVIX_TOKEN, what the operator commands talk to Svix with: SVIX_API_KEY
# from this shell if set, else the pinned version read into memory (never printed, never
# written anywhere).
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

# ensure_canary_secret: the heartbeat's Svix side, and CANARY_SECRET_VERSION, the version of
# the canary's signing secret it mounts (functions.sh).
ensure_canary_secret() {
  section "Heartbeat: Svix app and endpoint, canary signing secret $CANARY_SECRET"
  # The canary's URL is known before it is deployed (the cloudfunctions.net
  # address of a function), so Svix's endpoint can point at it first.
  versioned_signing_secret CANARY_SECRET_VERSION "$CANARY_SECRET" "$CANARY_SA_EMAIL" \
    CANARY_SECRET_FILE heartbeat setup --canary-url="$CANARY_URL"
}

# ensure_operational_secret: Svix's operational-webhook endpoint at the operational_webhooks
# function's URL, and OPERATIONAL_SECRET_VERSION, the version of its signing secret it mounts.
ensure_operational_secret() {
  section "Operational webhooks: Svix endpoint, signing secret $OPERATIONAL_SECRET"
  versioned_signing_secret OPERATIONAL_SECRET_VERSION "$OPERATIONAL_SECRET" \
    "$OPERATIONAL_SA_EMAIL" OPERATIONAL_SECRET_FILE operational setup --url="$OPERATIONAL_URL"
}

# versioned_signing_secret VAR SECRET SA PLACEHOLDER SETUP...: runs `python -m notifier SETUP...
# --secret-file=FILE` (PLACEHOLDER names FILE in a dry run), which makes a Svix endpoint right
# and writes its signing secret, then keeps that secret in Secret Manager's SECRET (created if
# missing, readable by SA): a new version only when it differs from the newest enabled one.
# Sets VAR (a global, read by functions.sh) to the version the function mounts.
versioned_signing_secret() {
  local -n version="$1"
  local secret_name="$2" account="$3" placeholder="$4"
  shift 4
  if ! exists gcloud secrets describe "$secret_name" --project="$PROJECT" --format=none; then
    run gcloud secrets create "$secret_name" --project="$PROJECT" --replication-policy=automatic
  fi
  grant_secret "$secret_name" "$account"
  local secret_file current current_value="" new_value
  if ((DRY_RUN == 1)); then
    secret_file="$placeholder"
  else
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/notifier-deploy.XXXXXX")"
    chmod 700 "$WORK_DIR"
    trap 'rm -rf "$WORK_DIR"' EXIT # also when a later step fails
    secret_file="${placeholder%_FILE}" # CANARY_SECRET_FILE: .../canary-secret
    secret_file="${secret_file,,}"
    secret_file="$WORK_DIR/${secret_file//_/-}"
  fi
  operator "$PYTHON" -m notifier "$@" --secret-file="$secret_file"
  # A new secret version only when the endpoint's secret differs from the
  # current one: a re-run leaves the function's pinned version as it is.
  current="$(newest_enabled_version "$secret_name" "$(if_existing 1)")"
  if [[ -n "$current" ]]; then
    trace -n "compared in memory, never printed" gcloud secrets versions access "$current" \
      --secret="$secret_name" --project="$PROJECT"
    if ((DRY_RUN == 0)); then
      current_value="$(gcloud secrets versions access "$current" --secret="$secret_name" \
        --project="$PROJECT")" || die "could not read version $current of $secret_name"
    fi
  fi
  if ((DRY_RUN == 1)); then
    new_value="same" # a dry run assumes an existing version is already right
    current_value="same"
  else
    [[ -s "$secret_file" ]] || die "notifier $1 $2 wrote no signing secret to $secret_file"
    new_value="$(<"$secret_file")"
  fi
  if [[ -z "$current" || "$new_value" != "$current_value" ]]; then
    current="$(capture 1 gcloud secrets versions add "$secret_name" --project="$PROJECT" \
      --data-file="$secret_file" --format='value(name.basename())')"
  fi
  if ((DRY_RUN == 0)); then
    rm -rf "$WORK_DIR"
  fi
  require_int "version of $secret_name" "$current" 1 999999999
  # shellcheck disable=SC2034 # the caller's variable, by name
  version="$current"
}
