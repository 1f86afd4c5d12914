"""The canary as bootstrap builds it: a signed heartbeat lands in the Firestore emulator."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest

from notifier import bootstrap
from notifier.adapters.firestore.heartbeats import FirestoreHeartbeatLog
from tests import factories

MAIN = Path(__file__).resolve().parents[2] / "main.py"
SECRET = "whsec_" + base64.b64encode(b"canary-integration-key-012345678").decode()


@pytest.fixture
def client(db, monkeypatch):
    """As deployed: no Svix token, the secret as Secret Manager mounts a file's content."""
    monkeypatch.setenv("NOTIFIER_CANARY_SECRET", SECRET + "\n")
    monkeypatch.delenv("SVIX_API_KEY", raising=False)
    bootstrap.reset()
    app = functions_framework.create_app(target="canary", source=str(MAIN), signature_type="http")
    yield app.test_client()
    bootstrap.reset()


def signed_post(client, body, *, secret=SECRET, msg_id="msg_2hb"):
    return client.post("/", data=body, headers=factories.svix_signed(body, secret, msg_id=msg_id))


def test_a_signed_heartbeat_is_kept_once_and_becomes_the_latest(client, db):
    published = datetime.now(UTC) - timedelta(seconds=3)
    body = factories.heartbeat_body("hb-4242", published.isoformat().replace("+00:00", "Z"))
    assert signed_post(client, body).status_code == 200
    assert signed_post(client, body).status_code == 200  # Svix delivering it twice
    saved = db.collection("heartbeats").document("hb-4242").get().to_dict()
    assert saved["event_id"] == "hb-4242"
    assert saved["latency_ms"] >= 3000
    assert saved["expires_at"] > saved["arrived_at"] + timedelta(days=29)
    assert len(list(db.collection("heartbeats").stream())) == 1
    latest = FirestoreHeartbeatLog(db, ttl_days=30).latest()
    assert latest is not None and latest.event_id == "hb-4242"


def test_a_wrongly_keyed_heartbeat_leaves_no_trace(client, db):
    other = "whsec_" + base64.b64encode(b"not-the-canary-key-0123456789abc").decode()
    body = factories.heartbeat_body("hb-4243", "2026-11-30T10:05:00Z")
    assert signed_post(client, body, secret=other).status_code == 401
    assert list(db.collection("heartbeats").stream()) == []
