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
from typing import Generic, TypeVar

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
_Set = TypeVar("_Set")


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


class _BuiltOnce(Generic[_Set]):
    """One of the instance's sets: built on first use, once however many requests ask at the
    same time; tests put their own in place for a block (:meth:`provided`)."""

    def __init__(self, build: Callable[[], _Set]) -> None:
        self._build = build
        self._set: _Set | None = None

    def get(self) -> _Set:
        built = self._set
        if built is None:
            with _lock:
                if self._set is None:
                    self._set = self._build()
                built = self._set
        return built

    def built(self) -> _Set | None:
        return self._set

    @contextlib.contextmanager
    def provided(self, deps: _Set) -> Iterator[_Set]:
        with _lock:
            previous, self._set = self._set, deps
        try:
            yield deps
        finally:
            with _lock:
                self._set = previous

    def reset(self) -> None:
        with _lock:
            self._set = None


def _build_function_set() -> Dependencies:
    # outcome=retried: the delivery metrics count what Pub/Sub will deliver again
    settings = _settings_or_report(svix=True, outcome="retried")
    logs.setup(settings.log_level)
    return build(settings)


def _build_signed_set(secret_env: str, build_set: Callable[[Settings, str | None], _Set]) -> _Set:
    """A set that receives signed webhooks: Firestore and its signing secret, no SVIX_API_KEY."""
    settings = _settings_or_report(svix=False)
    secret = os.environ.get(secret_env, "").strip() or None
    logs.setup(settings.log_level)
    return build_set(settings, secret)


_function_set = _BuiltOnce(_build_function_set)
# build_canary and build_operational are looked up at each build (tests replace them)
_canary_set = _BuiltOnce(lambda: _build_signed_set(CANARY_SECRET_ENV, build_canary))
_operational_set = _BuiltOnce(lambda: _build_signed_set(OPERATIONAL_SECRET_ENV, build_operational))


def dependencies() -> Dependencies:
    """The instance's set. A misconfigured deployment fails every delivery (Pub/Sub keeps the
    messages until it is fixed) and says why in one ERROR line that alerts and Error Reporting see.
    """
    return _function_set.get()


def canary_dependencies() -> CanaryDependencies:
    """The canary's set, built once: Firestore and the signing secret only, so it starts without
    SVIX_API_KEY. A misconfigured deployment says why in one ERROR line, as :func:`dependencies`.
    """
    return _canary_set.get()


def operational_dependencies() -> OperationalDependencies:
    """The operational webhooks' set, built once: Firestore and the signing secret only (no
    SVIX_API_KEY). A misconfigured deployment says why in one ERROR line."""
    return _operational_set.get()


def built() -> Dependencies | None:
    """The instance's set if it was built (or provided), else None: nothing is built by asking."""
    return _function_set.built()


def canary_built() -> CanaryDependencies | None:
    """The canary's set if it was built (or provided), else None."""
    return _canary_set.built()


def operational_built() -> OperationalDependencies | None:
    """The operational webhooks' set if it was built (or provided), else None."""
    return _operational_set.built()


def _settings_or_report(*, svix: bool, outcome: str | None = None) -> Settings:
    """The settings, or one ERROR line saying why not (alerts and Error Reporting see it)."""
    try:
        return Settings.from_env(svix=svix)
    except ConfigError as exc:
        logs.setup()
        logs.log(log, logging.ERROR, str(exc), outcome=outcome, reason="misconfigured")
        raise


def provided(deps: Dependencies) -> contextlib.AbstractContextManager[Dependencies]:
    """The entry points serve with ``deps`` inside the block (tests: in-memory fakes), then with
    whatever they had before (built lazily again if nothing)."""
    return _function_set.provided(deps)


def provided_canary(
    deps: CanaryDependencies,
) -> contextlib.AbstractContextManager[CanaryDependencies]:
    """As :func:`provided`, for the canary's set."""
    return _canary_set.provided(deps)


def provided_operational(
    deps: OperationalDependencies,
) -> contextlib.AbstractContextManager[OperationalDependencies]:
    """As :func:`provided`, for the operational webhooks' set."""
    return _operational_set.provided(deps)


def reset() -> None:
    """Forget the built sets (tests that change the environment between runs)."""
    for lazy in (_function_set, _canary_set, _operational_set):
        lazy.reset()
