"""Builds the canary's heartbeat log once per instance, on first use (Firestore only, no Svix).

Kept apart from notifier/wiring.py, which builds the Svix sender the canary never needs; the two
may merge once the house layout settles.
"""

from __future__ import annotations

import logging
import threading

from google.cloud import firestore

from notifier import logs
from notifier.config import ConfigError, Settings
from notifier.heartbeat_store import FirestoreHeartbeatLog

log = logs.get("canary")
_lock = threading.Lock()
_built: FirestoreHeartbeatLog | None = None


def heartbeat_log() -> FirestoreHeartbeatLog:
    """The instance's heartbeat log; a misconfigured deployment says why in one ERROR line."""
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                try:
                    settings = Settings.from_env(svix=False)
                except ConfigError as exc:
                    logs.setup()
                    logs.log(log, logging.ERROR, str(exc), reason="misconfigured")
                    raise
                logs.setup(settings.log_level)
                client = firestore.Client(
                    project=settings.gcp_project, database=settings.firestore_database
                )
                _built = FirestoreHeartbeatLog(client, ttl_days=settings.record_ttl_days)
    return _built


def reset() -> None:
    """Forget the built log (tests that change the environment between runs)."""
    global _built
    with _lock:
        _built = None
