"""The claim the function does not use, for comparison: always read first, create if missing.

``notifier.adapters.firestore.store`` creates first on a first delivery (one write for a new
event; the refused create and a read for a known one) and reads first only on a Pub/Sub
redelivery. Reading first
every time costs each new event one more round trip. The benchmark measures both, so the choice
stays backed by figures. This wraps the store's own claim (its create path is unchanged):
measurement only, never deployed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from notifier.adapters.firestore import calls, keys, store
from notifier.domain import claims

_create_first = store.FirestoreStore.claim


def read_first_claim(
    self: store.FirestoreStore, event, delivery, looked: claims.Look | None = None
) -> claims.Claim:
    ref = self._db.collection(store.NOTIFICATIONS).document(keys.document_key(event.id))
    if looked is not None and looked.event_id == event.id:
        snapshot = looked.token  # the redelivery's read, made before decoding: not read again
    else:
        with calls.guarded():
            snapshot = ref.get(timeout=calls.TIMEOUT)
    if snapshot.exists:
        return self._claim_existing(ref, snapshot)
    # As a first delivery, so that the store's claim goes straight to its create.
    return _create_first(self, event, dataclasses.replace(delivery, delivery_attempt=None))


def install_read_first() -> None:
    store.FirestoreStore.claim = read_first_claim


@contextlib.contextmanager
def read_first() -> Iterator[None]:
    """In this process, claims read first while the block runs."""
    store.FirestoreStore.claim = read_first_claim
    try:
        yield
    finally:
        store.FirestoreStore.claim = _create_first
