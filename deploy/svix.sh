# shellcheck shell=bash
# svix.sh - Svix, through the project's operator commands (python -m notifier): the event
# catalog, the heartbeat's app and endpoint, and the canary's signing secret, versioned in
# Secret Manager only when it changed.

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
  require_int "version of $CANARY_SECRET" "$current" 1 999999999
  # shellcheck disable=SC2034 # read by functions.sh
  CANARY_SECRET_VERSION="$current"
}
