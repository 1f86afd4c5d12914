"""A Pub/Sub redelivery of a message already done for good ends on one read, before decoding.

Pub/Sub redelivers the same message (the same ``messageId``, the same bytes) when an answer was
lost or late. If that message's own first delivery created the event's record, its bytes were
decoded and validated then, so a record that says ``sent`` (or ``failed``) decides the redelivery
as the full path would, with the floor's single read and nothing else. Anything else (no record,
a record another message created, another project's or type's record, a pending one) goes the
full way, deciding on the same read (the :class:`~notifier.domain.claims.Look` is handed to the
claim): no guarantee rests on this shortcut, and no round trip is added.
"""

from __future__ import annotations

from notifier.domain.claims import Look, RecordStatus
from notifier.domain.errors import Permanent, Transient
from notifier.domain.events import Delivery, Identity
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.domain.ports import NotificationStore


def done_before(
    store: NotificationStore, identity: Identity, delivery: Delivery
) -> tuple[Outcome | None, Look | None]:
    """The outcome of a redelivery of a message already done (None: go the full way), and the
    read it was decided on (None when the store could not be read: the full way reads again).
    The entry asks only for a redelivery (``deliveryAttempt`` above 1): a first delivery's record
    most likely does not exist, and its claim creates first."""
    if not delivery.message_id:  # no message to be the same as
        return None, None
    try:
        looked = store.look(identity.id)
    except Transient:
        return None, None
    same_message = looked.found and looked.pubsub_message_id == delivery.message_id
    if not same_message or (looked.project, looked.event_type) != (identity.project, identity.type):
        return None, looked
    if looked.status == RecordStatus.SENT:
        return Outcome(
            OutcomeKind.DUPLICATE, looked.attempts, svix_message_id=looked.svix_message_id
        ), looked
    if looked.status == RecordStatus.FAILED:
        return Outcome(
            OutcomeKind.DUPLICATE, looked.attempts, error=Permanent("already failed")
        ), looked
    return None, looked
