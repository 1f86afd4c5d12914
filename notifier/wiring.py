"""Builds the clients once per instance, on first use, and shares them between threads.

The only module that knows the concrete clients (Firestore, Svix); only entry points call it.
Importing the function opens no connection (cold start), and concurrent first requests build one
set of clients, not one each.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator

from google.cloud import firestore

from notifier import config, logs
from notifier.adapters.firestore.heartbeats import FirestoreHeartbeatLog
from notifier.adapters.firestore.store import FirestoreStore
from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.event_types import SvixEventTypeRegistry
from notifier.adapters.svix.heartbeat_admin import SvixHeartbeatAdmin
from notifier.adapters.svix.messages import SvixSender
from notifier.config import ConfigError, Settings
from notifier.domain import catalog
from notifier.handlers.dependencies import CanaryDependencies, Dependencies
from notifier.usecases.applications import ApplicationDirectory
from notifier.usecases.drift_watch import DriftWatch
from notifier.usecases.exactly_once import Notifier

log = logs.get("wiring")
_lock = threading.Lock()
_built: Dependencies | None = None
_canary: CanaryDependencies | None = None


def dependencies() -> Dependencies:
    """The instance's clients. A misconfigured deployment fails every delivery (Pub/Sub keeps the
    messages until it is fixed) and says why in one ERROR line that alerts and Error Reporting see.
    """
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                # outcome=retried: the delivery metrics count what Pub/Sub will deliver again
                _built = build(_settings_or_report(svix=True, outcome="retried"))
    return _built


def _settings_or_report(*, svix: bool, outcome: str | None = None) -> Settings:
    """The settings, or one ERROR line saying why not (alerts and Error Reporting see it)."""
    try:
        return Settings.from_env(svix=svix)
    except ConfigError as exc:
        logs.setup()
        logs.log(log, logging.ERROR, str(exc), outcome=outcome, reason="misconfigured")
        raise


def build(
    settings: Settings,
    client: firestore.Client | None = None,
    *,
    store: FirestoreStore | None = None,
) -> Dependencies:
    """A full set of clients for ``settings`` (``store``: one the caller already built)."""
    logs.setup(settings.log_level)
    store = store if store is not None else build_store(settings, client)
    sender = build_sender(settings)
    notifier = Notifier(
        store,
        sender,
        ApplicationDirectory(store, sender),
        retry_budget=settings.retry_budget_seconds,
        dedup_window=settings.svix_dedup_window_seconds,
        drift=DriftWatch(catalog.runtime).observe,
    )
    return Dependencies(settings, store, sender, notifier)


def firestore_client(settings: Settings) -> firestore.Client:
    """A Firestore client on the settings' project and database."""
    return firestore.Client(project=settings.gcp_project, database=settings.firestore_database)


def build_store(settings: Settings, client: firestore.Client | None = None) -> FirestoreStore:
    """The store alone: operator commands that only read records need no Svix token."""
    return FirestoreStore(
        client if client is not None else firestore_client(settings),
        lease_seconds=settings.lease_seconds,
        ttl_days=settings.record_ttl_days,
        raw_limit=settings.rejected_raw_bytes,
    )


def build_svix_client(settings: Settings) -> SvixClient:
    """The Svix client, on the settings' token, server, timeout and retry schedule."""
    return SvixClient(
        settings.svix_api_key,
        server_url=settings.svix_server_url,
        timeout=settings.svix_timeout_seconds,
        retry_schedule=settings.svix_retry_schedule,
    )


def build_sender(settings: Settings) -> SvixSender:
    """The Svix sender, on a client of its own."""
    return SvixSender(build_svix_client(settings))


def event_type_registry(client: SvixClient) -> SvixEventTypeRegistry:
    """Svix's event types on the client and its answer table (``catalog sync``)."""
    return SvixEventTypeRegistry(client)


def heartbeat_admin(client: SvixClient) -> SvixHeartbeatAdmin:
    """Svix for ``heartbeat setup`` on the client and its answer table."""
    return SvixHeartbeatAdmin(client)


def canary_dependencies() -> CanaryDependencies:
    """The canary's set, built once: Firestore and the signing secret only, so it starts without
    SVIX_API_KEY. A misconfigured deployment says why in one ERROR line, as :func:`dependencies`.
    """
    global _canary
    if _canary is None:
        with _lock:
            if _canary is None:
                settings = _settings_or_report(svix=False)
                secret = os.environ.get(config.CANARY_SECRET_ENV, "").strip() or None
                _canary = build_canary(settings, secret)
    return _canary


def build_canary(
    settings: Settings, secret: str | None, client: firestore.Client | None = None
) -> CanaryDependencies:
    """The canary's clients for ``settings`` and the heartbeat endpoint's ``whsec_`` secret."""
    logs.setup(settings.log_level)
    return CanaryDependencies(settings, build_heartbeat_log(settings, client), secret)


def build_heartbeat_log(
    settings: Settings, client: firestore.Client | None = None
) -> FirestoreHeartbeatLog:
    """``heartbeats/``: the canary records arrivals there, ``status`` reads the last one."""
    return FirestoreHeartbeatLog(
        client if client is not None else firestore_client(settings),
        ttl_days=settings.record_ttl_days,
    )


@contextlib.contextmanager
def provided_canary(deps: CanaryDependencies) -> Iterator[CanaryDependencies]:
    """As :func:`provided`, for the canary's set."""
    global _canary
    with _lock:
        previous, _canary = _canary, deps
    try:
        yield deps
    finally:
        with _lock:
            _canary = previous


@contextlib.contextmanager
def provided(deps: Dependencies) -> Iterator[Dependencies]:
    """The entry points serve with ``deps`` inside the block (tests: in-memory fakes), then with
    whatever they had before (built lazily again if nothing)."""
    global _built
    with _lock:
        previous, _built = _built, deps
    try:
        yield deps
    finally:
        with _lock:
            _built = previous


def reset() -> None:
    """Forget the built clients (tests that change the environment between runs)."""
    global _built, _canary
    with _lock:
        _built = _canary = None
