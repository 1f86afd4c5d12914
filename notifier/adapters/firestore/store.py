"""Firestore adapter: the notification records that make delivery idempotent and auditable, the
applications, the rejections and the operator's queries; the one owner of the record layout.

The claim lets one delivery at a time call Svix for an event (docs/decisions/firestore-claim.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.document import DocumentReference

from notifier.adapters.firestore import reads, writes
from notifier.adapters.firestore.calls import QUERY_TIMEOUT, TIMEOUT, guarded, read_retry
from notifier.adapters.firestore.keys import document_key, natural_id, pack, unpack
from notifier.domain.claims import HOLD_MAX_SECONDS, Claim, ClaimState, Look, RecordStatus
from notifier.domain.errors import NotifierError, Rejected
from notifier.domain.events import Delivery, Event
from notifier.domain.records import Record, StoredNotification

NOTIFICATIONS = "notifications"
APPLICATIONS = "applications"
REJECTED = "rejected"
# What a listing reads of each record: never the payload.
_LISTED = [
    *("status", "project", "event_type", "attempts", "replays", "created_at", "updated_at"),
    *("lease_expires_at", "last_error", "failed_at"),
]
_PUBSUB_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")
# What a claim decides on when it reads a record that may be pending: never the payload (up to a
# MiB), nor the audit fields.
_DECIDED_ON = [
    *("status", "project", "event_type", "attempts", "replays", "pubsub_message_id"),
    *("lease_expires_at", "svix_first_call_at", "created_at", "svix_message_id"),
]

# What ``sent`` removes: the payload (personal data, never needed again), the lease, the error.
_DROPPED_WHEN_SENT = ("payload", "lease_expires_at", "last_error")


def _now() -> datetime:
    return datetime.now(UTC)


class FirestoreStore:
    """Claims and records of notifications, applications and rejections, and the queries the
    operator tools ask of them: the one owner of the record layout."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        lease_seconds: float,
        ttl_days: int,
        raw_limit: int,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._db = client
        self._lease = timedelta(seconds=lease_seconds)
        self._ttl = timedelta(days=ttl_days)
        self._raw_limit = raw_limit
        self._clock = clock

    # -- claims ---------------------------------------------------------------------------------

    def claim(self, event: Event, delivery: Delivery, looked: Look | None = None) -> Claim:
        """A first delivery creates first: one write for a new event, the common case; a known
        event then costs the refused create and a read. A redelivery (Pub/Sub's
        ``deliveryAttempt`` above 1) reads first: its record most likely exists, and one read
        decides it (``looked``: the read :meth:`look` made for it). Either way a new event never
        pays for a read (see BENCHMARKS.md)."""
        ref = self._db.collection(NOTIFICATIONS).document(document_key(event.id))
        snapshot = looked.token if looked is not None and looked.event_id == event.id else None
        if snapshot is None and (delivery.delivery_attempt or 1) > 1:
            snapshot = self._read(ref, _DECIDED_ON)
        if snapshot is not None and snapshot.exists:
            return self._claim_known(event, ref, snapshot)
        now = self._clock()
        record = {
            "status": RecordStatus.PENDING.value,
            "event_id": event.id,
            "project": event.project,
            "event_type": event.type,
            "event_time": event.time,
            "attempts": 1,
            "payload": pack(event.body),
            "lease_expires_at": now + self._lease,
            "pubsub_message_id": delivery.message_id or None,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + self._ttl,
        }
        with guarded():
            try:
                result = writes.create(ref, record, timeout=TIMEOUT)
                return Claim(event.id, ClaimState.CLAIMED, 1, version=result.update_time)
            except gexc.AlreadyExists:
                pass
        return self._claim_known(event, ref, self._read(ref, _DECIDED_ON))

    def look(self, event_id: str) -> Look:
        """One read of the record, before the event is decoded; the claim reuses the snapshot.

        The whole record: a redelivery's is most likely ``sent``, its payload gone, and a field
        mask costs Firestore and the client more than the few audit fields it leaves out."""
        ref = self._db.collection(NOTIFICATIONS).document(document_key(event_id))
        snapshot = self._read(ref)
        if not snapshot.exists:
            return Look(event_id, False, token=snapshot)
        data = snapshot.to_dict() or {}
        return Look(
            event_id,
            True,
            status=data.get("status"),
            project=data.get("project"),
            event_type=data.get("event_type"),
            pubsub_message_id=data.get("pubsub_message_id"),
            attempts=int(data.get("attempts") or 0),
            svix_message_id=data.get("svix_message_id"),
            token=snapshot,
        )

    def _read(self, ref: DocumentReference, fields: list[str] | None = None) -> reads.Snapshot:
        """One document read (only ``fields``, if given), bounded by ``TIMEOUT`` however Firestore
        fails (calls.read_retry)."""
        with guarded():
            return reads.get(ref, fields, retry=read_retry(TIMEOUT), timeout=TIMEOUT)

    def _claim_known(self, event: Event, ref: DocumentReference, snapshot: reads.Snapshot) -> Claim:
        """A known id is this event's only if recorded for its project and type; otherwise it is
        another event (another tenant's, maybe), to refuse: decided on the read made anyway."""
        data = snapshot.to_dict() or {}
        recorded = (data.get("project") or event.project, data.get("event_type") or event.type)
        if recorded != (event.project, event.type):  # a field it lacks is no conflict
            return Claim(event.id, ClaimState.CONFLICT, recorded_as=recorded)
        return self._claim_existing(ref, snapshot)

    def _claim_existing(self, ref: DocumentReference, snapshot: reads.Snapshot) -> Claim:
        event_id = natural_id(ref.id)
        data = snapshot.to_dict() or {}
        status = data.get("status")
        attempts = int(data.get("attempts") or 0)
        if status == RecordStatus.SENT:
            return Claim(event_id, ClaimState.SENT, attempts, data.get("svix_message_id"))
        if status == RecordStatus.FAILED:
            return Claim(event_id, ClaimState.FAILED, attempts)
        now = self._clock()
        lease = data.get("lease_expires_at")
        if lease is not None and lease > now:
            return Claim(
                event_id, ClaimState.HELD, attempts, held_for=(lease - now).total_seconds()
            )
        changes = {
            "status": RecordStatus.PENDING.value,
            "attempts": firestore.Increment(1),
            "lease_expires_at": now + self._lease,
            "updated_at": now,
        }
        # The first Svix call came after the record's creation, which stands for it (one field
        # less per event); records from before kept it as ``svix_first_call_at``.
        first_call = data.get("svix_first_call_at") or data.get("created_at") or now
        result = self._update_unless_changed(ref, changes, snapshot.update_time)
        if result is None:
            return Claim(event_id, ClaimState.HELD, attempts)  # another delivery took it first
        replays = int(data.get("replays") or 0)
        return Claim(
            event_id,
            ClaimState.CLAIMED,
            attempts + 1,
            version=result.update_time,
            replays=replays,
            svix_first_call_at=first_call,
        )

    def mark_sent(self, claim: Claim, svix_message_id: str | None, svix_status: int) -> None:
        """Unconditional: Svix has the message whoever holds the claim, and ``sent`` is final.

        The payload is dropped here: a sent event never needs it again, and it holds personal data.
        """
        now = self._clock()
        changes = {
            "status": RecordStatus.SENT.value,
            "svix_message_id": svix_message_id,
            "svix_status": svix_status,
            "sent_at": now,
            "updated_at": now,
        }
        ref = self._db.collection(NOTIFICATIONS).document(document_key(claim.event_id))
        with guarded():
            writes.update(ref, changes, delete=_DROPPED_WHEN_SENT, timeout=TIMEOUT)

    def mark_failed(self, claim: Claim, error: NotifierError) -> bool:
        """Records a permanent refusal. False when the claim was lost (the new holder decides)."""
        now = self._clock()
        return self._holder_update(
            claim,
            {
                "status": RecordStatus.FAILED.value,
                "last_error": error.summary(),
                "last_error_at": now,
                "failed_at": now,
                "updated_at": now,
                "lease_expires_at": firestore.DELETE_FIELD,
            },
        )

    def release(self, claim: Claim, error: NotifierError, hold: float = 0.0) -> bool:
        """Leaves the event ``pending`` with why, and frees the lease for the next delivery.

        ``hold`` keeps the lease that much longer (capped at ``HOLD_MAX_SECONDS``): when Svix
        asked us to wait (``Retry-After``), a redelivery arriving sooner must not call it again.
        """
        now = self._clock()
        until = now + timedelta(seconds=min(max(hold, 0.0), HOLD_MAX_SECONDS))
        return self._holder_update(
            claim,
            {
                "last_error": error.summary(),
                "last_error_at": now,
                "updated_at": now,
                "lease_expires_at": until,
            },
        )

    def renew(self, claim: Claim) -> Claim | None:
        """The lease, a lease from now, if the record is as the holder's last write left it.

        One conditioned write, bounded by a third of the lease (a renewal's period), so that a
        stalled store is known before the lease runs out.
        """
        now = self._clock()
        changes = {"lease_expires_at": now + self._lease, "updated_at": now}
        ref = self._db.collection(NOTIFICATIONS).document(document_key(claim.event_id))
        timeout = min(TIMEOUT, self._lease.total_seconds() / 3)
        result = self._update_unless_changed(ref, changes, claim.version, timeout=timeout)
        return None if result is None else dataclasses.replace(claim, version=result.update_time)

    def reopen(self, event_id: str) -> bool:
        """``failed`` -> ``pending`` with an expired lease, for an operator's replay.

        Conditioned on the ``update_time`` just read, so it reopens only what is still failed.
        ``replays`` counts the reopenings: the replay sends under a new idempotency key, since
        Svix keeps answering the old one with its first (refusing) answer for hours.
        """
        ref = self._db.collection(NOTIFICATIONS).document(document_key(event_id))
        snapshot = self._read(ref)
        if not snapshot.exists or (snapshot.to_dict() or {}).get("status") != RecordStatus.FAILED:
            return False
        now = self._clock()
        changes = {
            "status": RecordStatus.PENDING.value,
            "replays": firestore.Increment(1),
            "lease_expires_at": now,
            "reopened_at": now,
            "updated_at": now,
        }
        return self._update_unless_changed(ref, changes, snapshot.update_time) is not None

    def _holder_update(self, claim: Claim, changes: dict[str, Any]) -> bool:
        ref = self._db.collection(NOTIFICATIONS).document(document_key(claim.event_id))
        return self._update_unless_changed(ref, changes, claim.version) is not None

    def _update_unless_changed(
        self,
        ref: DocumentReference,
        changes: dict[str, Any],
        update_time: Any,
        *,
        timeout: float = TIMEOUT,
    ) -> Any:
        """The update, only if the record is as it was at ``update_time``; None if it changed."""
        option = self._db.write_option(last_update_time=update_time)
        with guarded():
            try:
                return ref.update(changes, option=option, timeout=timeout)
            except (gexc.FailedPrecondition, gexc.Aborted):
                return None

    # -- applications ---------------------------------------------------------------------------

    def application_id(self, project: str) -> str | None:
        """``applications/{project}``'s Svix application id, if recorded."""
        snapshot = self._read(self._db.collection(APPLICATIONS).document(project))
        return (snapshot.to_dict() or {}).get("svix_app_id") if snapshot.exists else None

    def save_application(self, project: str, svix_app_id: str) -> None:
        """Records the project's Svix application; the first record stands."""
        ref = self._db.collection(APPLICATIONS).document(project)
        record = {"project": project, "svix_app_id": svix_app_id, "created_at": self._clock()}
        with guarded(), contextlib.suppress(gexc.AlreadyExists):
            ref.create(record, timeout=TIMEOUT)

    # -- rejections -----------------------------------------------------------------------------

    def reject(
        self,
        rejection: Rejected,
        delivery: Delivery,
        raw: bytes | None,
        *,
        received_size: int | None = None,
    ) -> str:
        """Keeps what can never be processed, once per Pub/Sub message, for an operator to read.

        The first delivery's record stands: later ones (a redelivery, or anyone POSTing an envelope
        with the same ``messageId``) only count themselves, so no caller can rewrite what was
        witnessed. One write for a first delivery; a later one costs the refused create and an
        update. ``received_size`` is the size of what arrived when ``raw`` is only part of it.
        """
        raw = raw or b""
        if _PUBSUB_ID.fullmatch(delivery.message_id):
            doc_id = f"pubsub-{delivery.message_id}"
        else:
            doc_id = "sha256-" + hashlib.sha256(raw).hexdigest()
        now = self._clock()
        size = len(raw) if received_size is None else max(received_size, len(raw))
        record = {
            "reason": rejection.code,
            "detail": rejection.detail[:500],
            "errors": [e[:300] for e in rejection.errors[:50]],
            "pubsub_message_id": delivery.message_id or None,
            "publish_time": delivery.publish_time or None,
            "subscription": delivery.subscription or None,
            "raw": raw[: self._raw_limit],
            "raw_size": size,
            "raw_truncated": size > min(len(raw), self._raw_limit),
            "rejected_at": now,
            "deliveries": 1,
            "last_delivery_at": now,
            "expires_at": now + self._ttl,
        }
        key = document_key(doc_id)
        with guarded():
            ref = self._db.collection(REJECTED).document(key)
            try:
                ref.create(record, timeout=TIMEOUT)
            except gexc.AlreadyExists:
                count = {"deliveries": firestore.Increment(1), "last_delivery_at": now}
                ref.update(count, timeout=TIMEOUT)
        return key

    # -- operator queries -----------------------------------------------------------------------
    # Equality filters only (status, project, event_type): Firestore serves them from its
    # single-field indexes. Listings are projected to a few fields, never the payload.

    def count(self, status: RecordStatus, *, project: str | None = None) -> int:
        """Notifications in ``status`` (of ``project``, if given): an exact count aggregation."""
        query = self._db.collection(NOTIFICATIONS).where(
            filter=FieldFilter("status", "==", status.value)
        )
        if project is not None:
            query = query.where(filter=FieldFilter("project", "==", project))
        return self._count(query)

    def count_rejected(self) -> int:
        """Records in ``rejected/``: messages that were never valid events."""
        return self._count(self._db.collection(REJECTED))

    def projects(self) -> set[str]:
        """The projects with an ``applications/`` record (every project an event was sent for)."""
        with guarded():
            return {snap.id for snap in self._db.collection(APPLICATIONS).select([]).stream()}

    def listing(
        self,
        status: RecordStatus,
        *,
        project: str | None = None,
        event_type: str | None = None,
    ) -> Iterator[Record]:
        """The notifications in ``status`` (narrowed by project and type), without payloads."""
        query = self._db.collection(NOTIFICATIONS).where(
            filter=FieldFilter("status", "==", status.value)
        )
        for name, value in (("project", project), ("event_type", event_type)):
            if value is not None:
                query = query.where(filter=FieldFilter(name, "==", value))
        with guarded():
            for snapshot in query.select(_LISTED).stream(timeout=QUERY_TIMEOUT):
                yield _listed(natural_id(snapshot.id), snapshot.to_dict() or {})

    def notification(self, event_id: str) -> StoredNotification | None:
        """The record as it is now, with its event (decompressed); None if there is none."""
        ref = self._db.collection(NOTIFICATIONS).document(document_key(event_id))
        with guarded():
            snapshot = ref.get(retry=read_retry(QUERY_TIMEOUT), timeout=QUERY_TIMEOUT)
        if not snapshot.exists:
            return None
        data = snapshot.to_dict() or {}
        payload, unreadable = None, None
        blob = data.get("payload")
        if isinstance(blob, bytes):
            try:
                payload = unpack(blob)
            except zlib.error as exc:  # its message names no content
                unreadable = f"{type(exc).__name__}: {str(exc)[:100]}"
        return StoredNotification(
            event_id=event_id,
            status=str(data.get("status") or ""),
            replays=int(data.get("replays") or 0),
            payload=payload,
            unreadable=unreadable,
        )

    @staticmethod
    def _count(query: Any) -> int:
        with guarded():
            return int(query.count(alias="n").get(timeout=QUERY_TIMEOUT)[0][0].value)


def _listed(event_id: str, data: dict[str, Any]) -> Record:
    return Record(
        event_id=event_id,
        status=str(data.get("status") or ""),
        project=data.get("project"),
        event_type=data.get("event_type"),
        attempts=int(data.get("attempts") or 0),
        replays=int(data.get("replays") or 0),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        lease_expires_at=data.get("lease_expires_at"),
        last_error=data.get("last_error"),
        failed_at=data.get("failed_at"),
    )
