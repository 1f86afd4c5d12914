"""``make run`` as a new user runs it: its tables show webhooks arriving at the sample customer's
endpoint (each sample event once, signature valid) and the heartbeat arriving at the canary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_run_shows_the_customer_deliveries_and_the_heartbeat():
    done = subprocess.run(
        [sys.executable, "-m", "devstack.run_local", "--timeout", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert out.rstrip().endswith("all as expected")
    customer = out.split("the sample customer's endpoint")[1].split("\n\n")[0]
    samples = sorted((ROOT / "samples" / "events").glob("*.json"))
    for sample in samples:
        event_id = json.loads(sample.read_text())["id"]
        [row] = [line for line in customer.splitlines() if line.startswith(event_id)]
        assert row.split()[-3:] == ["1", "valid", "ok"], row
    heartbeat = out.split("the heartbeat at canary")[1].split("\n\n")[0]
    [row] = [line for line in heartbeat.splitlines() if line.startswith("hb-")]
    assert row.rstrip().endswith("verified, recorded, logged  ok")
    assert " ms " in row
    assert "heartbeat request (Scheduler's message)" in out
