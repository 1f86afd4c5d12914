"""What the on-call person sees: signed operational webhooks, answered by the function on the
Firestore emulator, then ``status`` (plain and ``--json``) and ``recover --dry-run`` reading
``endpoint_health/`` there."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest

from notifier import bootstrap
from tests import factories
from tests.support import run_cli

MAIN = Path(__file__).resolve().parents[2] / "main.py"
SECRET = "whsec_" + base64.b64encode(b"operational-webhook-key-76543210").decode()


@pytest.fixture
def deliver(db, monkeypatch, capsys):
    """Svix delivering signed operational webhooks to the function, as deployed."""
    monkeypatch.setenv("SVIX_OPERATIONAL_WEBHOOK_SECRET", SECRET)
    bootstrap.reset()
    app = functions_framework.create_app(
        target="operational_webhooks", source=str(MAIN), signature_type="http"
    )
    client = app.test_client()
    sent = iter(range(1, 1000))

    def post(kind, **data):
        body = factories.operational_webhook(kind, **data)
        headers = factories.svix_signed(body, SECRET, msg_id=f"msg_cli{next(sent)}")
        answer = client.post("/", data=body, headers=headers)
        assert answer.status_code == 200, answer.get_data()
        capsys.readouterr()  # the function's own log lines, on stdout as in Cloud Run

    yield post
    bootstrap.reset()


def test_status_shows_a_disabled_endpoint_and_the_events_svix_gave_up_on(deliver, capsys):
    code, out, err = run_cli(capsys, "status", "--json")
    assert code == 0, err
    assert json.loads(out)["endpoints"] == [] and json.loads(out)["exhausted_events"] == []

    fail_since = (datetime.now(UTC) - timedelta(days=5)).isoformat().replace("+00:00", "Z")
    deliver("message.attempt.failing", event_id="evt_cli1", status=503)
    code, out, _ = run_cli(capsys, "status", "--json")
    [endpoint] = json.loads(out)["endpoints"]
    assert (endpoint["project"], endpoint["state"], endpoint["last_status_code"]) == (
        "acme",
        "failing",
        503,
    )
    assert code == 0  # failing alone: Svix is still retrying

    deliver("message.attempt.exhausted", event_id="evt_cli1", status=503)
    deliver("endpoint.disabled", failSince=fail_since)
    code, out, _ = run_cli(capsys, "status", "--json")
    report = json.loads(out)
    assert code == 1  # a disabled endpoint waits for an operator
    [endpoint] = report["endpoints"]
    assert endpoint["state"] == "disabled" and endpoint["since"] == fail_since
    assert endpoint["endpoint_uid"] == "orders-hook"
    assert 5 * 86400 - 60 < endpoint["for_seconds"] < 5 * 86400 + 60
    [gave_up] = report["exhausted_events"]
    assert (gave_up["event_id"], gave_up["project"], gave_up["status_code"]) == (
        "evt_cli1",
        "acme",
        503,
    )

    code, out, _ = run_cli(capsys, "status")
    assert code == 1
    assert "customer endpoints failing, disabled or recovering: 1" in out
    assert "orders-hook" in out and "disabled" in out and "5d" in out
    assert "evt_cli1" in out

    deliver("endpoint.enabled")
    code, out, _ = run_cli(capsys, "status", "--json")
    assert code == 0 and json.loads(out)["endpoints"] == []


def test_recover_dry_run_says_what_it_would_do_without_svix(deliver, capsys, monkeypatch):
    monkeypatch.delenv("SVIX_API_KEY", raising=False)
    fail_since = (datetime.now(UTC) - timedelta(days=3)).isoformat().replace("+00:00", "Z")
    deliver("endpoint.disabled", failSince=fail_since)
    deliver("message.attempt.failing", project="globex", endpointId="ep_globex")
    code, out, err = run_cli(capsys, "recover", "--project", "acme", "--dry-run")
    assert code == 0, err
    assert out.strip() == (
        f"endpoint orders-hook (disabled): would enable it, then recover what failed since "
        f"{fail_since}"
    )
    code, out, _ = run_cli(capsys, "recover", "--project", "acme", "--dry-run", "--json")
    [planned] = json.loads(out)["recoveries"]
    assert planned["endpoint"]["project"] == "acme" and planned["task"] is None
    assert planned["recorded_state"] is None
    code, out, _ = run_cli(capsys, "status", "--json")
    states = {e["project"]: (e["state"], e["recovery"]) for e in json.loads(out)["endpoints"]}
    assert states == {"acme": ("disabled", None), "globex": ("failing", None)}  # none recorded
    code, out, _ = run_cli(capsys, "recover", "--project", "initech", "--dry-run")
    assert code == 1
    assert "no failing, disabled or recovering endpoint recorded for project initech" in out


def test_recover_needs_the_svix_token_unless_dry(deliver, capsys, monkeypatch):
    monkeypatch.delenv("SVIX_API_KEY", raising=False)
    code, _, err = run_cli(capsys, "recover", "--project", "acme")
    assert code == 2 and "SVIX_API_KEY" in err
