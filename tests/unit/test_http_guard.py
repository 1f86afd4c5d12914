"""The WSGI guard, in-process through functions-framework's own app (as main.py installs it)."""

from __future__ import annotations

import functions_framework
import pytest
from functions_framework._http import gunicorn as ff_gunicorn

from devstack.function_server import ROOT
from notifier.handlers import http_guard


@pytest.fixture(scope="module")
def client():
    app = functions_framework.create_app("app_portal", str(ROOT / "main.py"), "http")
    assert isinstance(app.wsgi_app, http_guard.Guard)  # main.py installed it
    return app.test_client()


def test_a_url_over_the_bound_is_a_414_before_the_function_runs(client):
    answer = client.get("/app-portal?project=" + "a" * http_guard.MAX_URL_BYTES)
    assert answer.status_code == 414
    assert answer.get_json()["error"] == "uri_too_long"
    assert answer.headers["Cache-Control"] == "no-store"


def test_a_declared_length_over_the_cap_is_a_413_unread(client):
    answer = client.post(
        "/app-portal",
        data=b"{}",
        environ_overrides={"CONTENT_LENGTH": str(http_guard.BODY_CAP + 1)},
    )
    assert (answer.status_code, answer.get_json()["error"]) == (413, "too_large")


def test_a_content_length_that_is_not_a_number_is_a_400(client):
    answer = client.post("/app-portal", data=b"{}", environ_overrides={"CONTENT_LENGTH": "12abc"})
    assert (answer.status_code, answer.get_json()["error"]) == (400, "bad_content_length")


def test_a_portal_body_over_16_kib_is_a_413(client):
    answer = client.post("/app-portal", data=b'{"project": "' + b"a" * 20_000 + b'"}')
    assert (answer.status_code, answer.get_json()["error"]) == (413, "too_large")


def test_the_push_envelope_cap_holds_a_10_mb_message_with_100_maximal_attributes():
    base64_message = 4 * -(-10_000_000 // 3)
    attributes = 100 * (256 + 1024) * 2  # twice over, for JSON quoting and escapes
    assert base64_message + attributes + 4096 < http_guard.BODY_CAP < 32_000_000


def test_gunicorn_is_given_a_request_line_bound():
    http_guard.install(type("App", (), {"wsgi_app": lambda *a: None})())
    application = ff_gunicorn.GunicornApplication(lambda *a: None, "127.0.0.1", 0, False)
    assert application.cfg.limit_request_line == http_guard.MAX_URL_BYTES
