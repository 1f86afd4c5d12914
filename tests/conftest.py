"""Shared fixtures: the real emulators and the Svix twin, started once per test session.

Each test gets clean data: Firestore is emptied and the twin reset before it runs. Every test, and
every process it starts, runs with tests/offline.py's environment (set here, before any test
module imports google-auth, which reads it once).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import emulators
from devstack.svix_twin.server import SvixTwin
from tests import offline

os.environ.update(offline.ENV)

PROJECT = "notifier-test"
TOKEN = "testsk_notifier.secret-canary-7f3a9"


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` inside the block; exactly as it was afterwards."""
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


# host:port of a Firestore emulator started before pytest (devstack/mutate.py's), used instead
ATTACH_FIRESTORE = "NOTIFIER_TEST_FIRESTORE_EMULATOR"


@pytest.fixture(scope="session")
def firestore_emulator(logs_dir) -> Iterator[emulators.Emulator | emulators.Attached]:
    attached = os.environ.get(ATTACH_FIRESTORE)
    if attached:
        with environment({"FIRESTORE_EMULATOR_HOST": attached, "GOOGLE_CLOUD_PROJECT": PROJECT}):
            yield emulators.Attached(PROJECT, attached)
        return
    emulators.check_prerequisites()
    emulator = emulators.start_firestore(PROJECT, log_path=logs_dir / "firestore.log")
    try:
        with environment({**emulator.env, "GOOGLE_CLOUD_PROJECT": PROJECT}):
            yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(logs_dir) -> Iterator[emulators.Emulator]:
    emulators.check_prerequisites()
    emulator = emulators.start_pubsub(PROJECT, log_path=logs_dir / "pubsub.log")
    try:
        with environment(emulator.env):
            yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def db(firestore_emulator):
    from google.cloud import firestore

    firestore_emulator.reset()
    return firestore.Client(project=PROJECT)


@pytest.fixture(scope="session")
def svix_server() -> Iterator[SvixTwin]:
    with SvixTwin(TOKEN) as twin:
        yield twin


@pytest.fixture
def svix(svix_server) -> SvixTwin:
    svix_server.reset()
    return svix_server
