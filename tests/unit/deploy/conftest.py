"""The plan of a default deployment, made once for every test that only reads it."""

from __future__ import annotations

import pytest

from tests.unit.deploy.plan import PROJECT, Plan, dry_run


@pytest.fixture(scope="session")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return dry_run(tmp_path_factory.mktemp("deploy"), "--project", PROJECT)
