"""In-memory fakes of the ports (notifier.domain.ports), for tests that need no cloud.

They keep the contract the service relies on, not the adapters' internals: a claim is granted to
one delivery at a time, ``sent`` and ``failed`` are final, a rejection is kept once per Pub/Sub
message. The Firestore and Svix adapters are proven against the emulator and the twin instead.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from notifier.applications import ApplicationDirectory
from notifier.config import Settings
from notifier.dependencies import Dependencies
from notifier.domain.claims import Claim, ClaimState, RecordStatus
from notifier.domain.events import Delivery, Event
from notifier.domain.outcomes import Sent
from notifier.errors import NotifierError, Rejected
from notifier.service import Notifier


@dataclass
class MemoryStore:
    """Notifications, applications and rejections in dicts; claims under one lock."""

    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    applications: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, event: Event, delivery: Delivery) -> Claim:
        with self.lock:
            record = self.notifications.get(event.id)
            if record is None:
                record = self.notifications[event.id] = {
                    "status": RecordStatus.PENDING.value,
                    "project": event.project,
                    "event_type": event.type,
                    "attempts": 0,
                    "held": False,
                }
            if record["status"] == RecordStatus.SENT:
                return Claim(event.id, ClaimState.SENT, record["attempts"], record["message_id"])
            if record["status"] == RecordStatus.FAILED:
                return Claim(event.id, ClaimState.FAILED, record["attempts"])
            if record["held"]:
                return Claim(event.id, ClaimState.HELD, record["attempts"], held_for=30.0)
            record.update(attempts=record["attempts"] + 1, held=True)
            return Claim(event.id, ClaimState.CLAIMED, record["attempts"])

    def mark_sent(self, claim: Claim, svix_message_id: str | None, svix_status: int) -> None:
        with self.lock:
            self.notifications[claim.event_id].update(
                status=RecordStatus.SENT.value, message_id=svix_message_id, held=False
            )

    def mark_failed(self, claim: Claim, error: NotifierError) -> bool:
        with self.lock:
            self.notifications[claim.event_id].update(
                status=RecordStatus.FAILED.value, last_error=error.summary(), held=False
            )
        return True

    def release(self, claim: Claim, error: NotifierError, hold: float = 0.0) -> bool:
        with self.lock:
            self.notifications[claim.event_id].update(last_error=error.summary(), held=False)
        return True

    def reject(self, rejection: Rejected, delivery: Delivery, raw: bytes | None) -> str:
        raw = raw or b""
        doc_id = (
            f"pubsub-{delivery.message_id}"
            if delivery.message_id
            else "sha256-" + hashlib.sha256(raw).hexdigest()
        )
        with self.lock:
            kept = self.rejected.setdefault(doc_id, {"deliveries": 0})
            kept.update(reason=rejection.code, errors=rejection.errors, raw=raw)
            kept["deliveries"] += 1
        return doc_id

    def application_id(self, project: str) -> str | None:
        return self.applications.get(project)

    def save_application(self, project: str, svix_app_id: str) -> None:
        self.applications.setdefault(project, svix_app_id)


@dataclass
class ScriptedSvix:
    """Answers each send with the next scripted result (a ``Sent`` or an error to raise), else
    accepts it; remembers the messages it accepted by event id, as Svix's ``eventId`` does."""

    script: list[Sent | NotifierError] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    apps: list[str] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)
    closed: bool = False

    def send(self, event: Event, replays: int = 0) -> Sent:
        result = self.script.pop(0) if self.script else None
        if isinstance(result, NotifierError):
            raise result
        if event.id in self.messages:
            return Sent(self.messages[event.id]["id"], 409)
        self.messages[event.id] = {"id": f"msg_{event.id}", "payload": event.payload}
        return result or Sent(f"msg_{event.id}", 202)

    def ensure_application(self, project: str) -> str:
        self.apps.append(project)
        return f"app_{project}"

    def portal_link(self, project: str, expiry_seconds: int) -> str:
        result = self.script.pop(0) if self.script else None
        if isinstance(result, NotifierError):
            raise result
        self.links.append((project, expiry_seconds))
        return f"https://app.svix.test/login#key=secret-{project}"

    def close(self) -> None:
        self.closed = True


def dependencies(
    store: MemoryStore | None = None, sender: ScriptedSvix | None = None, **settings: Any
) -> Dependencies:
    """A function instance's dependencies made of the fakes (no retry budget unless asked)."""
    store = store if store is not None else MemoryStore()
    sender = sender if sender is not None else ScriptedSvix()
    config = Settings(
        gcp_project="notifier-test",
        svix_api_key="testsk_unused",
        **{"retry_budget_seconds": 0.0, **settings},
    )
    notifier = Notifier(
        store,
        sender,
        ApplicationDirectory(store, sender),
        retry_budget=config.retry_budget_seconds,
        sleep=lambda seconds: None,
    )
    return Dependencies(config, store, sender, notifier)
