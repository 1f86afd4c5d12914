"""What can go wrong, arranged by what happens next.

Three roots, by who acts next. The pipeline decides on :class:`NotifierError`; :class:`SetupError`
ends ``heartbeat setup`` and :class:`CatalogError` ``catalog sync`` with one line for the operator
(neither is ever a delivery's outcome).

::

    NotifierError
    ├── Rejected          the message can never be processed (undecodable, not JSON,
    │   │                 schema-invalid, unsafe ids, too large): record it in ``rejected/``,
    │   │                 acknowledge, never retry
    │   └── IdConflict    its event id is already recorded for another project or type
    ├── Permanent         Svix refused the event for good (400, 404, 413, 422): record ``failed``,
    │                     acknowledge; an operator may replay it after fixing the cause
    └── Transient         a later try can succeed: leave the record ``pending``, raise so that
        │                 Pub/Sub redelivers with backoff
        ├── RateLimited       Svix said 429; ``retry_after`` is how long it asked us to wait
        ├── SvixUnavailable   5xx, timeout, connection error, an unreadable answer
        ├── SvixConflict      409, yet Svix holds no message with this eventId: an application
        │                     was being created at that moment; try again at once
        ├── BadCredentials    401/403: the data is fine, an operator must fix the token
        ├── ClaimHeld         another live delivery owns the event right now
        ├── ClaimLost         this delivery's lease could not be renewed: it stops before Svix
        ├── ShuttingDown      the instance got SIGTERM while this delivery waited: left to Pub/Sub
        └── StoreUnavailable  Firestore failed; nothing was decided

    SetupError            ``heartbeat setup`` could not finish: which step, and why (no secret)
    CatalogError          a schema file in ``schemas/events/`` is broken: nothing was synced
"""

from __future__ import annotations


class NotifierError(Exception):
    """Base of every error the pipeline decides on. ``code`` is short and safe to log and store."""

    code = "error"

    def __init__(self, detail: str = "", *, status: int | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.status = status

    def summary(self) -> str:
        """``code``, the HTTP status where there is one, the detail: what ``last_error`` holds."""
        status = f" {self.status}" if self.status is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.code}{status}{detail}"[:500]


class Rejected(NotifierError):
    """Input that no retry can fix. ``errors`` lists what was wrong, for the rejected record."""

    code = "rejected"

    def __init__(self, reason: str, detail: str = "", *, errors: list[str] | None = None) -> None:
        super().__init__(detail or reason)
        self.code = reason
        self.errors = errors or []


class IdConflict(Rejected):
    """The event id is already recorded for another project or event type: this event is not a
    duplicate of that one, and nothing of that one (its message id, its outcome) is its answer.

    ``recorded_project`` and ``recorded_type`` are for the operator's log line only; the detail,
    which answers and records carry, names neither.
    """

    def __init__(self, recorded_project: str, recorded_type: str) -> None:
        super().__init__(
            "id_conflict", "the event id is already recorded for another project or event type"
        )
        self.recorded_project = recorded_project
        self.recorded_type = recorded_type


class Permanent(NotifierError):
    """Svix refused the event for good: record ``failed``, acknowledge."""

    code = "svix_rejected"


class Transient(NotifierError):
    """A later try can succeed: leave it ``pending`` and have it delivered again."""

    code = "transient"
    retry_after: float | None = None


class RateLimited(Transient):
    """Svix said 429: wait ``retry_after`` seconds before the next try."""

    code = "rate_limited"

    def __init__(self, detail: str = "", *, status: int = 429, retry_after: float | None = None):
        super().__init__(detail, status=status)
        self.retry_after = retry_after


class SvixUnavailable(Transient):
    """Svix did not answer usefully: 5xx, timeout, connection error, unreadable answer."""

    code = "svix_unavailable"


class SvixConflict(Transient):
    """Svix said 409 while creating an application (its own create, or one inline in a message
    or an App Portal request) and holds no message with this eventId: another request was creating
    the application at that moment (Svix creates check-then-insert, and a 409 body does not say
    which conflict it was). Never ``sent``, never ``failed``: try again at once, the next call
    finds the application."""

    code = "svix_conflict"
    retry_after = 0.0


class BadCredentials(Transient):
    """Svix refused the token (401/403): the event is fine, an operator must fix the token."""

    code = "bad_credentials"


class ClaimHeld(Transient):
    """Another live delivery holds the event's claim right now."""

    code = "claim_held"


class ClaimLost(Transient):
    """This delivery's claim was taken, or its renewal failed: it must not call Svix again."""

    code = "claim_lost"


class ShuttingDown(Transient):
    """The instance is stopping (SIGTERM): a waiting delivery leaves its event to Pub/Sub."""

    code = "shutting_down"

    def __init__(self, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class StoreUnavailable(Transient):
    """Firestore failed: nothing was decided."""

    code = "store_unavailable"


class SetupError(RuntimeError):
    """Setup could not finish; the message says which step and why (never a secret)."""


class CatalogError(ValueError):
    """The catalog in the repository is broken; fix the named schema file (nothing was synced)."""
