"""The exactly-once algorithm: claim the event, send it once, record what happened.

It speaks only to the two ports below, so it reads as the domain and its tests need no cloud.
Pub/Sub delivers at least once; the claim in the store and the fixed idempotency key at Svix make
every extra delivery harmless while Svix remembers them (the key 12 h, the ``eventId`` a day).
Past ``dedup_window`` since an event's first Svix call, a resend first looks the event up by
``eventId``. Nothing here raises for an outcome: :class:`Outcome` says whether the delivery is
done for good or must be retried by Pub/Sub.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from notifier.domain.claims import DEDUP_WINDOW_SECONDS, Claim, ClaimState, Look
from notifier.domain.errors import (
    BadCredentials,
    ClaimHeld,
    ClaimLost,
    IdConflict,
    Permanent,
    RateLimited,
    ShuttingDown,
    SvixConflict,
    Transient,
)
from notifier.domain.events import Delivery, Event
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.domain.ports import MessageSender, NotificationStore
from notifier.usecases.applications import ApplicationDirectory
from notifier.usecases.leases import Lease, LeaseKeeper

_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 8.0
# An outcome write that failed is tried again after these pauses while its first try began less
# than _RECORD_WINDOW ago: a reset connection heals at once; a stalled one (a timeout) is not.
_RECORD_PAUSES, _RECORD_WINDOW = (0.2, 0.5), 2.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    """Delivers events exactly once over the ports: a store that claims, a sender that sends."""

    def __init__(
        self,
        store: NotificationStore,
        sender: MessageSender,
        applications: ApplicationDirectory,
        *,
        retry_budget: float,
        dedup_window: float = DEDUP_WINDOW_SECONDS,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] | None = None,
        drift: Callable[[Event], str | None] | None = None,
        leases: LeaseKeeper | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        # ``sleep`` None: waits end early once ``stopping`` is set (SIGTERM); ``leases`` None:
        # claims are never renewed (tests of the outcome table).
        self._drift = drift  # the catalog check (DriftWatch), run once a delivery is decided
        self._store = store
        self._sender = sender
        self._applications = applications
        self._budget = retry_budget
        self._dedup_window = dedup_window
        self._sleep = sleep
        self._clock = clock
        self._now = now or _utc_now
        self._leases = leases
        self._stopping = stopping or threading.Event()

    def deliver(
        self, event: Event, delivery: Delivery | None = None, looked: Look | None = None
    ) -> Outcome:
        """Claims the event, sends it once if this delivery may, records what happened.

        Never raises for an outcome: a store or Svix failure is a ``retried`` outcome that says
        why, so each entry answers as its transport needs (raise, 503, leave in the dead letters).
        An event Svix was given (sent or refused) is then checked against the catalog, after the
        fact: drift is reported on the outcome, never held against the delivery. ``looked``: the
        event's record as already read for this delivery (a redelivery), for the claim to reuse.
        """
        outcome = self._deliver(event, delivery, looked)
        if self._drift is not None and outcome.kind in (OutcomeKind.SENT, OutcomeKind.FAILED):
            cause = self._drift(event)
            if cause is not None:
                return dataclasses.replace(outcome, catalog_drift=cause)
        return outcome

    def _deliver(self, event: Event, delivery: Delivery | None, looked: Look | None) -> Outcome:
        started = self._clock()
        try:
            claim = self._store.claim(event, delivery or Delivery(), looked)
        except Transient as exc:
            return Outcome(OutcomeKind.RETRIED, error=exc)
        if claim.state is ClaimState.CONFLICT:  # another tenant's id: refused, nothing of theirs
            project, event_type = claim.recorded_as or ("", "")
            return Outcome(OutcomeKind.REJECTED, error=IdConflict(project, event_type))
        if claim.state is ClaimState.SENT:
            return Outcome(
                OutcomeKind.DUPLICATE, claim.attempts, svix_message_id=claim.svix_message_id
            )
        if claim.state is ClaimState.FAILED:
            return Outcome(OutcomeKind.DUPLICATE, claim.attempts, error=Permanent("already failed"))
        if claim.state is ClaimState.HELD:
            held = ClaimHeld(f"another delivery holds the claim for {claim.held_for:.0f}s more")
            held.retry_after = claim.held_for
            return Outcome(OutcomeKind.RETRIED, claim.attempts, error=held)
        lease = self._leases.hold(claim, started) if self._leases is not None else None
        try:
            return self._send(event, claim, lease)
        finally:
            if lease is not None:
                self._end(lease, claim)

    def _end(self, lease: Lease | None, claim: Claim) -> Claim:
        """Stops renewing; the claim as its last renewal left it, for the conditioned writes."""
        return claim if lease is None or self._leases is None else self._leases.end(lease)

    def _send(self, event: Event, claim: Claim, lease: Lease | None) -> Outcome:
        deadline = self._clock() + self._budget
        retries, waited, backoff = 0, 0.0, _BACKOFF_FIRST
        look_up, at_once = self._windows_may_have_closed(claim), True
        hold_until = 0.0  # no call to Svix for this event before then: its Retry-After
        while True:
            try:
                if lease is not None and self._leases is not None:
                    self._leases.check(lease)  # a holder that lost its claim stops here
                self._applications.ensure(event.project)
                held = self._sender.find(event) if look_up else None
                look_up = False  # not held: from here on, Svix's windows guard the sending
                sent = held if held is not None else self._sender.send(event, claim.replays)
                break
            except Permanent as exc:
                return self._fail(self._end(lease, claim), exc, retries)
            except ClaimLost as exc:
                hold = hold_until - self._clock()
                return self._give_up(self._end(lease, claim), exc, retries, waited, hold)
            except Transient as exc:
                asked = exc.retry_after if isinstance(exc, RateLimited) else None
                if asked is not None:
                    hold_until = self._clock() + asked
                # Svix's Retry-After is the least we wait: a zero (or missing) one still backs
                # off, so a run of 429s never turns into a loop of calls with no pause.
                wait = backoff if asked is None else max(asked, backoff)
                if isinstance(exc, SvixConflict) and at_once and self._clock() <= deadline:
                    wait, at_once = 0.0, False  # the next call finds the application
                elif isinstance(exc, BadCredentials) or self._clock() + wait > deadline:
                    hold = hold_until - self._clock()
                    return self._give_up(self._end(lease, claim), exc, retries, waited, hold)
                else:
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                if self._pause(wait):  # SIGTERM: stop waiting, keep what Svix asked, leave
                    hold = hold_until - self._clock()
                    stop = ShuttingDown("the instance is stopping", retry_after=max(hold, 1.0))
                    return self._give_up(self._end(lease, claim), stop, retries, waited, hold)
                retries, waited = retries + 1, waited + wait
        failure = self._record(lambda: self._store.mark_sent(claim, sent.message_id, sent.status))
        if failure is not None:
            # Svix has it; the next delivery gets the replayed answer, or 409 or the lookup
            # (both find the message by eventId), and records it: free the claim for it now.
            with contextlib.suppress(Transient):
                self._store.release(self._end(lease, claim), failure)
            return Outcome(
                OutcomeKind.RETRIED, claim.attempts, sent.status, sent.message_id, failure, retries
            )
        return Outcome(
            OutcomeKind.SENT, claim.attempts, sent.status, sent.message_id, None, retries, waited
        )

    def _windows_may_have_closed(self, claim: Claim) -> bool:
        """True when an earlier delivery may have called Svix longer ago than the window: Svix
        may have forgotten the idempotency key and the ``eventId``, so only a lookup can tell
        whether it holds the message."""
        first = claim.svix_first_call_at
        return first is not None and (self._now() - first).total_seconds() >= self._dedup_window

    def _pause(self, seconds: float) -> bool:
        """Waits ``seconds``; True when the instance is stopping (then at once)."""
        if self._sleep is None:
            return self._stopping.wait(seconds)
        self._sleep(seconds)
        return self._stopping.is_set()

    def _record(self, write: Callable[[], object]) -> Transient | None:
        """An outcome write, tried again quickly (bounded) if it failed; why, if it never landed."""
        started = self._clock()
        for pause in (*_RECORD_PAUSES, None):
            try:
                write()
                return None
            except Transient as exc:
                if pause is None or self._clock() - started > _RECORD_WINDOW:
                    return exc
                (self._sleep or time.sleep)(pause)
        return None  # not reached: the last pause is None

    def _fail(self, claim: Claim, exc: Permanent, retries: int) -> Outcome:
        store_error = self._record(lambda: self._store.mark_failed(claim, exc))
        if store_error is not None:
            # Unrecorded: stay pending; the next delivery meets the same refusal and records it.
            return Outcome(
                OutcomeKind.RETRIED, claim.attempts, exc.status, error=store_error, retries=retries
            )
        return Outcome(OutcomeKind.FAILED, claim.attempts, exc.status, error=exc, retries=retries)

    def _give_up(
        self, claim: Claim, exc: Transient, retries: int, waited: float, hold: float
    ) -> Outcome:
        """Out of budget, stopping, or an operator must act: pending with why, for Pub/Sub.

        After a 429 the claim stays held for what is left of the ``Retry-After`` Svix asked for
        (``hold``), so that no redelivery (of this message or a copy) calls Svix sooner than told.
        """
        hold = max(hold, 0.0)
        with contextlib.suppress(Transient):  # else the lease runs out; the record says pending
            self._store.release(claim, exc, hold)
        return Outcome(OutcomeKind.RETRIED, claim.attempts, exc.status, None, exc, retries, waited)
