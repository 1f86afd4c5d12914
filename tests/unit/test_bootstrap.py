"""The instance's sets: built on first use, once however many requests ask at the same time, and
built again after a failure (a misconfigured instance keeps saying why, it never caches it)."""

from __future__ import annotations

import threading
import time

import pytest

from notifier import bootstrap
from notifier.config import ConfigError


@pytest.fixture
def canary_env(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "notifier-test")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # a client, never called
    monkeypatch.setenv("NOTIFIER_CANARY_SECRET", "whsec_dGVzdA==")
    bootstrap.reset()
    yield monkeypatch
    bootstrap.reset()


def test_requests_arriving_together_build_the_set_once(canary_env):
    builds = []
    real = bootstrap.build_canary

    def slow_build(*args, **kwargs):
        builds.append(threading.get_ident())
        time.sleep(0.05)  # long enough for every other request to arrive meanwhile
        return real(*args, **kwargs)

    canary_env.setattr(bootstrap, "build_canary", slow_build)
    start = threading.Barrier(16)
    got = []

    def request():
        start.wait()
        got.append(bootstrap.canary_dependencies())

    threads = [threading.Thread(target=request) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert len(got) == 16 and all(deps is got[0] for deps in got)
    assert bootstrap.canary_built() is got[0]


def test_a_failed_build_is_not_kept_the_next_request_builds_again(canary_env):
    canary_env.delenv("GOOGLE_CLOUD_PROJECT")
    canary_env.delenv("GCLOUD_PROJECT", raising=False)
    with pytest.raises(ConfigError):
        bootstrap.canary_dependencies()
    assert bootstrap.canary_built() is None
    canary_env.setenv("GOOGLE_CLOUD_PROJECT", "notifier-test")  # the deployment fixed
    assert bootstrap.canary_dependencies() is bootstrap.canary_built() is not None


def test_a_provided_set_serves_inside_the_block_then_the_one_before(canary_env):
    built = bootstrap.canary_dependencies()
    replacement = bootstrap.build_canary(built.settings, None)
    with bootstrap.provided_canary(replacement):
        assert bootstrap.canary_dependencies() is replacement
    assert bootstrap.canary_dependencies() is built
    assert bootstrap.built() is None and bootstrap.operational_built() is None  # each set its own
