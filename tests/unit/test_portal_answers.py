"""app_portal's answers that docs/http-api.md's table lists beyond the link itself: another path,
a method it does not take, and a POST body that does not arrive whole (no link, no Svix call)."""

from __future__ import annotations

import io

from tests.unit.test_entry_points import app_portal, deps  # noqa: F401 - fixtures


def test_another_path_is_not_found_and_another_method_not_allowed(app_portal, deps):  # noqa: F811
    deps.store.applications["acme"] = "app_acme"
    missing = app_portal.get("/elsewhere?project=acme")
    assert (missing.status_code, missing.json) == (404, {"error": "not_found"})
    put = app_portal.put("/app-portal", json={"project": "acme"})
    assert (put.status_code, put.headers["Allow"]) == (405, "GET, POST")
    assert deps.sender.links == []


def test_a_post_body_shorter_than_declared_is_a_400_and_asks_svix_nothing(app_portal, deps):  # noqa: F811
    deps.store.applications["acme"] = "app_acme"
    body = b'{"project": "acme"}'
    response = app_portal.post(
        "/app-portal",
        input_stream=io.BytesIO(body[:8]),
        headers={"Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": str(len(body))},
    )
    assert (response.status_code, response.json) == (400, {"error": "incomplete_body"})
    assert deps.sender.links == []
