"""The exactly-once algorithm: claim the event, send it once, record what happened.

It speaks only to the two ports below, so it reads as the domain and its tests need no cloud.
Pub/Sub delivers at least once; the claim in the store and the fixed idempotency key at Svix make
every extra delivery harmless. Nothing here raises for an outcome: :class:`Outcome` says whether
the delivery is done for good or must be retried by Pub/Sub.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from notifier.applications import ApplicationDirectory
from notifier.domain.claims import Claim, ClaimState
from notifier.domain.events import Delivery, Event
from notifier.domain.outcomes import Outcome, OutcomeKind
from notifier.domain.ports import MessageSender, NotificationStore
from notifier.errors import (
    BadCredentials,
    ClaimHeld,
    IdConflict,
    Permanent,
    RateLimited,
    Transient,
)

_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 8.0


class Notifier:
    """Delivers events exactly once over the ports: a store that claims, a sender that sends."""

    def __init__(
        self,
        store: NotificationStore,
        sender: MessageSender,
        applications: ApplicationDirectory,
        *,
        retry_budget: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._sender = sender
        self._applications = applications
        self._budget = retry_budget
        self._sleep = sleep
        self._clock = clock

    def deliver(self, event: Event, delivery: Delivery | None = None) -> Outcome:
        """Claims the event, sends it once if this delivery may, records what happened.

        Never raises for an outcome: a store or Svix failure is a ``retried`` outcome that says
        why, so each entry answers as its transport needs (raise, 503, leave in the dead letters).
        """
        try:
            claim = self._store.claim(event, delivery or Delivery())
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
        return self._send(event, claim)

    def _send(self, event: Event, claim: Claim) -> Outcome:
        deadline = self._clock() + self._budget
        retries, waited, backoff = 0, 0.0, _BACKOFF_FIRST
        while True:
            try:
                self._applications.ensure(event.project)
                sent = self._sender.send(event, claim.replays)
                break
            except Permanent as exc:
                return self._fail(claim, exc, retries)
            except Transient as exc:
                wait = exc.retry_after if isinstance(exc, RateLimited) else None
                wait = backoff if wait is None else wait
                if isinstance(exc, BadCredentials) or self._clock() + wait > deadline:
                    return self._give_up(claim, exc, retries, waited)
                self._sleep(wait)
                retries, waited = retries + 1, waited + wait
                backoff = min(backoff * 2, _BACKOFF_MAX)
        try:
            self._store.mark_sent(claim, sent.message_id, sent.status)
        except Transient as exc:
            # Svix has it; the next delivery gets 409 or the replayed answer and records it.
            return Outcome(
                OutcomeKind.RETRIED, claim.attempts, sent.status, sent.message_id, exc, retries
            )
        return Outcome(
            OutcomeKind.SENT, claim.attempts, sent.status, sent.message_id, None, retries, waited
        )

    def _fail(self, claim: Claim, exc: Permanent, retries: int) -> Outcome:
        try:
            self._store.mark_failed(claim, exc)
        except Transient as store_error:
            # Unrecorded: stay pending; the next delivery meets the same refusal and records it.
            return Outcome(
                OutcomeKind.RETRIED, claim.attempts, exc.status, error=store_error, retries=retries
            )
        return Outcome(OutcomeKind.FAILED, claim.attempts, exc.status, error=exc, retries=retries)

    def _give_up(self, claim: Claim, exc: Transient, retries: int, waited: float) -> Outcome:
        """Out of budget (or an operator must act): pending with why, for Pub/Sub to retry.

        After a 429 the claim stays held for the ``Retry-After`` Svix asked for, so that no
        redelivery (of this message or a copy) calls Svix sooner than it was told.
        """
        hold = (exc.retry_after or 0.0) if isinstance(exc, RateLimited) else 0.0
        with contextlib.suppress(Transient):  # else the lease runs out; the record says pending
            self._store.release(claim, exc, hold)
        return Outcome(OutcomeKind.RETRIED, claim.attempts, exc.status, None, exc, retries, waited)
