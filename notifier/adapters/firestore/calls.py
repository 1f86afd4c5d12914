"""Firestore calls as the adapters make them: bounded in time, and any failure they leave
unhandled turned into :class:`~notifier.domain.errors.StoreUnavailable` (nothing was decided)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from google.api_core import exceptions as gexc

from notifier.domain.errors import StoreUnavailable

TIMEOUT = 10.0  # one document read or written
QUERY_TIMEOUT = 30.0  # operator queries read more than one record


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Any Firestore failure not handled inside the block is transient: nothing was decided."""
    try:
        yield
    except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
        raise StoreUnavailable(f"firestore: {type(exc).__name__}") from exc
