# shellcheck shell=bash
# project.sh - the project itself: its APIs, its number (and so its Pub/Sub service agent), and
# the Svix API key secret the functions mount, pinned to one version.

enable_apis() {
  section "APIs"
  run gcloud services enable \
    cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com \
    pubsub.googleapis.com firestore.googleapis.com secretmanager.googleapis.com \
    logging.googleapis.com monitoring.googleapis.com cloudbuild.googleapis.com \
    artifactregistry.googleapis.com iam.googleapis.com cloudscheduler.googleapis.com \
    --project="$PROJECT"
}

# resolve_project_number: sets PROJECT_NUMBER (read by the dashboard's lookup) and PUBSUB_AGENT.
resolve_project_number() {
  section "Project number and Pub/Sub service agent"
  # shellcheck disable=SC2034 # read by monitoring.sh
  PROJECT_NUMBER="$(capture PROJECT_NUMBER gcloud projects describe "$PROJECT" \
    --format='value(projectNumber)')"
  [[ -n "$PROJECT_NUMBER" ]] || die "could not read the number of project $PROJECT"
  name_pubsub_agent "$PROJECT_NUMBER"
  # The Pub/Sub service agent forwards dead letters and signs push requests;
  # make sure it exists before granting it roles (no-op if it does).
  run gcloud beta services identity create --service=pubsub.googleapis.com \
    --project="$PROJECT" --format=none
}

# newest_enabled_version SECRET PLACEHOLDER: the newest enabled version number of SECRET ("" if
# it has none); PLACEHOLDER in a dry run (a number: gcloud's --set-secrets accepts only numbers
# or "latest").
newest_enabled_version() {
  capture "$2" gcloud secrets versions list "$1" --project="$PROJECT" \
    --filter=state=enabled --sort-by=~createTime --limit=1 \
    --format='value(name.basename())'
}

# check_secret: the Svix API key secret exists; SECRET_VERSION is the version to pin.
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
