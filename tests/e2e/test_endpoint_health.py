"""A customer's endpoint down for days, end to end: events through on_event to the Svix twin,
the twin retrying on Svix's schedule (its clock compressed) and sending its operational webhooks,
signed, to operational_webhooks (functions-framework, registered by `notifier operational
setup`), the operator's view in `notifier status`, and `notifier recover` bringing back what the
endpoint missed, each event once."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from svix.api import ApplicationIn, EndpointIn, Svix, SvixOptions

from devstack.emulators import free_port
from devstack.function_server import FunctionServer
from devstack.svix_twin.delivery import REAL_SCHEDULE
from tests import factories
from tests.conftest import PROJECT, TOKEN
from tests.e2e.conftest import log_lines
from tests.integration.test_svix_twin import Receiver
from tests.support import eventually, run_cli


@pytest.fixture
def svix_env(function, monkeypatch):
    """The operator's shell: the Svix token and server (the emulators' variables are set)."""
    monkeypatch.setenv("SVIX_API_KEY", TOKEN)
    monkeypatch.setenv("SVIX_SERVER_URL", function.env["SVIX_SERVER_URL"])
    return function.env["SVIX_SERVER_URL"]


@pytest.fixture
def operational(svix_env, firestore_emulator, tmp_path, capsys) -> Iterator[FunctionServer]:
    """``operational setup`` against the twin (as deploy.sh runs it), then the function served
    with the secret it wrote, as Secret Manager mounts it, and no Svix token."""
    port = free_port()
    secret_file = tmp_path / "operational-secret"
    argv = [
        "operational",
        "setup",
        f"--url=http://127.0.0.1:{port}/",
        f"--secret-file={secret_file}",
    ]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "created" in out
    code, out, _ = run_cli(capsys, *argv, "--json")
    assert json.loads(out)["changed"] is False  # idempotent
    env = {
        **firestore_emulator.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "SVIX_OPERATIONAL_WEBHOOK_SECRET": secret_file.read_text(),
    }
    with FunctionServer(
        "operational_webhooks", env, tmp_path / "operational.log", signature_type="http", port=port
    ) as server:
        yield server


def status(capsys) -> tuple[int, dict]:
    code, out, err = run_cli(capsys, "status", "--json")
    assert code in (0, 1), err
    return code, json.loads(out)


def test_a_failing_endpoint_goes_failing_exhausted_disabled_and_recover_brings_its_events_back(
    svix, deliver, operational, capsys
):
    sdk = Svix(TOKEN, SvixOptions(server_url=svix.url))
    sdk.application.create(ApplicationIn(uid="acme", name="acme"))
    customer = Receiver()
    try:
        sdk.endpoint.create("acme", EndpointIn(url=customer.url, uid="shop"))
        svix.configure(retry_schedule=REAL_SCHEDULE)
        svix.fail_endpoint("acme", "shop", None)  # the customer's server is down

        first = factories.event(project="acme")
        assert deliver(first) == 200
        svix.run_schedule()  # 8 attempts over ~28 h: failing at the 4th, exhausted at the 8th
        assert svix.wait_for_deliveries(10)
        assert eventually(lambda: status(capsys)[1]["exhausted_events"], timeout=20)
        code, report = status(capsys)
        [endpoint] = report["endpoints"]
        # The message events name the endpoint by id only (MessageAttempt*EventData)
        assert (endpoint["project"], endpoint["state"]) == ("acme", "failing")
        assert [e["event_id"] for e in report["exhausted_events"]] == [first["id"]]
        assert code == 0  # failing: Svix is still on it

        svix.advance_clock(120 * 3600)  # five days on, still failing: Svix disables it
        second = factories.event(project="acme")
        assert deliver(second) == 200
        svix.run_schedule()
        assert svix.wait_for_deliveries(10)

        def disabled() -> bool:
            return [e["state"] for e in status(capsys)[1]["endpoints"]] == ["disabled"]

        assert eventually(disabled, timeout=20)
        code, report = status(capsys)
        assert code == 1
        assert report["endpoints"][0]["endpoint_uid"] == "shop"  # endpoint.disabled names it
        assert sorted(e["event_id"] for e in report["exhausted_events"]) == sorted(
            [first["id"], second["id"]]
        )

        svix.heal_endpoint("acme", "shop")  # the customer: "fixed it"
        code, out, err = run_cli(capsys, "recover", "--project", "acme")
        assert code == 0, err
        assert "endpoint shop (disabled): enabled; recovering what failed since" in out
        assert "task qtask_" in out
        assert svix.wait_for_deliveries(10)

        arrived = [json.loads(body)["id"] for _, body in customer.received]
        assert sorted(arrived) == sorted([first["id"], second["id"]])  # each event once
        assert eventually(lambda: status(capsys)[0] == 0, timeout=20)
        assert status(capsys)[1]["endpoints"] == []
    finally:
        customer.close()
    lines = log_lines(operational.log_path)
    assert not [x for x in lines if x.get("reason") in ("bad_signature", "stale", "unsigned")]
    assert customer.url not in operational.log_path.read_text()  # no endpoint URL is logged


def test_a_failing_endpoint_recovered_shows_recovering_until_svix_says_it_delivers(
    svix, deliver, operational, capsys
):
    """Failing, not disabled: ``recover`` records the recovery (Svix's resends are manual
    attempts, which send no operational webhook), so ``status`` shows it recovering with its
    task; a failure webhook after that puts it back to failing; a message that gets through on
    Svix's schedule after failing (``message.attempt.recovered``) makes it healthy."""
    sdk = Svix(TOKEN, SvixOptions(server_url=svix.url))
    sdk.application.create(ApplicationIn(uid="acme", name="acme"))
    customer = Receiver()
    try:
        endpoint_id = sdk.endpoint.create("acme", EndpointIn(url=customer.url, uid="shop")).id
        svix.configure(retry_schedule=REAL_SCHEDULE)
        svix.fail_endpoint("acme", "shop", None)
        first = factories.event(project="acme")
        assert deliver(first) == 200
        svix.run_schedule()  # failing at the 4th attempt, exhausted at the 8th: not disabled
        assert svix.wait_for_deliveries(10)
        assert eventually(lambda: status(capsys)[1]["exhausted_events"], timeout=20)
        assert [e["state"] for e in status(capsys)[1]["endpoints"]] == ["failing"]

        svix.heal_endpoint("acme", "shop")  # the customer fixed it early
        code, out, err = run_cli(capsys, "recover", "--project", "acme")
        assert code == 0, err
        assert f"endpoint {endpoint_id} (failing): recovering what failed since" in out
        task = out.split("task ")[1].split()[0]
        assert task.startswith("qtask_")
        assert svix.wait_for_deliveries(10)
        assert [json.loads(body)["id"] for _, body in customer.received] == [first["id"]]

        code, report = status(capsys)
        assert code == 0  # recovering: Svix is resending, nothing waits for the operator
        [shown] = report["endpoints"]
        assert (shown["state"], shown["changed_by"]) == ("recovering", "notifier.recover")
        assert shown["recovery"]["task_id"] == task
        assert shown["since"] == shown["recovery"]["started_at"]
        code, out, _ = run_cli(capsys, "status")
        assert "recovering" in out and task in out

        svix.fail_endpoint("acme", "shop", None)  # down again: a failure webhook wins
        second = factories.event(project="acme")
        assert deliver(second) == 200
        svix.run_schedule(horizon=3600)  # 4 attempts in 35 min: failing; the 5th in 2 h
        assert svix.settle(10)

        def failing_again() -> bool:
            [e] = status(capsys)[1]["endpoints"]
            return e["state"] == "failing" and e["changed_by"] == "message.attempt.failing"

        assert eventually(failing_again, timeout=20)
        assert status(capsys)[1]["endpoints"][0]["recovery"] is None

        svix.heal_endpoint("acme", "shop")
        svix.run_schedule()  # the 5th attempt gets through: message.attempt.recovered
        assert svix.wait_for_deliveries(10)
        assert eventually(lambda: status(capsys)[1]["endpoints"] == [], timeout=20)
        arrived = [json.loads(body)["id"] for _, body in customer.received]
        assert arrived == [first["id"], second["id"]]  # each once
    finally:
        customer.close()
    assert customer.url not in operational.log_path.read_text()  # no endpoint URL is logged
