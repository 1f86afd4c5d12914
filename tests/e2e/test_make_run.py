"""``make run`` as a new user runs it: its tables show webhooks arriving at the sample customer's
endpoint (each sample event once, signature valid), the heartbeat arriving at the canary, and a
customer's endpoint down for days: failing, then disabled in ``notifier status``, and ``notifier
recover`` bringing each event it missed back once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def section(out: str, title: str) -> list[list[str]]:
    """The rows of the table under ``title`` (cells split where two spaces or more are)."""
    table = out.split(title)[1].split("\n\n")[0].splitlines()[3:]  # title, header, rule
    return [re.split(r"\s{2,}", line.strip()) for line in table]


def test_make_run_shows_the_customer_deliveries_the_heartbeat_and_an_outage():
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

    # The outage: the operator's view after each step, as `notifier status --json` has it.
    [failing, disabled, healthy] = section(out, "notifier status --json after each step")
    assert (failing[2], failing[-3:]) == ("failing", ["2", "0", "ok"]), failing
    assert (disabled[2], disabled[-3:]) == ("disabled", ["3", "1", "ok"]), disabled
    assert disabled[5] == "endpoint.disabled"  # Svix disabled it, on its own rule
    assert (healthy[2], healthy[-2:]) == ("healthy", ["0", "ok"]), healthy
    recover = out.split("notifier recover --project globex:\n")[1].split("\n\n")[0]
    assert "(disabled): enabled; recovering what failed since" in recover
    assert "task qtask_" in recover
    missed = section(out, "the events globex's endpoint missed")
    assert [row[0] for row in missed] == ["evt_outage_1", "evt_outage_2", "evt_outage_3"]
    for row in missed:  # 8 failed attempts (Svix's schedule), then recovered once, signed
        assert row[1:] == ["8", "1", "valid", "ok"], row
    outage = out.split("a customer's endpoint down for days")[1]
    assert "http" not in outage and "whsec_" not in outage  # no endpoint URL, no secret
