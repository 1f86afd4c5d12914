"""Counts round trips for real: every Firestore RPC the process makes, by name.

The Firestore client sends every RPC through one generated (GAPIC) client class; while counting,
each RPC method of that class is wrapped to count its calls (a refused write counts too: it was a
round trip). Measurement only, in the benchmark's own process; the function is never patched.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterable

READS = frozenset(
    {"get_document", "batch_get_documents", "run_query", "run_aggregation_query", "list_documents"}
)


class CallCounter:
    """Wraps the named methods of ``cls`` while active (a context manager); thread-safe."""

    def __init__(self, cls: type, names: Iterable[str]) -> None:
        self._cls = cls
        self._names = tuple(names)
        self._originals: dict[str, object] = {}
        self._counts: Counter[str] = Counter()
        self._failed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __enter__(self) -> CallCounter:
        for name in self._names:
            original = self._cls.__dict__[name]
            self._originals[name] = original
            setattr(self._cls, name, self._counting(name, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(self._cls, name, original)
        self._originals.clear()

    def _counting(self, name: str, method):
        @functools.wraps(method)
        def counted(*args, **kwargs):
            with self._lock:
                self._counts[name] += 1
            try:
                return method(*args, **kwargs)
            except Exception:
                with self._lock:
                    self._failed[name] += 1
                raise

        return counted

    def take(self) -> tuple[Counter[str], Counter[str]]:
        """(calls, failed calls) since the last take, and start again from zero."""
        with self._lock:
            counts, failed = self._counts, self._failed
            self._counts, self._failed = Counter(), Counter()
        return counts, failed


def firestore_rpcs() -> CallCounter:
    """A counter of every RPC of the Firestore client (the GAPIC methods its transport serves)."""
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient
    from google.cloud.firestore_v1.services.firestore.transports.base import FirestoreTransport

    names = [
        name
        for name, value in vars(FirestoreTransport).items()
        if isinstance(value, property) and name in vars(FirestoreClient)
    ]
    return CallCounter(FirestoreClient, names)


def split(counts: Counter[str]) -> tuple[int, int]:
    """(reads, writes) of a count of Firestore RPCs."""
    reads = sum(n for name, n in counts.items() if name in READS)
    return reads, sum(counts.values()) - reads
