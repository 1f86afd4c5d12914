"""What an entry point hands down: the settings and the instance's clients, behind their ports.

Built by :mod:`notifier.bootstrap` (the only module that knows the concrete clients), of in-memory
fakes in tests; everything below the entry points receives it and never fetches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from notifier.config import Settings
from notifier.domain.ports import EndpointHealthLog, HeartbeatLog, Sender, Store
from notifier.usecases.exactly_once import Notifier


@dataclass(frozen=True)
class Dependencies:
    """The settings, the store, the sender and the notifier made of them: one set per instance."""

    settings: Settings
    store: Store
    sender: Sender
    notifier: Notifier


@dataclass(frozen=True)
class CanaryDependencies:
    """The canary's set: Firestore and the heartbeat endpoint's signing secret, no Svix token
    (none is mounted on that function). ``secret`` None: not configured, the canary answers 503."""

    settings: Settings
    heartbeats: HeartbeatLog
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class OperationalDependencies:
    """The operational webhooks' set: Firestore's endpoint health and the operational-webhook
    endpoint's signing secret, no Svix token. ``secret`` None: not configured, answers 503."""

    settings: Settings
    endpoints: EndpointHealthLog
    secret: str | None = field(default=None, repr=False)


Provider = Callable[[], Dependencies]  # the entry point's way to its dependencies, asked on use
CanaryProvider = Callable[[], CanaryDependencies]  # the canary's, likewise
OperationalProvider = Callable[[], OperationalDependencies]  # the operational webhooks'
