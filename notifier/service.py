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
from dataclasses import dataclass
from typing import Protocol

from notifier.applications import ApplicationDirectory
from notifier.errors import (
    BadCredentials,
    ClaimHeld,
    NotifierError,
    Permanent,
    RateLimited,
    Transient,
)
from notifier.events import Delivery, Event
from notifier.store import Claim, ClaimState
from notifier.svix_sender import Sent

SENT, DUPLICATE, FAILED, RETRIED = "sent", "duplicate", "failed", "retried"
_BACKOFF_FIRST, _BACKOFF_MAX = 0.5, 8.0


class NotificationStore(Protocol):
    def claim(self, event: Event, delivery: Delivery) -> Claim: ...
    def mark_sent(self, claim: Claim, svix_message_id: str | None, svix_status: int) -> None: ...
    def mark_failed(self, claim: Claim, error: NotifierError) -> bool: ...
    def release(self, claim: Claim, error: NotifierError, hold: float = 0.0) -> bool: ...


class MessageSender(Protocol):
    def send(self, event: Event, replays: int = 0) -> Sent: ...


@dataclass(frozen=True)
class Outcome:
    outcome: str  # sent | duplicate | failed | retried
    attempts: int = 0
    svix_status: int | None = None
    svix_message_id: str | None = None
    error: NotifierError | None = None
    retries: int = 0  # in-process retries of the Svix call
    waited: float = 0.0  # seconds spent waiting between them

    @property
    def must_retry(self) -> bool:
        """True when Pub/Sub must deliver again: the event is not done for good."""
        return self.outcome == RETRIED


class Notifier:
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
        try:
            claim = self._store.claim(event, delivery or Delivery())
        except Transient as exc:
            return Outcome(RETRIED, error=exc)
        if claim.state is ClaimState.SENT:
            return Outcome(DUPLICATE, claim.attempts, svix_message_id=claim.svix_message_id)
        if claim.state is ClaimState.FAILED:
            return Outcome(DUPLICATE, claim.attempts, error=Permanent("already failed"))
        if claim.state is ClaimState.HELD:
            held = ClaimHeld(f"another delivery holds the claim for {claim.held_for:.0f}s more")
            held.retry_after = claim.held_for
            return Outcome(RETRIED, claim.attempts, error=held)
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
            return Outcome(RETRIED, claim.attempts, sent.status, sent.message_id, exc, retries)
        return Outcome(SENT, claim.attempts, sent.status, sent.message_id, None, retries, waited)

    def _fail(self, claim: Claim, exc: Permanent, retries: int) -> Outcome:
        try:
            self._store.mark_failed(claim, exc)
        except Transient as store_error:
            # Unrecorded: stay pending; the next delivery meets the same refusal and records it.
            return Outcome(RETRIED, claim.attempts, exc.status, error=store_error, retries=retries)
        return Outcome(FAILED, claim.attempts, exc.status, error=exc, retries=retries)

    def _give_up(self, claim: Claim, exc: Transient, retries: int, waited: float) -> Outcome:
        """Out of budget (or an operator must act): pending with why, for Pub/Sub to retry.

        After a 429 the claim stays held for the ``Retry-After`` Svix asked for, so that no
        redelivery (of this message or a copy) calls Svix sooner than it was told.
        """
        hold = (exc.retry_after or 0.0) if isinstance(exc, RateLimited) else 0.0
        with contextlib.suppress(Transient):  # else the lease runs out; the record says pending
            self._store.release(claim, exc, hold)
        return Outcome(RETRIED, claim.attempts, exc.status, None, exc, retries, waited)
