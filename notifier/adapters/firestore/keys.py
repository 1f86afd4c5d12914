"""Where a record lives: its document id, spread over the key space, and its payload, packed.

Shared by every collection keyed by a time-ordered id (``notifications/``, ``rejected/``).
"""

from __future__ import annotations

import hashlib
import zlib

_KEY_PREFIX_LENGTH = 8  # hex digits of the key's hash prefix: 2^32 places to land


def document_key(natural_id: str) -> str:
    """The document id of the record whose own id is ``natural_id`` (an event id, ``pubsub-<id>``).

    Those ids are time-ordered, and Firestore hotspots on writes to lexicographically close keys
    (500 writes/s soft limit per range): 8 hex of the id's SHA-256 first spreads consecutive ids
    over the whole key space, and the id itself after keeps the key readable and reversible
    (:func:`natural_id`). Computed, never looked up: it costs no round trip.
    """
    digest = hashlib.sha256(natural_id.encode()).hexdigest()
    return f"{digest[:_KEY_PREFIX_LENGTH]}-{natural_id}"


def natural_id(key: str) -> str:
    """The id ``key`` was made from by :func:`document_key` (an older, unspread key: itself)."""
    own = key[_KEY_PREFIX_LENGTH + 1 :]
    return own if own and document_key(own) == key else key


def pack(body: bytes) -> bytes:
    """Payloads are stored compressed: a 1 MiB event must fit in a 1 MiB Firestore document."""
    return zlib.compress(body, 6)


def unpack(blob: bytes) -> bytes:
    """The payload :func:`pack` stored."""
    return zlib.decompress(blob)
