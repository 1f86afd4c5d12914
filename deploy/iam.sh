# shellcheck shell=bash
# iam.sh - one service account per function, each granted only what it uses (docs/operations/iam.md),
# and the invokers of a function's Cloud Run service, converged to exactly the ones asked for.

# ensure_sa EMAIL DESCRIPTION: create the service account EMAIL unless it exists.
ensure_sa() {
  if ! exists gcloud iam service-accounts describe "$1" --project="$PROJECT" --format=none; then
    run gcloud iam service-accounts create "${1%%@*}" --project="$PROJECT" --display-name="$2"
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
  ensure_sa "$SA_EMAIL" "notifier on_event ($FUNCTION_NAME)"
  ensure_sa "$API_SA_EMAIL" "notifier notifications ($NOTIFICATIONS_FUNCTION)"
  ensure_sa "$PORTAL_SA_EMAIL" "notifier app_portal ($APP_PORTAL_FUNCTION)"
  ensure_sa "$CANARY_SA_EMAIL" "notifier canary ($CANARY_FUNCTION)"
  ensure_sa "$OPERATIONAL_SA_EMAIL" "notifier operational_webhooks ($OPERATIONAL_FUNCTION)"
  ensure_sa "$HEARTBEAT_SA_EMAIL" "notifier heartbeat publisher ($HEARTBEAT_JOB)"
  # Firestore: datastore.user (read/write documents, nothing administrative)
  # for the functions that write records; the App Portal link only reads
  # applications/, so datastore.viewer. Both conditioned to the one database.
  grant_firestore "$SA_EMAIL" roles/datastore.user
  grant_firestore "$API_SA_EMAIL" roles/datastore.user
  grant_firestore "$PORTAL_SA_EMAIL" roles/datastore.viewer
  grant_firestore "$CANARY_SA_EMAIL" roles/datastore.user
  grant_firestore "$OPERATIONAL_SA_EMAIL" roles/datastore.user
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
  # The Svix token: only the functions that call Svix. The canary and the
  # operational webhooks never call Svix; each reads its own signing secret
  # (granted with the secret).
  grant_secret "$SECRET" "$SA_EMAIL"
  grant_secret "$SECRET" "$API_SA_EMAIL"
  grant_secret "$SECRET" "$PORTAL_SA_EMAIL"
  # Logs need no role: Cloud Run collects stdout itself.
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
