"""The two writes every new event makes (its record's create, and ``sent``), built as Firestore's
own ``Write`` protobufs, without the client's per-field parsing and proto-plus marshalling
(docs/decisions/hot-writes-as-protobufs.md).

Each is the very ``Write`` the client builds for ``create()`` and ``update()``, committed by the
client's own batch with its retry and timeout (tests/integration/test_firestore_protobufs.py).
Field names are plain names (no dotted paths); values are what the records hold: None, bool, int,
float, str, bytes, datetime, and dicts and lists of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from google.cloud.firestore_v1.document import DocumentReference
from google.cloud.firestore_v1.types import common, document, write

_Write = write.Write.pb()
_Document = document.Document.pb()
_Value = document.Value.pb()
_Mask = common.DocumentMask.pb()
_Precondition = common.Precondition.pb()
_NULL = 0  # google.protobuf.NullValue.NULL_VALUE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def create(ref: DocumentReference, fields: Mapping[str, Any], *, timeout: float) -> Any:
    """``ref.create(fields)``: refused with ``AlreadyExists`` if the document exists; the
    ``WriteResult`` (its ``update_time``) otherwise."""
    pb = _Write(update=_document(ref, fields), current_document=_Precondition(exists=False))
    return _commit(ref, pb, timeout)


def update(
    ref: DocumentReference,
    fields: Mapping[str, Any],
    *,
    delete: Iterable[str] = (),
    timeout: float,
) -> Any:
    """``ref.update({**fields, **{name: DELETE_FIELD for name in delete}})``: refused with
    ``NotFound`` if the document does not exist."""
    paths = sorted([*fields, *delete])
    pb = _Write(
        update=_document(ref, fields),
        update_mask=_Mask(field_paths=paths),
        current_document=_Precondition(exists=True),
    )
    return _commit(ref, pb, timeout)


def _document(ref: DocumentReference, fields: Mapping[str, Any]) -> Any:
    doc = _Document(name=ref._document_path)
    target = doc.fields
    for name, value in fields.items():
        _set(target[name], value)
    return doc


def encode(value: Any) -> Any:
    """A record's value as Firestore's ``Value`` (what ``_helpers.encode_value`` makes of it)."""
    out = _Value()
    _set(out, value)
    return out


def _set(out: Any, value: Any) -> None:
    """Sets the ``Value`` ``out`` to ``value``, in place (no copy of a built one)."""
    if isinstance(value, str):
        out.string_value = value
    elif value is None:
        out.null_value = _NULL
    elif isinstance(value, bool):  # before int: bool is an int
        out.boolean_value = value
    elif isinstance(value, int):
        out.integer_value = value
    elif isinstance(value, datetime):
        _set_timestamp(out.timestamp_value, value)
    elif isinstance(value, float):
        out.double_value = value
    elif isinstance(value, bytes):
        out.bytes_value = value
    elif isinstance(value, Mapping):
        out.map_value.SetInParent()
        for key, item in value.items():
            _set(out.map_value.fields[key], item)
    elif isinstance(value, list | tuple):
        out.array_value.SetInParent()
        for item in value:
            _set(out.array_value.values.add(), item)
    else:
        raise TypeError(f"no Firestore value for a {type(value).__name__}")


def _set_timestamp(out: Any, value: datetime) -> None:
    """As the client converts a datetime: a naive one is UTC; microseconds, or the nanoseconds
    of a ``DatetimeWithNanoseconds``."""
    exact = getattr(value, "timestamp_pb", None)
    if exact is not None:
        out.CopyFrom(exact())
        return
    since = (value if value.tzinfo is not None else value.replace(tzinfo=UTC)) - _EPOCH
    out.seconds = since.days * 86_400 + since.seconds
    out.nanos = since.microseconds * 1000


def _commit(ref: DocumentReference, pb: Any, timeout: float) -> Any:
    """The client's own commit of one write (its default retry, the given timeout)."""
    batch = ref._client.batch()
    batch._add_write_pbs([pb])
    return batch.commit(timeout=timeout)[0]
