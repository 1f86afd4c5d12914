"""Keeps live claims alive: one thread per process renews each claim held longer than a period.

A claim's lease is short (``NOTIFIER_LEASE_SECONDS``, 10 s) so that the event of a holder that
died is taken over within seconds; a holder still at work has its lease renewed every third of it
(docs/decisions/renewed-claims.md). A delivery shorter than a period is never renewed: the normal
path keeps its round trips.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from notifier.domain.claims import Claim
from notifier.domain.errors import ClaimLost, NotifierError, Transient

RENEWALS_PER_LEASE = 3  # a renewal every third of the lease: two may fail before it runs out


class Lease:
    """One delivery's hold on its claim: the claim's latest version, and until when it holds."""

    def __init__(self, claim: Claim, since: float, lease_seconds: float) -> None:
        self.claim = claim
        self.expires = since + lease_seconds  # by the keeper's clock, from the write's start
        self.due = since + lease_seconds / RENEWALS_PER_LEASE
        self.lost: NotifierError | None = None
        self._renewing = False


class LeaseKeeper:
    """Renews the leases of this process's live claims from one background thread.

    ``renew`` is the store's conditioned renewal (:meth:`NotificationStore.renew`): the claim with
    its new version, or None when the claim was taken. ``background=False``: no thread, the
    caller runs :meth:`renew_due` (tests on a fake clock).
    """

    def __init__(
        self,
        renew: Callable[[Claim], Claim | None],
        lease_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
    ) -> None:
        self._renew = renew
        self.lease_seconds = lease_seconds
        self.period = lease_seconds / RENEWALS_PER_LEASE
        self._clock = clock
        self._background = background
        self._held: list[Lease] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._wakes_at = float("inf")  # when the keeper thread wakes next, unless notified

    def hold(self, claim: Claim, since: float) -> Lease:
        """Keeps ``claim`` (granted by a write started at ``since``) alive until :meth:`end`."""
        lease = Lease(claim, since, self.lease_seconds)
        with self._changed:
            self._held.append(lease)
            if self._background and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
                self._thread.start()
            if lease.due < self._wakes_at:  # else the keeper wakes in time: no thread switch
                self._changed.notify_all()
        return lease

    def check(self, lease: Lease) -> None:
        """Raises :class:`ClaimLost` unless the claim is this delivery's for a period more: a
        renewal found it taken or failed, or none succeeded in time (the store is stalled)."""
        if lease.lost is not None:
            raise lease.lost
        if self._clock() >= lease.expires - self.period:
            raise ClaimLost("the lease was not renewed in time")

    def end(self, lease: Lease) -> Claim:
        """Stops renewing (after a renewal in flight lands); the claim as its last write left it,
        for the holder's conditioned writes."""
        with self._changed:
            if lease in self._held:
                self._held.remove(lease)
            while lease._renewing:
                self._changed.wait()
            return lease.claim

    def renew_due(self) -> None:
        """Renews each lease that is due, one at a time."""
        while True:
            with self._changed:
                now = self._clock()
                due = [ls for ls in self._held if ls.due <= now and ls.lost is None]
                if not due:
                    return
                lease = min(due, key=lambda ls: ls.due)
                lease._renewing = True
            started = self._clock()
            try:
                renewed: Claim | NotifierError | None = self._renew(lease.claim)
            except Transient as exc:
                renewed = exc
            with self._changed:
                lease._renewing = False
                if isinstance(renewed, Claim):
                    lease.claim = renewed
                    lease.expires = started + self.lease_seconds
                    lease.due = started + self.period
                elif renewed is None:
                    lease.lost = ClaimLost("the claim was taken by another delivery")
                else:
                    lease.lost = ClaimLost(f"the renewal failed: {renewed.code}")
                if lease.lost is not None and lease in self._held:
                    self._held.remove(lease)
                self._changed.notify_all()

    def _run(self) -> None:
        while True:
            with self._changed:
                now = self._clock()
                waiting = [ls.due for ls in self._held if ls.lost is None]
                self._wakes_at = min(waiting, default=float("inf"))
                if self._wakes_at > now:
                    self._changed.wait(None if not waiting else self._wakes_at - now)
                    continue
                self._wakes_at = now  # renewing: a new lease is due later than these
            self.renew_due()
