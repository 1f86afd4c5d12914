# shellcheck shell=bash
# firestore.sh - the database (created only if missing), the single-field index exemptions and
# the TTL policies on expires_at, all before any traffic.

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
  event_id pubsub_message_id attempts replays svix_status last_error svix_exhausted
)
readonly REJECTED_UNINDEXED=(
  created_at updated_at expires_at rejected_at last_delivery_at publish_time raw
  pubsub_message_id reason detail errors subscription raw_size raw_truncated deliveries
)
# heartbeats.arrived_at keeps its index: `status` reads the latest heartbeat by it.
readonly HEARTBEATS_UNINDEXED=(expires_at published_at)
# endpoint_health keeps state (and project): `status` and `recover` ask by state.
readonly ENDPOINT_HEALTH_UNINDEXED=(
  expires_at since changed_at changed_by last_status_code trigger exhausted app_id endpoint_id
  endpoint_uid failing_since
)
# operational_webhooks (one marker per webhook applied) is only read by document key.
readonly OPERATIONAL_WEBHOOKS_UNINDEXED=(expires_at arrived_at type project endpoint_id)

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
  exempt_from_indexing endpoint_health "${ENDPOINT_HEALTH_UNINDEXED[@]}"
  exempt_from_indexing operational_webhooks "${OPERATIONAL_WEBHOOKS_UNINDEXED[@]}"
}

ensure_ttl_policies() {
  section "Firestore TTL policies (field expires_at)"
  # Firestore deletes documents some time (typically within 24 h) after their
  # expires_at; the functions set it NOTIFIER_RECORD_TTL_DAYS ahead.
  local collection state
  for collection in notifications rejected heartbeats endpoint_health operational_webhooks; do
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
