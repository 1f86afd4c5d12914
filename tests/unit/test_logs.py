"""The log line format: what Cloud Logging, Error Reporting and Cloud Trace read from it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from notifier import logs

PROJECT = "acme-prod"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
REPORTED_ERROR = (
    "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
)


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def captured(monkeypatch):
    monkeypatch.delenv("K_SERVICE", raising=False)
    monkeypatch.delenv("K_REVISION", raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    logger = logging.getLogger("notifier.test_logs")
    handler = Capture()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler.lines
    logger.removeHandler(handler)


def refuse_event(logger):
    logs.log(logger, logging.ERROR, "event failed: svix_rejected 422", event_id="evt_1")


def test_an_info_line_is_plain_json_without_error_fields(captured):
    logger, lines = captured
    logs.log(logger, logging.INFO, "event sent", event_id="evt_1", svix_status=202, error=None)
    [line] = lines
    assert (line["severity"], line["message"], line["event_id"]) == ("INFO", "event sent", "evt_1")
    assert "error" not in line  # None fields are left out
    assert not {"@type", "serviceContext", "context", "stack_trace"} & set(line)


def test_an_error_without_exception_is_reported_with_its_location(captured):
    logger, lines = captured
    refuse_event(logger)
    [line] = lines
    assert line["severity"] == "ERROR"
    assert line["@type"] == REPORTED_ERROR
    assert line["serviceContext"] == {"service": "notifier"}
    location = line["context"]["reportLocation"]
    # The caller of logs.log, not logs.log itself: that is what groups errors by cause.
    assert location["functionName"] == "refuse_event"
    assert location["filePath"] == "test_logs.py"
    assert isinstance(location["lineNumber"], int)
    assert line["message"] == "event failed: svix_rejected 422"


def test_the_service_context_names_the_cloud_run_service_and_revision(captured, monkeypatch):
    logger, lines = captured
    monkeypatch.setenv("K_SERVICE", "notifier-notifications")
    monkeypatch.setenv("K_REVISION", "notifier-notifications-00007-xiv")
    refuse_event(logger)
    assert lines[0]["serviceContext"] == {
        "service": "notifier-notifications",
        "version": "notifier-notifications-00007-xiv",
    }


def test_an_error_with_an_exception_carries_its_stack_trace(captured):
    logger, lines = captured
    try:
        raise RuntimeError("store exploded")
    except RuntimeError:
        logs.log(logger, logging.ERROR, "unexpected failure", exc=True)
    [line] = lines
    assert line["@type"] == REPORTED_ERROR
    assert line["stack_trace"].startswith("Traceback (most recent call last)")
    assert line["stack_trace"].rstrip().endswith("RuntimeError: store exploded")
    assert line["message"].startswith("unexpected failure\nTraceback")
    assert "context" not in line  # the stack trace locates it


def test_a_warning_with_an_exception_is_not_an_error_report(captured):
    logger, lines = captured
    try:
        raise ValueError("x")
    except ValueError:
        logs.log(logger, logging.WARNING, "retrying", exc=True)
    assert "stack_trace" in lines[0] and "@type" not in lines[0]


def test_the_report_location_path_is_relative_to_the_package():
    package = Path(logs.__file__).resolve().parent
    assert (
        logs._relative(str(package / "handlers" / "outcome_log.py"))
        == "notifier/handlers/outcome_log.py"
    )
    assert logs._relative(str(package.parent / "main.py")) == "main.py"
    assert logs._relative("/elsewhere/thing.py") == "thing.py"


def test_a_checkout_in_a_folder_named_notifier_does_not_confuse_the_location():
    """A fresh clone into ``notifier/`` holds tests under ``notifier/tests``: not the package."""
    assert logs._relative("/home/me/notifier/tests/unit/test_x.py") == "test_x.py"
    assert logs._relative("/home/me/notifier/main.py") == "main.py"


# -- traces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "traceparent", "expected"),
    [
        (
            {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
            None,
            (TRACE_ID, "00f067aa0ba902b7", True),
        ),
        (
            {"traceparent": f"00-{TRACE_ID.upper()}-00F067AA0BA902B7-00"},
            None,
            (TRACE_ID, "00f067aa0ba902b7", False),
        ),
        (
            {"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"},
            None,
            (TRACE_ID, "0000000000000001", True),
        ),
        (
            {"X-Cloud-Trace-Context": f"{TRACE_ID}/18446744073709551615;o=0"},
            None,
            (TRACE_ID, "ffffffffffffffff", False),
        ),
        ({"X-Cloud-Trace-Context": TRACE_ID}, None, (TRACE_ID, None, False)),
        # A CloudEvent's traceparent extension, when the request itself has no trace header.
        ({}, f"00-{TRACE_ID}-00f067aa0ba902b7-01", (TRACE_ID, "00f067aa0ba902b7", True)),
        # The request's own header wins over the extension.
        (
            {"X-Cloud-Trace-Context": f"{TRACE_ID}/2;o=1"},
            f"00-{'1' * 32}-00f067aa0ba902b7-01",
            (TRACE_ID, "0000000000000002", True),
        ),
    ],
)
def test_trace_fields_from_headers(headers, traceparent, expected):
    trace_id, span_id, sampled = expected
    fields = logs.trace_fields(headers, traceparent=traceparent, project=PROJECT)
    assert fields["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{trace_id}"
    assert fields.get("logging.googleapis.com/spanId") == span_id
    assert fields.get("logging.googleapis.com/trace_sampled", False) is sampled


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "garbage"},
        {"traceparent": f"ff-{TRACE_ID}-00f067aa0ba902b7-01"},  # version ff is invalid
        {"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"},  # all-zero trace id
        {"traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"},  # all-zero span id
        {"X-Cloud-Trace-Context": "not-a-trace/1;o=1"},
        {"X-Cloud-Trace-Context": f"{TRACE_ID}\n/1"},
    ],
)
def test_no_trace_from_missing_or_malformed_headers(headers):
    assert logs.trace_fields(headers, project=PROJECT) == {}


def test_no_trace_without_a_project(monkeypatch):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    monkeypatch.delenv("GCLOUD_PROJECT", raising=False)
    assert logs.trace_fields({"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}) == {}


def test_every_line_inside_a_traced_block_carries_the_trace(captured):
    logger, lines = captured
    headers = {"X-Cloud-Trace-Context": f"{TRACE_ID}/7;o=1"}
    with logs.traced(headers):
        logs.log(logger, logging.INFO, "inside")
        refuse_event(logger)
    logs.log(logger, logging.INFO, "outside")
    inside, error, outside = lines
    for line in (inside, error):
        assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{TRACE_ID}"
        assert line["logging.googleapis.com/spanId"] == "0000000000000007"
    assert "logging.googleapis.com/trace" not in outside
