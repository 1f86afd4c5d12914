"""The floor's work behind functions-framework: what HTTP into the framework costs by itself.

Served with ``FUNCTION_SOURCE=benchmarks/http_floor.py --target=floor``. It decodes the Pub/Sub
message and does only the floor's calls; a ``ce-benchmode: duplicate`` header (a CloudEvent
extension attribute) makes it do the duplicate's single read instead.
"""

from __future__ import annotations

import base64
import json
import os
import threading

import functions_framework
import jsonschema  # noqa: F401  (imported like the function's four dependencies; unused)
from google.cloud import firestore

from benchmarks.floor import Floor, svix_client

_lock = threading.Lock()
_floor: Floor | None = None


def _get() -> Floor:
    global _floor
    with _lock:
        if _floor is None:
            svix = svix_client(os.environ["SVIX_API_KEY"], os.environ["SVIX_SERVER_URL"])
            _floor = Floor(firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"]), svix)
        return _floor


@functions_framework.cloud_event
def floor(cloud_event) -> None:
    event = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
    if cloud_event.get("benchmode") == "duplicate":
        _get().duplicate(event)
    else:
        _get().new(event)
