"""Assembles the instance: the only module that knows the concrete clients (Firestore, Svix,
Pub/Sub), for the function, the operator's commands and the tests alike.

:func:`build` makes the function's set; tests hand it in-memory fakes for what they replace, and
the rest is built as production builds it. The entry points ask for the instance's set through
:func:`dependencies`, :func:`canary_dependencies` and :func:`operational_dependencies`: built
on first use (importing the function opens no connection, for cold start) and once, however many
requests ask at the same time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from google.cloud import firestore

from notifier import logs
from notifier.adapters.firestore.endpoint_health import FirestoreEndpointHealth
from notifier.adapters.firestore.heartbeats import FirestoreHeartbeatLog
from notifier.adapters.firestore.store import FirestoreStore
from notifier.adapters.pubsub.admin import DeadLetterSubscription, TopicRepublisher
from notifier.adapters.svix.client import SvixClient
from notifier.adapters.svix.endpoint_admin import SvixEndpointAdmin
from notifier.adapters.svix.event_types import SvixEventTypeRegistry
from notifier.adapters.svix.heartbeat_admin import SvixHeartbeatAdmin
from notifier.adapters.svix.messages import SvixSender
from notifier.config import CANARY_SECRET_ENV, OPERATIONAL_SECRET_ENV, ConfigError, Settings
from notifier.domain import catalog
from notifier.domain.ports import Checker, EndpointHealthLog, HeartbeatLog, Sender, Store
from notifier.handlers import shutdown
from notifier.handlers.dependencies import (
    CanaryDependencies,
    Dependencies,
    OperationalDependencies,
)
from notifier.usecases.applications import ApplicationDirectory
from notifier.usecases.drift_watch import DriftWatch
from notifier.usecases.exactly_once import Notifier
from notifier.usecases.leases import LeaseKeeper

log = logs.get("wiring")  # the name its ERROR lines have always had
_lock = threading.Lock()
_built: Dependencies | None = None
_canary: CanaryDependencies | None = None
_operational: OperationalDependencies | None = None


# -- the function's set --------------------------------------------------------------------------


def build(
    settings: Settings,
    *,
    store: Store | None = None,
    sender: Sender | None = None,
    sleep: Callable[[float], None] | None = None,
    now: Callable[[], datetime] | None = None,
    load_catalog: Callable[[], Checker] | None = None,
    stopping: threading.Event | None = None,
) -> Dependencies:
    """The function's set for ``settings``: the store and the sender (Firestore and Svix unless
    given), and the notifier made of them, with the catalog's drift check (the repository's
    catalog, loaded on the first check, unless ``load_catalog`` says otherwise). ``sleep`` and
    ``now``: the notifier's clocks, for tests (``sleep`` None: waits that SIGTERM ends,
    ``stopping``: the event that says so, the process's unless given). Claims are renewed by one
    lease keeper per set."""
    store = store if store is not None else build_store(settings)
    sender = sender if sender is not None else SvixSender(build_svix_client(settings))
    notifier = Notifier(
        store,
        sender,
        ApplicationDirectory(store, sender),
        retry_budget=settings.retry_budget_seconds,
        dedup_window=settings.svix_dedup_window_seconds,
        sleep=sleep,
        now=now,
        drift=DriftWatch(load_catalog or catalog.runtime).observe,
        leases=LeaseKeeper(store.renew, settings.lease_seconds),
        stopping=stopping if stopping is not None else shutdown.STOPPING,
    )
    return Dependencies(settings, store, sender, notifier)


def build_operator(settings: Settings, store: Store) -> Dependencies:
    """The function's set for an operator command that delivers (``replay``, ``redrive
    --direct``), on the command's own store, logging at the function's level."""
    logs.setup(settings.log_level)
    return build(settings, store=store)


def firestore_client(settings: Settings) -> firestore.Client:
    """A Firestore client on the settings' project and database."""
    return firestore.Client(project=settings.gcp_project, database=settings.firestore_database)


def build_store(settings: Settings) -> FirestoreStore:
    """The store alone: operator commands that only read records need no Svix token."""
    return FirestoreStore(
        firestore_client(settings),
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


# -- the operator's adapters ---------------------------------------------------------------------


def event_type_registry(client: SvixClient) -> SvixEventTypeRegistry:
    """Svix's event types on ``client`` and its answer table (``catalog sync``)."""
    return SvixEventTypeRegistry(client)


def heartbeat_admin(client: SvixClient) -> SvixHeartbeatAdmin:
    """Svix for ``heartbeat setup`` on ``client`` and its answer table."""
    return SvixHeartbeatAdmin(client)


def endpoint_admin(client: SvixClient) -> SvixEndpointAdmin:
    """Svix for ``recover`` and ``operational setup`` on ``client`` and its answer table."""
    return SvixEndpointAdmin(client)


def dead_letters(path: str) -> DeadLetterSubscription:
    """The dead-letter subscription at ``path`` (``redrive``)."""
    return DeadLetterSubscription(path)


def republisher(path: str) -> TopicRepublisher:
    """The topic at ``path`` that dead letters are published back to (``redrive --to-topic``)."""
    return TopicRepublisher(path)


# -- the canary's set ----------------------------------------------------------------------------


def build_canary(
    settings: Settings, secret: str | None, *, heartbeats: HeartbeatLog | None = None
) -> CanaryDependencies:
    """The canary's set for ``settings`` and the heartbeat endpoint's ``whsec_`` secret: the
    heartbeat log (Firestore unless given)."""
    if heartbeats is None:
        heartbeats = build_heartbeat_log(settings)
    return CanaryDependencies(settings, heartbeats, secret)


def build_heartbeat_log(settings: Settings) -> FirestoreHeartbeatLog:
    """``heartbeats/``: the canary records arrivals there, ``status`` reads the last one."""
    return FirestoreHeartbeatLog(firestore_client(settings), ttl_days=settings.record_ttl_days)


# -- the operational webhooks' set ---------------------------------------------------------------


def build_operational(
    settings: Settings, secret: str | None, *, endpoints: EndpointHealthLog | None = None
) -> OperationalDependencies:
    """The operational webhooks' set for ``settings`` and the operational-webhook endpoint's
    ``whsec_`` secret: the endpoint health log (Firestore unless given)."""
    if endpoints is None:
        endpoints = build_endpoint_health(settings)
    return OperationalDependencies(settings, endpoints, secret)


def build_endpoint_health(settings: Settings) -> FirestoreEndpointHealth:
    """``endpoint_health/``: the operational webhooks record there, ``status`` reads it."""
    return FirestoreEndpointHealth(firestore_client(settings), ttl_days=settings.record_ttl_days)


# -- the instance's sets, built once -------------------------------------------------------------


def dependencies() -> Dependencies:
    """The instance's set. A misconfigured deployment fails every delivery (Pub/Sub keeps the
    messages until it is fixed) and says why in one ERROR line that alerts and Error Reporting see.
    """
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                # outcome=retried: the delivery metrics count what Pub/Sub will deliver again
                settings = _settings_or_report(svix=True, outcome="retried")
                logs.setup(settings.log_level)
                _built = build(settings)
    return _built


def canary_dependencies() -> CanaryDependencies:
    """The canary's set, built once: Firestore and the signing secret only, so it starts without
    SVIX_API_KEY. A misconfigured deployment says why in one ERROR line, as :func:`dependencies`.
    """
    global _canary
    if _canary is None:
        with _lock:
            if _canary is None:
                settings = _settings_or_report(svix=False)
                secret = os.environ.get(CANARY_SECRET_ENV, "").strip() or None
                logs.setup(settings.log_level)
                _canary = build_canary(settings, secret)
    return _canary


def operational_dependencies() -> OperationalDependencies:
    """The operational webhooks' set, built once: Firestore and the signing secret only (no
    SVIX_API_KEY). A misconfigured deployment says why in one ERROR line."""
    global _operational
    if _operational is None:
        with _lock:
            if _operational is None:
                settings = _settings_or_report(svix=False)
                secret = os.environ.get(OPERATIONAL_SECRET_ENV, "").strip() or None
                logs.setup(settings.log_level)
                _operational = build_operational(settings, secret)
    return _operational


def built() -> Dependencies | None:
    """The instance's set if it was built (or provided), else None: nothing is built by asking."""
    return _built


def canary_built() -> CanaryDependencies | None:
    """The canary's set if it was built (or provided), else None."""
    return _canary


def operational_built() -> OperationalDependencies | None:
    """The operational webhooks' set if it was built (or provided), else None."""
    return _operational


def _settings_or_report(*, svix: bool, outcome: str | None = None) -> Settings:
    """The settings, or one ERROR line saying why not (alerts and Error Reporting see it)."""
    try:
        return Settings.from_env(svix=svix)
    except ConfigError as exc:
        logs.setup()
        logs.log(log, logging.ERROR, str(exc), outcome=outcome, reason="misconfigured")
        raise


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
def provided_operational(deps: OperationalDependencies) -> Iterator[OperationalDependencies]:
    """As :func:`provided`, for the operational webhooks' set."""
    global _operational
    with _lock:
        previous, _operational = _operational, deps
    try:
        yield deps
    finally:
        with _lock:
            _operational = previous


def reset() -> None:
    """Forget the built sets (tests that change the environment between runs)."""
    global _built, _canary, _operational
    with _lock:
        _built = _canary = _operational = None
