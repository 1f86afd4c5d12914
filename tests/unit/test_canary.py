"""The canary entry point in-process, as functions-framework serves it, on requests signed by the
svix SDK: what it records, what it answers, what it logs (and never logs)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest

from notifier import bootstrap
from notifier.config import ConfigError, Settings
from tests import factories, fakes
from tests.support import logged_lines

MAIN = Path(__file__).resolve().parents[2] / "main.py"
SECRET = "whsec_" + base64.b64encode(b"canary-test-key-0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"somebody-else-s-key-0123456789ab").decode()
PUBLISHED = "2026-11-30T10:05:00.123Z"
ARRIVED = datetime(2026, 11, 30, 10, 5, 1, 973000, tzinfo=UTC)


@pytest.fixture
def heartbeats():
    return fakes.MemoryHeartbeatLog()


@pytest.fixture
def serve(heartbeats):
    """The canary entry point serving with the fake log and ``secret`` (set in the function's
    environment in production: NOTIFIER_CANARY_SECRET)."""

    def client(secret=SECRET):
        settings = Settings(gcp_project="notifier-test", svix_api_key="")
        deps = bootstrap.build_canary(settings, secret, heartbeats=heartbeats)
        stack.enter_context(bootstrap.provided_canary(deps))
        app = functions_framework.create_app(
            target="canary", source=str(MAIN), signature_type="http"
        )
        return app.test_client()

    with contextlib.ExitStack() as stack:
        yield client
    assert bootstrap.canary_built() is None  # nothing built behind the test's back


@pytest.fixture
def client(serve):
    return serve()


@pytest.fixture
def log_lines():
    with logged_lines() as lines:
        yield lines


@pytest.fixture(autouse=True)
def fixed_arrival(monkeypatch):
    """The canary's clock: arrival 1.85 s after publication."""
    import notifier.handlers.canary

    monkeypatch.setattr(notifier.handlers.canary, "_now", lambda: ARRIVED)


def heartbeat_body(event_id="hb-8123456789012345", published_at=PUBLISHED, **overrides):
    return factories.heartbeat_body(event_id, published_at, **overrides)


def signed(body, *, secret=SECRET, msg_id="msg_2abcDEF", at=None):
    """Headers as Svix sends them, signed by the SDK."""
    return factories.svix_signed(body, secret, msg_id=msg_id, at=at)


def post(client, body, headers):
    return client.post("/", data=body, headers=headers)


def test_a_signed_heartbeat_is_recorded_with_its_latency_and_logged_once(
    client, heartbeats, log_lines
):
    body = heartbeat_body()
    response = post(client, body, signed(body))
    assert response.status_code == 200
    published = datetime(2026, 11, 30, 10, 5, 0, 123000, tzinfo=UTC)
    assert heartbeats.kept == {"hb-8123456789012345": (published, ARRIVED)}
    arrived = [line for line in log_lines() if line["message"] == "heartbeat arrived"]
    assert len(arrived) == 1
    assert arrived[0]["event_id"] == "hb-8123456789012345"
    assert arrived[0]["heartbeat_latency_ms"] == pytest.approx(1850.0)
    assert isinstance(arrived[0]["heartbeat_latency_ms"], float)
    assert arrived[0]["severity"] == "INFO"
    assert arrived[0]["svix_id"] == "msg_2abcDEF"


def test_a_second_delivery_is_acknowledged_and_not_counted_again(client, heartbeats, log_lines):
    body = heartbeat_body()
    assert post(client, body, signed(body)).status_code == 200
    again = post(client, body, signed(body, msg_id="msg_2abcDEF"))
    assert again.status_code == 200
    assert len(heartbeats.kept) == 1
    messages = [line["message"] for line in log_lines()]
    assert messages.count("heartbeat arrived") == 1
    assert "heartbeat already recorded" in messages


def test_the_whitelabel_header_names_are_accepted_too(client, heartbeats):
    body = heartbeat_body()
    headers = {k.replace("svix-", "webhook-"): v for k, v in signed(body).items()}
    assert post(client, body, headers).status_code == 200
    assert list(heartbeats.kept) == ["hb-8123456789012345"]


def test_a_signature_under_a_rotated_key_list_is_accepted(client, heartbeats):
    """During a secret rotation Svix signs with every valid key, space-separated."""
    body = heartbeat_body()
    headers = signed(body)
    old = signed(body, secret=OTHER_SECRET)["svix-signature"]
    headers["svix-signature"] = f"{old} {headers['svix-signature']}"
    assert post(client, body, headers).status_code == 200
    assert len(heartbeats.kept) == 1


def refused_requests():
    body = heartbeat_body()
    good = signed(body)
    stale_at = datetime.now(UTC) - timedelta(minutes=6)
    yield "unsigned", body, {"content-type": "application/json"}, "unsigned"
    yield (
        "forged",
        body,
        {**good, "svix-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
        "bad_signature",
    )
    yield "wrong key", body, signed(body, secret=OTHER_SECRET), "bad_signature"
    yield "stale", body, signed(body, at=stale_at), "stale"
    yield (
        "future",
        body,
        signed(body, at=datetime.now(UTC) + timedelta(hours=1)),  # made at collection: far ahead
        "from_the_future",
    )
    yield "tampered body", heartbeat_body(event_id="hb-999"), good, "bad_signature"
    yield "tampered id", body, {**good, "svix-id": "msg_other"}, "bad_signature"
    yield "no comma", body, {**good, "svix-signature": "v1"}, "bad_signature"
    yield "bad base64", body, {**good, "svix-signature": "v1,@@@"}, "bad_signature"
    yield "non-numeric time", body, {**good, "svix-timestamp": "soon"}, "bad_timestamp"
    yield "infinite time", body, {**good, "svix-timestamp": "inf"}, "bad_timestamp"
    yield "not utf-8", b"\xff\xfe" + body.encode(), good, "bad_signature"
    yield "v1a only", body, {**good, "svix-signature": "v1a,AAAA"}, "bad_signature"


@pytest.mark.parametrize("case", [case[0] for case in refused_requests()])
def test_anything_not_signed_by_svix_with_our_key_is_refused_and_recorded_nowhere(
    client, heartbeats, log_lines, case
):
    # Signed as the test runs, not when pytest collects: a stale or future timestamp made minutes
    # earlier, at collection, could have drifted back inside the verifier's tolerance.
    _, body, headers, reason = next(c for c in refused_requests() if c[0] == case)
    response = post(client, body, headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Svix-Signature"
    assert heartbeats.kept == {}
    lines = log_lines()
    assert [line["message"] for line in lines] == [f"canary refused: {reason}"]
    assert lines[0]["severity"] == "WARNING"
    assert_no_secret_or_body(lines, response)


def assert_no_secret_or_body(lines, response):
    text = json.dumps(lines) + response.get_data(as_text=True)
    for secret in (SECRET, SECRET.removeprefix("whsec_"), OTHER_SECRET.removeprefix("whsec_")):
        assert secret not in text
    assert "published_at" not in text and PUBLISHED not in text
    assert "v1," not in text


def test_only_post_is_accepted(client, heartbeats, log_lines):
    response = client.get("/")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert heartbeats.kept == {}
    assert [line["message"] for line in log_lines()] == ["canary refused: method_not_allowed"]


class Counted(io.BytesIO):
    """A request body that counts the bytes read from it."""

    served = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.served += len(chunk)
        return chunk

    def readline(self, size: int | None = -1) -> bytes:
        line = super().readline(size)
        self.served += len(line)
        return line


def test_a_body_larger_than_any_heartbeat_is_refused_before_it_is_read(client, heartbeats):
    body = heartbeat_body(data={"published_at": PUBLISHED, "pad": "x" * 20000}).encode()
    stream = Counted(body)
    response = client.post(
        "/", input_stream=stream, content_length=len(body), headers=signed(body.decode())
    )
    assert response.status_code == 413
    assert stream.served == 0  # its Content-Length alone refused it
    assert heartbeats.kept == {}


def test_a_large_body_without_a_length_is_refused_too(client, heartbeats):
    """Chunked: no Content-Length to check first, so the read itself stops at the cap."""
    body = heartbeat_body(data={"published_at": PUBLISHED, "pad": "x" * 20000})
    response = client.post(
        "/",
        input_stream=io.BytesIO(body.encode()),
        headers={**signed(body), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert heartbeats.kept == {}


def test_a_huge_chunked_body_is_left_unread_past_the_cap(client, heartbeats):
    """The public function reads at most its cap, and nothing after it (functions-framework's
    own after-request read included): memory and time stay flat whatever a caller streams."""

    class Endless:
        served = 0

        def read(self, size: int = -1) -> bytes:
            size = 65536 if size is None or size < 0 else size
            self.served += size
            return b"x" * size

    stream = Endless()
    response = client.post(
        "/",
        headers={"Transfer-Encoding": "chunked", "content-type": "application/json"},
        environ_overrides={"wsgi.input_terminated": True, "wsgi.input": stream},
    )
    assert response.status_code == 413
    assert stream.served < 1024 * 1024
    assert heartbeats.kept == {}


def test_a_small_chunked_heartbeat_is_read_whole(client, heartbeats):
    body = heartbeat_body()
    response = client.post(
        "/",
        input_stream=io.BytesIO(body.encode()),
        headers={**signed(body), "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 200
    assert len(heartbeats.kept) == 1


def test_a_verified_event_that_is_not_a_heartbeat_is_acknowledged_and_ignored(
    client, heartbeats, log_lines
):
    body = heartbeat_body(event_id="evt_1", type="user.created", data={"email": "a@example.com"})
    response = post(client, body, signed(body))
    assert response.status_code == 200
    assert heartbeats.kept == {}
    (line,) = log_lines()
    assert line["message"] == "canary ignored: not_a_heartbeat"
    assert (line["severity"], line["event_id"], line["event_type"]) == (
        "INFO",
        "evt_1",
        "user.created",
    )
    assert "a@example.com" not in json.dumps(line)


@pytest.mark.parametrize(
    "body",
    [
        "[1]",
        "not json",
        heartbeat_body(data={}),
        heartbeat_body(data={"published_at": "yesterday"}),
        heartbeat_body(event_id="../x"),
    ],
)
def test_a_verified_but_unreadable_heartbeat_is_acknowledged_with_a_warning(
    client, heartbeats, log_lines, body
):
    response = post(client, body, signed(body))
    assert response.status_code == 200  # a retry could not make it readable
    assert heartbeats.kept == {}
    (line,) = log_lines()
    assert line["message"].startswith("canary ignored: unreadable")
    assert line["severity"] == "WARNING"


def test_without_a_secret_the_canary_answers_503_so_svix_retries(serve, heartbeats, log_lines):
    body = heartbeat_body()
    response = post(serve(secret=None), body, signed(body))
    assert response.status_code == 503
    assert heartbeats.kept == {}
    (line,) = log_lines()
    assert line["severity"] == "ERROR"
    assert line["message"] == "canary is misconfigured: NOTIFIER_CANARY_SECRET is not set"


@pytest.mark.parametrize("bad", ["", "   ", "whsec_", "whsec_!!!!"])
def test_a_secret_that_is_not_a_signing_secret_is_a_misconfiguration(
    serve, heartbeats, log_lines, bad
):
    body = heartbeat_body()
    assert post(serve(secret=bad), body, signed(body)).status_code == 503
    (line,) = log_lines()
    assert line["severity"] == "ERROR" and line["message"].startswith("canary is misconfigured")
    assert "!!!!" not in line["message"]


def test_when_the_log_is_unavailable_the_canary_answers_503_and_logs_no_sample(
    client, heartbeats, log_lines
):
    heartbeats.unavailable = True
    body = heartbeat_body()
    response = post(client, body, signed(body))
    assert response.status_code == 503
    messages = [line["message"] for line in log_lines()]
    assert "heartbeat arrived" not in messages
    assert messages == ["canary could not record the heartbeat"]


def test_a_deployment_without_a_firestore_project_says_so_in_one_error_line(monkeypatch, log_lines):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCLOUD_PROJECT", raising=False)
    bootstrap.reset()
    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT is not set"):
        bootstrap.canary_dependencies()
    (line,) = log_lines()
    assert line["severity"] == "ERROR" and "GOOGLE_CLOUD_PROJECT" in line["message"]


def test_the_canary_starts_without_a_svix_token_and_strips_its_secret(monkeypatch):
    """Production mounts no SVIX_API_KEY on the canary; a secret file ends with a newline."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "notifier-test")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # a client, never called
    monkeypatch.delenv("SVIX_API_KEY", raising=False)
    monkeypatch.setenv("NOTIFIER_CANARY_SECRET", f"  {SECRET}\n")
    bootstrap.reset()
    try:
        deps = bootstrap.canary_dependencies()
        assert deps.secret == SECRET
        assert bootstrap.canary_dependencies() is deps  # built once per instance
        assert SECRET not in repr(deps)
    finally:
        bootstrap.reset()


def test_an_unset_or_blank_secret_is_none_not_a_crash(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "notifier-test")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    monkeypatch.setenv("NOTIFIER_CANARY_SECRET", "  ")
    bootstrap.reset()
    try:
        assert bootstrap.canary_dependencies().secret is None
    finally:
        bootstrap.reset()
