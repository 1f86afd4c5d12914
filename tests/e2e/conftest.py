"""The function under functions-framework, on the emulators and the Svix twin."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.cloudevents import pubsub_request
from devstack.function_server import FunctionServer
from tests.conftest import PROJECT, TOKEN

# Small budgets so that the retry paths run in seconds; the lease still outlives any delivery.
FAST = {
    "NOTIFIER_RETRY_BUDGET_SECONDS": "3",
    "NOTIFIER_SVIX_TIMEOUT_SECONDS": "1",
    "NOTIFIER_SVIX_RETRY_SCHEDULE": "0.05,0.1",
    "NOTIFIER_LEASE_SECONDS": "10",
}
_ids = itertools.count(1)
# gunicorn closes a connection idle for 2 s; a client that reuses one it has not yet seen closed
# gets "Server disconnected". Clients drop idle connections sooner than that.
KEEPALIVE = httpx.Limits(keepalive_expiry=1.0)


def function_env(firestore_emulator, svix_server, **overrides: str) -> dict[str, str]:
    return {
        **firestore_emulator.env,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "SVIX_API_KEY": TOKEN,
        "SVIX_SERVER_URL": svix_server.url,
        **FAST,
        **overrides,
    }


@pytest.fixture(scope="session")
def function_server(firestore_emulator, svix_server, logs_dir) -> Iterator[FunctionServer]:
    env = function_env(firestore_emulator, svix_server)
    with FunctionServer("on_event", env, logs_dir / "function.log") as server:
        yield server


@pytest.fixture
def function(function_server, db, svix) -> FunctionServer:
    """The shared function, with Firestore emptied and the twin reset for this test."""
    return function_server


class Deliverer:
    """POSTs Pub/Sub deliveries to a function the way Eventarc does; returns the HTTP status."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(timeout=60, limits=KEEPALIVE)

    def __call__(self, payload, message_id: str | None = None, **kwargs) -> int:
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        headers, body = pubsub_request(payload, message_id or str(next(_ids)), **kwargs)
        return self.client.post(self.url, headers=headers, content=body).status_code


@pytest.fixture
def deliver(function) -> Iterator[Deliverer]:
    deliverer = Deliverer(function.url)
    yield deliverer
    deliverer.client.close()


def log_lines(path: Path) -> list[dict]:
    """The function's structured log lines (other output, like gunicorn's, is skipped)."""
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "severity" in entry:
            lines.append(entry)
    return lines
