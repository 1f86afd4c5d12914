"""The canary's answers to bodies that do not arrive whole (docs/http-api.md's canary table):
nothing is verified or recorded from a body the sender did not finish."""

from __future__ import annotations

import io

from tests.unit.test_canary import (  # the canary's fixtures and Svix-made signatures
    client,  # noqa: F401 - a fixture
    heartbeat_body,
    heartbeats,  # noqa: F401 - a fixture
    log_lines,  # noqa: F401 - a fixture
    serve,  # noqa: F401 - a fixture
    signed,
)


def test_a_body_shorter_than_declared_is_400_and_recorded_nowhere(
    client,  # noqa: F811
    heartbeats,  # noqa: F811
    log_lines,  # noqa: F811
):
    body = heartbeat_body()
    response = client.post(
        "/",
        input_stream=io.BytesIO(body.encode()[:40]),
        headers=signed(body),
        environ_overrides={"CONTENT_LENGTH": str(len(body))},  # declared: the whole body
    )
    assert response.status_code == 400
    assert heartbeats.kept == {}
    [line] = [x for x in log_lines() if x["message"].startswith("canary refused")]
    assert line["severity"] == "WARNING"
    assert body[:20] not in str(line)
