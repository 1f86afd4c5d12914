"""No test reaches beyond the loopback (tests/offline.py): the guard itself, checked.

In the test process pytest-socket refuses the connect before any packet leaves; a process started
the tests' way finds the metadata server and any proxied host at a loopback port that refuses.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from pytest_socket import SocketConnectBlockedError

from tests import offline

# TEST-NET-1 (RFC 5737, never routed) and the metadata server google-auth probes.
OUTSIDE = ["192.0.2.1", "169.254.169.254"]


@pytest.mark.parametrize("host", OUTSIDE)
def test_a_connect_outside_the_loopback_fails_the_test(host):
    with pytest.raises(SocketConnectBlockedError, match=f'with host "{host}"'):
        socket.create_connection((host, 80), timeout=5)


def test_the_loopback_is_still_reachable():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            peer, _ = server.accept()
            with peer:
                client.sendall(b"ping")
                assert peer.recv(4) == b"ping"


def test_the_guard_is_on_for_the_whole_suite(pytestconfig):
    assert pytestconfig.getoption("--allow-hosts") == "127.0.0.1,::1,localhost"
    for name, value in offline.ENV.items():
        assert os.environ[name] == value


def test_google_auth_in_the_test_process_never_probes_the_metadata_server():
    from google.auth.compute_engine import _metadata

    assert _metadata._NO_GCE_CHECK is True  # read once, at its import: conftest came first
    assert _metadata.is_on_gce(request=None) is False


CHILD = """
import json, urllib.request
import google.auth.transport.requests
from google.auth.compute_engine import _metadata
seen = {"no_check": _metadata._NO_GCE_CHECK, "host": _metadata._GCE_METADATA_HOST}
seen["ping"] = _metadata.ping(google.auth.transport.requests.Request(), timeout=5, retry_count=1)
try:
    urllib.request.urlopen("http://169.254.169.254/computeMetadata/v1/", timeout=5)
except OSError as exc:
    seen["direct"] = str(getattr(exc, "reason", exc))
print(json.dumps(seen))
"""


def test_a_process_started_the_tests_way_cannot_reach_the_metadata_server():
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={"PATH": os.environ.get("PATH", ""), **offline.ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["no_check"] is True  # google-auth skips the probe...
    assert seen["host"] == offline.REFUSING  # ...and, asked anyway, asks the loopback
    assert seen["ping"] is False
    assert "Connection refused" in seen["direct"]  # through the proxy, which refuses
