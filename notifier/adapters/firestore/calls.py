"""Firestore calls as the adapters make them: bounded in time, and any failure they leave
unhandled turned into :class:`~notifier.domain.errors.StoreUnavailable` (nothing was decided)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from notifier.domain.errors import StoreUnavailable

TIMEOUT = 10.0  # one document read or written
QUERY_TIMEOUT = 30.0  # operator queries read more than one record


@functools.cache
def read_retry(timeout: float) -> gretry.Retry:
    """A document read's retry that ends within ``timeout``: the client's default for reads
    (BatchGetDocuments) retries a Firestore that never answers for minutes, whatever the call's
    timeout says (tests/integration/test_store.py shows both)."""
    return gretry.Retry(
        predicate=gretry.if_transient_error,
        initial=0.1,
        maximum=1.0,
        multiplier=2.0,
        timeout=timeout,
    )


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Any Firestore failure not handled inside the block is transient: nothing was decided."""
    try:
        yield
    except (gexc.GoogleAPICallError, gexc.RetryError) as exc:
        raise StoreUnavailable(f"firestore: {type(exc).__name__}") from exc
