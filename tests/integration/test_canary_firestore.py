"""The canary with its real wiring: a signed heartbeat lands in the Firestore emulator."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest
from svix.webhooks import Webhook

from notifier import wiring
from notifier.heartbeat_store import FirestoreHeartbeatLog

MAIN = Path(__file__).resolve().parents[2] / "main.py"
SECRET = "whsec_" + base64.b64encode(b"canary-integration-key-012345678").decode()


@pytest.fixture
def client(db, monkeypatch):
    """As deployed: no Svix token, the secret as Secret Manager mounts a file's content."""
    monkeypatch.setenv("NOTIFIER_CANARY_SECRET", SECRET + "\n")
    monkeypatch.delenv("SVIX_API_KEY", raising=False)
    wiring.reset()
    app = functions_framework.create_app(target="canary", source=str(MAIN), signature_type="http")
    yield app.test_client()
    wiring.reset()


def signed_post(client, body, *, secret=SECRET, msg_id="msg_2hb"):
    now = datetime.now(UTC)
    headers = {
        "svix-id": msg_id,
        "svix-timestamp": str(int(now.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, now, body),
        "content-type": "application/json",
    }
    return client.post("/", data=body, headers=headers)


def heartbeat(event_id, published_at):
    return json.dumps(
        {
            "object": "event",
            "id": event_id,
            "type": "notifier.heartbeat",
            "project": "notifier-heartbeat",
            "time": published_at,
            "data": {"published_at": published_at},
            "source": "https://notifier.internal/heartbeat",
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "version": "2023-01-30",
        }
    )


def test_a_signed_heartbeat_is_kept_once_and_becomes_the_latest(client, db):
    published = datetime.now(UTC) - timedelta(seconds=3)
    body = heartbeat("hb-4242", published.isoformat().replace("+00:00", "Z"))
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
    body = heartbeat("hb-4243", "2026-11-30T10:05:00Z")
    assert signed_post(client, body, secret=other).status_code == 401
    assert list(db.collection("heartbeats").stream()) == []
