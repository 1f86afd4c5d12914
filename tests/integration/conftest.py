"""Every Firestore query made in the integration tests must be one the deployed indexes serve.

The emulator answers any query, indexed or not; production does not. So each test records the
queries the Firestore client sends (a spy on its RunQuery/RunAggregationQuery calls, which still
go to the emulator) and fails if deploy.sh's index exemptions leave any of them unserved.

Also ``env``: the function's environment in an operator's shell, for the CLI tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud.firestore_v1.services.firestore.client import FirestoreClient
from google.cloud.firestore_v1.types import StructuredQuery

from notifier.config import Settings
from tests.conftest import PROJECT, TOKEN
from tests.indexes import deployed_exemptions, structured_query, unserved


def settings_on(svix, **overrides: Any) -> Settings:
    """The function's settings against the twin, with ``overrides`` (budgets, timeouts)."""
    return Settings(gcp_project=PROJECT, svix_api_key=TOKEN, svix_server_url=svix.url, **overrides)


FAST = {
    "NOTIFIER_RETRY_BUDGET_SECONDS": "0",
    "NOTIFIER_SVIX_TIMEOUT_SECONDS": "1",
    "NOTIFIER_SVIX_RETRY_SCHEDULE": "0.01",
    "NOTIFIER_LEASE_SECONDS": "10",
}


@pytest.fixture
def env(db, svix, monkeypatch):
    """The function's environment in the operator's shell (the emulator's is already there)."""
    monkeypatch.setenv("SVIX_API_KEY", TOKEN)
    monkeypatch.setenv("SVIX_SERVER_URL", svix.url)
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture(autouse=True)
def firestore_queries(monkeypatch) -> Iterator[list[StructuredQuery]]:
    """The queries sent during the test, checked against deploy.sh's exemptions at its end."""
    sent: list[StructuredQuery] = []
    for name in ("run_query", "run_aggregation_query"):
        original = getattr(FirestoreClient, name)

        def spy(self: FirestoreClient, *args: Any, _original=original, **kwargs: Any) -> Any:
            sent.append(structured_query(kwargs.get("request") or args[0]))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(FirestoreClient, name, spy)
    yield sent
    exempt = deployed_exemptions()
    problems = [why for why in (unserved(q, exempt) for q in sent) if why]
    assert not problems, problems
