"""Finding 8 (issue 10): every Firestore and Pub/Sub call of the operator tools ends, and says in
one line what it could not reach; missing credentials say how to provide them. No traceback.

The CLI runs in its own process with only the environment given (a temp HOME: no gcloud login),
against a closed local port: nothing listens there, so the client libraries would retry for
minutes. ``Bounded`` itself is checked on calls that never answer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc

from notifier.cli.reach import Bounded, CloudError, FirestoreFailed, Unreachable
from notifier.domain.errors import StoreUnavailable
from tests import offline

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> str:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def notifier_cli(env: dict[str, str], *argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notifier", *argv],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(home), **offline.ENV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [["status"], ["status", "--json"], ["replay", "--dry-run"], ["replay", "--status", "failed"]],
)
def test_an_unreachable_firestore_is_one_line_naming_it(tmp_path, argv):
    host = closed_port()
    env = {
        "FIRESTORE_EMULATOR_HOST": host,
        "GOOGLE_CLOUD_PROJECT": "proj-x",
        "FIRESTORE_DATABASE": "db-y",
        "SVIX_API_KEY": "testsk_unused",
    }
    done = notifier_cli(env, *argv, "--timeout", "1", home=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert one_line(done) == (
        f"notifier: cannot reach Firestore at {host} (project proj-x, database db-y) within 1 s"
    )


def test_an_unreachable_pubsub_is_one_line_naming_the_subscription(tmp_path):
    host = closed_port()
    env = {"PUBSUB_EMULATOR_HOST": host, "GOOGLE_CLOUD_PROJECT": "proj-x"}
    done = notifier_cli(env, "redrive", "--dry-run", "--timeout", "1", home=tmp_path)
    assert done.returncode == 1
    line = one_line(done)
    path = "projects/proj-x/subscriptions/platform-events-dead-letter-sub"
    assert line.startswith(f"notifier: cannot reach Pub/Sub subscription {path} at {host}")


@pytest.mark.parametrize(
    "credentials",
    [{"GOOGLE_APPLICATION_CREDENTIALS": "/nowhere/key.json"}, {}],
    ids=["key-file-missing", "no-adc"],
)
@pytest.mark.parametrize("argv", [["status"], ["redrive", "--dry-run"]])
def test_missing_credentials_are_one_line_saying_how_to_provide_them(tmp_path, credentials, argv):
    env = {"GOOGLE_CLOUD_PROJECT": "proj-x", **credentials}
    done = notifier_cli(env, *argv, home=tmp_path)
    assert done.returncode == 2
    line = one_line(done)
    assert line.startswith("notifier: no Google credentials: ")
    for way in (
        "gcloud auth application-default login",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "FIRESTORE_EMULATOR_HOST",
    ):
        assert way in line


class Silent:
    """An adapter whose calls never answer (until released), or fail as told."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def count(self) -> int:
        self.release.wait()
        return 1

    def listing(self):
        yield "first"
        self.release.wait()
        yield "second"

    def fails(self, error: Exception) -> None:
        raise error


def test_a_call_that_never_answers_ends_as_unreachable_naming_the_resource():
    silent = Silent()
    bounded = Bounded(silent, "Firestore at h:1 (project p, database d)", 0.05)
    with pytest.raises(Unreachable, match=r"^cannot reach Firestore at h:1 \(project p"):
        bounded.count()
    stream = bounded.listing()
    assert next(stream) == "first"  # each record within the deadline, not the whole stream
    with pytest.raises(Unreachable):
        next(stream)
    silent.release.set()


def test_errors_come_out_naming_the_resource():
    bounded = Bounded(Silent(), "Pub/Sub subscription projects/p/subscriptions/s at h:1", 5)
    with pytest.raises(CloudError) as caught:
        bounded.fails(gexc.NotFound("Subscription does not exist"))
    assert str(caught.value) == (
        "Pub/Sub subscription projects/p/subscriptions/s at h:1: "
        "NotFound: 404 Subscription does not exist"
    )
    store_error = StoreUnavailable("firestore: PermissionDenied")
    store_error.__cause__ = gexc.PermissionDenied("Missing or insufficient permissions.")
    with pytest.raises(FirestoreFailed) as failed:  # still a StoreUnavailable for the use cases
        bounded.fails(store_error)
    assert isinstance(failed.value, StoreUnavailable)
    assert str(failed.value).endswith("PermissionDenied: 403 Missing or insufficient permissions.")
