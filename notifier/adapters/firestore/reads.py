"""A record's one read on the hot path (a claim's, a redelivery's look), decoded from Firestore's
protobuf, without the client's proto-plus marshalling and its two deep copies
(docs/decisions/hot-writes-as-protobufs.md).

The request goes through the client's own ``batch_get_documents`` (its transport, metadata, retry
and timeout); :class:`Snapshot` answers as ``DocumentSnapshot`` does (``exists``, ``to_dict()``,
``update_time``), with the values the client decodes
(tests/integration/test_firestore_protobufs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.document import DocumentReference
from google.cloud.firestore_v1.types import common, document, firestore

_Request = firestore.BatchGetDocumentsRequest.pb()
_Mask = common.DocumentMask.pb()


class Snapshot:
    """A document as read: ``exists``, its fields (``to_dict()``) and its ``update_time``."""

    __slots__ = ("_data", "exists", "update_time")

    def __init__(self, data: dict[str, Any] | None, update_time: Any = None) -> None:
        self.exists = data is not None
        self.update_time = update_time
        self._data = data

    def to_dict(self) -> dict[str, Any] | None:
        """The fields read (a copy of the mapping; the values are not to be changed)."""
        return None if self._data is None else dict(self._data)


def get(
    ref: DocumentReference, fields: Sequence[str] | None, *, retry: Any, timeout: float
) -> Snapshot:
    """``ref.get(fields, retry=retry, timeout=timeout)``: only ``fields`` of the document, if
    given."""
    client = ref._client
    request = _Request(database=client._database_string, documents=[ref._document_path])
    if fields is not None:
        request.mask.field_paths.extend(sorted(fields))
    responses = client._firestore_api.batch_get_documents(
        request=firestore.BatchGetDocumentsRequest.wrap(request),
        metadata=client._rpc_metadata,
        retry=retry,
        timeout=timeout,
    )
    response = next(iter(responses), None)
    if response is None or response._pb.WhichOneof("result") != "found":
        return Snapshot(None)
    found = response._pb.found
    data = {name: decode(value, client) for name, value in found.fields.items()}
    return Snapshot(data, _datetime(found.update_time))


def decode(value: Any, client: Any) -> Any:
    """A ``Value`` protobuf as the client decodes it (``_helpers.decode_value``)."""
    kind = value.WhichOneof("value_type")
    if kind == "string_value":
        return value.string_value
    if kind == "integer_value":
        return value.integer_value
    if kind == "timestamp_value":
        return _datetime(value.timestamp_value)
    if kind == "null_value":
        return None
    if kind == "boolean_value":
        return value.boolean_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "map_value":
        return {name: decode(item, client) for name, item in value.map_value.fields.items()}
    if kind == "array_value":
        return [decode(item, client) for item in value.array_value.values]
    return _helpers.decode_value(document.Value.wrap(value), client)  # references, points


def _datetime(timestamp: Any) -> DatetimeWithNanoseconds:
    """A ``Timestamp`` as the client decodes one: to the nanosecond, in UTC."""
    decoded: DatetimeWithNanoseconds = DatetimeWithNanoseconds.from_timestamp_pb(timestamp)  # type: ignore[no-untyped-call]
    return decoded
