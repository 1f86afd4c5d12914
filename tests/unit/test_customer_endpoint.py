"""The sample customer endpoint of ``make run``: accepts what Svix signs, refuses the rest."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from devstack.customer_endpoint import CustomerEndpoint
from tests import factories

SECRET = "whsec_" + base64.b64encode(b"sample-customer-key-0123456789ab").decode()
OTHER = "whsec_" + base64.b64encode(b"not-the-customer-key-0123456789a").decode()
BODY = json.dumps({"id": "evt_1", "type": "user.created", "data": {"email": "a@example.com"}})


def signed(secret: str, at: datetime | None = None) -> dict[str, str]:
    return factories.svix_signed(BODY, secret, msg_id="msg_1", at=at)


@pytest.fixture
def endpoint(tmp_path):
    with CustomerEndpoint(tmp_path / "received.log") as server:
        server.add("acme", SECRET)
        yield server


def test_a_signed_delivery_is_accepted_and_recorded_without_payload_values(endpoint, tmp_path):
    answer = httpx.post(endpoint.url_for("acme"), content=BODY, headers=signed(SECRET))
    assert answer.status_code == 204
    [got] = endpoint.received()
    assert (got.project, got.event_id, got.event_type, got.signature_valid) == (
        "acme", "evt_1", "user.created", True,
    )  # fmt: skip
    logged = (tmp_path / "received.log").read_text()
    assert "evt_1" in logged and "a@example.com" not in logged


@pytest.mark.parametrize(
    ("project", "headers"),
    [
        ("acme", {"content-type": "application/json"}),
        ("acme", signed(OTHER)),
        ("acme", signed(SECRET, datetime.now(UTC) - timedelta(minutes=6))),
        ("globex", signed(SECRET)),  # no endpoint registered there
    ],
    ids=["unsigned", "wrong key", "stale", "unknown project"],
)
def test_anything_else_is_refused_and_recorded_as_invalid(endpoint, project, headers):
    answer = httpx.post(endpoint.url_for(project), content=BODY, headers=headers)
    assert answer.status_code == 401
    assert [r.signature_valid for r in endpoint.received()] == [False]
