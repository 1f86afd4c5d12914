"""The operational_webhooks entry point in-process with an in-memory endpoint health log: the
answers that make Svix retry (503) or stop (405), and a secret that is not one."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import functions_framework
import pytest

from notifier import bootstrap
from notifier.config import Settings
from tests import factories, fakes
from tests.support import logged_lines

MAIN = Path(__file__).resolve().parents[2] / "main.py"
SECRET = "whsec_" + base64.b64encode(b"operational-unit-test-key-012345").decode()


@pytest.fixture
def serve():
    def client(secret=SECRET, endpoints=None):
        settings = Settings(gcp_project="notifier-test", svix_api_key="")
        log = endpoints if endpoints is not None else fakes.MemoryEndpointHealth()
        deps = bootstrap.build_operational(settings, secret, endpoints=log)
        stack.enter_context(bootstrap.provided_operational(deps))
        app = functions_framework.create_app(
            target="operational_webhooks", source=str(MAIN), signature_type="http"
        )
        return app.test_client()

    with contextlib.ExitStack() as stack:
        yield client
    assert bootstrap.operational_built() is None  # nothing built behind the test's back


def post(client, body, msg_id="msg_2unit"):
    return client.post("/", data=body, headers=factories.svix_signed(body, SECRET, msg_id=msg_id))


def test_firestore_unavailable_is_a_503_so_svix_retries_and_the_retry_lands(serve):
    down = fakes.MemoryEndpointHealth(unavailable=True)
    body = factories.operational_webhook("endpoint.disabled")
    with logged_lines() as lines:
        assert post(serve(endpoints=down), body).status_code == 503
    assert down.endpoints == {} and down.seen == set()
    [line] = lines()
    assert (line["severity"], line["reason"]) == ("WARNING", "store_unavailable")
    down.unavailable = False
    assert post(serve(endpoints=down), body).status_code == 200  # Svix's retry, same svix-id
    [health] = down.unhealthy()
    assert health.state.value == "disabled"


def test_only_post_is_accepted(serve):
    answer = serve().get("/")
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"


@pytest.mark.parametrize("secret", [None, "", "not-a-signing-secret"])
def test_a_missing_or_unusable_secret_is_a_503_and_one_error_line(serve, secret):
    with logged_lines() as lines:
        answer = post(serve(secret=secret), factories.operational_webhook("endpoint.disabled"))
    assert answer.status_code == 503
    [line] = lines()
    assert line["severity"] == "ERROR" and line["reason"] == "misconfigured"
    assert "SVIX_OPERATIONAL_WEBHOOK_SECRET" in line["message"]


def test_a_signed_body_that_is_not_an_operational_webhook_is_acknowledged(serve):
    log = fakes.MemoryEndpointHealth()
    with logged_lines() as lines:
        answer = post(serve(endpoints=log), '{"hello": "world"}')
    assert (answer.status_code, answer.get_json()) == (200, {"result": "ignored"})
    assert log.seen == set()
    assert [x["reason"] for x in lines()] == ["unreadable"]
