"""In-memory fakes of the ports (notifier.domain.ports), for tests that need no cloud.

They keep the contract the service relies on, not the adapters' internals: a claim is granted to
one delivery at a time, ``sent`` and ``failed`` are final, a rejection is kept once per Pub/Sub
message. Any write of the store can be made to fail (:meth:`MemoryStore.fail`), refused or with
its answer lost. The Firestore and Svix adapters are proven against the emulator and the twin.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from notifier import bootstrap
from notifier.config import Settings
from notifier.domain import endpoint_health
from notifier.domain.claims import Claim, ClaimState, Look, RecordStatus
from notifier.domain.endpoint_health import Applied, EndpointHealth, Webhook
from notifier.domain.errors import NotifierError, Rejected, StoreUnavailable
from notifier.domain.events import Delivery, Event
from notifier.domain.heartbeat import Arrival
from notifier.domain.messages import PulledMessage
from notifier.domain.outcomes import Sent
from notifier.domain.ports import Checker
from notifier.domain.records import Record, StoredNotification
from notifier.handlers.dependencies import Dependencies

Fault = Literal["refused", "lost"]
_Write = TypeVar("_Write", bound=Callable[..., Any])


def failable(write: _Write) -> _Write:
    """A store write that :meth:`MemoryStore.fail` can make fail, by its name: ``refused``
    raises before anything changes, ``lost`` changes the record, then raises (the answer lost,
    as a deadline passing after Firestore committed)."""

    @functools.wraps(write)
    def guarded(store: MemoryStore, *args: Any, **kwargs: Any) -> Any:
        fault = store.next_fault(write.__name__)
        if fault == "refused":
            raise StoreUnavailable(f"firestore: ServiceUnavailable ({write.__name__} refused)")
        result = write(store, *args, **kwargs)
        if fault == "lost":
            raise StoreUnavailable(f"firestore: DeadlineExceeded ({write.__name__} answer lost)")
        return result

    guarded.failable = True  # type: ignore[attr-defined]
    return guarded  # type: ignore[return-value]


@dataclass
class MemoryStore:
    """Notifications, applications and rejections in dicts; claims under one lock. It answers
    the operator queries too (equality filters, as the Firestore store)."""

    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    applications: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    unavailable: bool = False  # every claim fails as Firestore down does
    lease_left: float = 30.0  # what a held claim says is left of its holder's lease
    faults: dict[str, list[Fault]] = field(default_factory=dict)  # by write, the next ones first
    deliveries: list[Delivery] = field(default_factory=list)  # each claim's, as it was given
    looks: list[Look | None] = field(default_factory=list)  # each claim's ``looked``, as given

    def fail(self, operation: str, fault: Fault = "refused", *, times: int = 1) -> None:
        """The next ``times`` calls of the write ``operation`` (a method's name) fail so."""
        if not getattr(getattr(type(self), operation, None), "failable", False):
            raise ValueError(f"{operation!r} is not a write of the store")
        self.faults.setdefault(operation, []).extend([fault] * times)

    def next_fault(self, operation: str) -> Fault | None:
        """The fault waiting for this call of ``operation``, taken; None: it succeeds."""
        waiting = self.faults.get(operation)
        return waiting.pop(0) if waiting else None

    @failable
    def claim(self, event: Event, delivery: Delivery, looked: Look | None = None) -> Claim:
        self.deliveries.append(delivery)
        self.looks.append(looked)
        if self.unavailable:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        with self.lock:
            record = self.notifications.get(event.id)
            if record is None:
                record = self.notifications[event.id] = {
                    "status": RecordStatus.PENDING.value,
                    "project": event.project,
                    "event_type": event.type,
                    "attempts": 0,
                    "held": False,
                    "payload": event.body,
                    "created_at": self.clock(),
                    "pubsub_message_id": delivery.message_id or None,
                }
            recorded = (record["project"], record["event_type"])
            if recorded != (event.project, event.type):  # another event's id, as the store says
                return Claim(event.id, ClaimState.CONFLICT, recorded_as=recorded)
            record["updated_at"] = self.clock()
            if record["status"] == RecordStatus.SENT:
                return Claim(event.id, ClaimState.SENT, record["attempts"], record["message_id"])
            if record["status"] == RecordStatus.FAILED:
                return Claim(event.id, ClaimState.FAILED, record["attempts"])
            if record["held"]:
                return Claim(
                    event.id, ClaimState.HELD, record["attempts"], held_for=self.lease_left
                )
            first_call = record.get("svix_first_call_at")  # None: no delivery called Svix yet
            # ``holder``: the holder's token (Firestore's update_time), for its conditioned writes
            record.update(attempts=record["attempts"] + 1, held=True, holder=record["attempts"] + 1)
            record.setdefault("svix_first_call_at", self.clock())
            replays = record.get("replays", 0)
            return Claim(
                event.id,
                ClaimState.CLAIMED,
                record["attempts"],
                version=record["holder"],
                replays=replays,
                svix_first_call_at=first_call,
            )

    def _holds(self, claim: Claim) -> bool:
        """The holder's conditioned writes land only while the claim is still its own."""
        record = self.notifications.get(claim.event_id)
        return record is not None and claim.version in (None, record.get("holder"))

    @failable
    def mark_sent(self, claim: Claim, svix_message_id: str | None, svix_status: int) -> None:
        with self.lock:
            self.notifications[claim.event_id].update(
                status=RecordStatus.SENT.value,
                message_id=svix_message_id,
                svix_status=svix_status,
                held=False,
            )

    @failable
    def mark_failed(self, claim: Claim, error: NotifierError) -> bool:
        with self.lock:
            if not self._holds(claim):
                return False
            self.notifications[claim.event_id].update(
                status=RecordStatus.FAILED.value,
                last_error=error.summary(),
                failed_at=self.clock(),
                held=False,
            )
        return True

    @failable
    def release(self, claim: Claim, error: NotifierError, hold: float = 0.0) -> bool:
        with self.lock:
            if not self._holds(claim):
                return False
            self.notifications[claim.event_id].update(
                last_error=error.summary(), held=False, hold=hold
            )
        return True

    @failable
    def renew(self, claim: Claim) -> Claim | None:
        """The holder's claim, with a new version as Firestore's ``update_time``, while it is
        held and pending; None once it was taken or closed (a test takes it by setting ``held``
        False); ``renewals`` counts the renewals."""
        if self.unavailable:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        with self.lock:
            record = self.notifications.get(claim.event_id)
            if record is None or not record["held"] or record["status"] != RecordStatus.PENDING:
                return None
            if not self._holds(claim):
                return None
            record["renewals"] = record.get("renewals", 0) + 1
            record["holder"] = f"{record['attempts']}.{record['renewals']}"
            return replace(claim, version=record["holder"])

    def look(self, event_id: str) -> Look:
        if self.unavailable:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        with self.lock:
            record = self.notifications.get(event_id)
            if record is None:
                return Look(event_id, False)
            return Look(
                event_id,
                True,
                status=record["status"],
                project=record["project"],
                event_type=record["event_type"],
                pubsub_message_id=record.get("pubsub_message_id"),
                attempts=record["attempts"],
                svix_message_id=record.get("message_id"),
            )

    @failable
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

    @failable
    def save_application(self, project: str, svix_app_id: str) -> None:
        self.applications.setdefault(project, svix_app_id)

    # -- operator queries -----------------------------------------------------------------------

    def count(self, status: RecordStatus, *, project: str | None = None) -> int:
        return sum(1 for r in self.listing(status, project=project))

    def count_rejected(self) -> int:
        return len(self.rejected)

    def projects(self) -> set[str]:
        return set(self.applications)

    def listing(
        self, status: RecordStatus, *, project: str | None = None, event_type: str | None = None
    ) -> Iterator[Record]:
        for event_id, r in sorted(self.notifications.items()):
            wanted = {"status": status.value, "project": project, "event_type": event_type}
            if all(value is None or r.get(name) == value for name, value in wanted.items()):
                yield Record(
                    event_id=event_id,
                    status=r["status"],
                    project=r.get("project"),
                    event_type=r.get("event_type"),
                    attempts=r.get("attempts", 0),
                    replays=r.get("replays", 0),
                    created_at=r.get("created_at"),
                    updated_at=r.get("updated_at"),
                    lease_expires_at=r.get("lease_expires_at"),
                    last_error=r.get("last_error"),
                    failed_at=r.get("failed_at"),
                )

    def notification(self, event_id: str) -> StoredNotification | None:
        r = self.notifications.get(event_id)
        if r is None:
            return None
        payload = r.get("payload") if r["status"] != RecordStatus.SENT else None
        return StoredNotification(event_id, r["status"], r.get("replays", 0), payload)

    @failable
    def reopen(self, event_id: str) -> bool:
        with self.lock:
            r = self.notifications.get(event_id)
            if r is None or r["status"] != RecordStatus.FAILED:
                return False
            r.update(status=RecordStatus.PENDING.value, replays=r.get("replays", 0) + 1)
            return True


class MemoryHeartbeatLog:
    """``heartbeats/`` in memory, with the port's contract: the first record of an event id wins;
    ``unavailable``: every record fails as Firestore down does."""

    def __init__(self, *, unavailable: bool = False) -> None:
        self.kept: dict[str, tuple[datetime, datetime]] = {}
        self.unavailable = unavailable

    def record(self, event_id: str, published_at: datetime, arrived_at: datetime) -> bool:
        if self.unavailable:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        if event_id in self.kept:
            return False
        self.kept[event_id] = (published_at, arrived_at)
        return True

    def latest(self) -> Arrival | None:
        return None


@dataclass
class MemoryDeadLetters:
    """A dead-letter subscription: pulled messages are leased until acknowledged or let go."""

    path: str = "projects/p/subscriptions/events-dead-letter-sub"
    waiting: list[PulledMessage] = field(default_factory=list)
    leased: dict[str, PulledMessage] = field(default_factory=dict)
    acked: list[str] = field(default_factory=list)
    refuse_acks: set[str] = field(default_factory=set)  # ack ids whose acknowledgement fails

    def add(self, message_id: str, data: bytes, **attributes: str) -> None:
        self.waiting.append(PulledMessage(f"ack-{message_id}", message_id, data, attributes))

    def pull(self, max_messages: int, wait: float) -> list[PulledMessage]:
        taken, self.waiting = self.waiting[:max_messages], self.waiting[max_messages:]
        self.leased.update((m.ack_id, m) for m in taken)
        return taken

    def hold(self, ack_ids: list[str], seconds: int) -> None:
        if seconds == 0:  # back to the subscription
            self.waiting += [self.leased.pop(a) for a in ack_ids if a in self.leased]

    def acknowledge(self, ack_ids: list[str]) -> set[str]:
        accepted = {a for a in ack_ids if a in self.leased and a not in self.refuse_acks}
        for ack_id in accepted:
            self.acked.append(self.leased.pop(ack_id).message_id)
        return accepted

    def close(self) -> None:
        pass


@dataclass
class MemoryTopic:
    """A topic: what was published to it, or the failure to answer for a message."""

    published: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    fail_for: set[bytes] = field(default_factory=set)

    def publish(self, messages: list[tuple[bytes, dict[str, str]]]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for data, attributes in messages:
            if data in self.fail_for:
                results.append(TimeoutError("publish timed out"))
                continue
            self.published.append((data, attributes))
            results.append(f"new-{len(self.published)}")
        return results

    def close(self) -> None:
        pass


@dataclass
class ScriptedSvix:
    """Answers each send with the next scripted result (a ``Sent`` or an error to raise), else
    accepts it; remembers the messages it accepted by event id, as Svix's ``eventId`` does."""

    script: list[Sent | NotifierError] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    apps: list[str] = field(default_factory=list)  # each application asked for, failed or not
    app_failures: list[NotifierError] = field(default_factory=list)  # raised by the next ones
    links: list[tuple[str, int]] = field(default_factory=list)
    sends: list[tuple[str, str] | tuple[str, int]] = field(default_factory=list)
    lookups: list[Sent | NotifierError | None] = field(default_factory=list)  # find's answers
    found: list[str] = field(default_factory=list)  # the event ids looked up
    closed: bool = False

    def send(self, event: Event, replays: int = 0) -> Sent:
        """``sends`` gets (project, event id), or (event id, replays) for a replay."""
        self.sends.append((event.project, event.id) if not replays else (event.id, replays))
        result = self.script.pop(0) if self.script else None
        if isinstance(result, NotifierError):
            raise result
        if event.id in self.messages:
            return Sent(self.messages[event.id]["id"], 409)
        self.messages[event.id] = {"id": f"msg_{event.id}", "payload": event.payload}
        return result or Sent(f"msg_{event.id}", 202)

    def find(self, event: Event) -> Sent | None:
        """The next scripted lookup answer if any, else what this Svix holds."""
        self.found.append(event.id)
        if self.lookups:
            answer = self.lookups.pop(0)
            if isinstance(answer, NotifierError):
                raise answer
            return answer
        held = self.messages.get(event.id)
        return None if held is None else Sent(held["id"], 200)

    def ensure_application(self, project: str) -> str:
        self.apps.append(project)
        if self.app_failures:
            raise self.app_failures.pop(0)
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
    store: MemoryStore | None = None,
    sender: ScriptedSvix | None = None,
    *,
    load_catalog: Callable[[], Checker] | None = None,
    **settings: Any,
) -> Dependencies:
    """A function instance's dependencies as bootstrap builds them, on the fakes (no retry
    budget unless asked, no real sleeping); ``load_catalog``: the drift check's catalog."""
    config = Settings(
        gcp_project="notifier-test",
        svix_api_key="testsk_unused",
        **{"retry_budget_seconds": 0.0, **settings},
    )
    return bootstrap.build(
        config,
        store=store if store is not None else MemoryStore(),
        sender=sender if sender is not None else ScriptedSvix(),
        sleep=lambda seconds: None,
        load_catalog=load_catalog,
    )


class MemoryEndpointHealth:
    """``endpoint_health/`` in memory, with the port's contract: a ``svix-id`` is applied once,
    by the domain's own rules; ``unhealthy`` lists failing, disabled and recovering endpoints."""

    def __init__(self, *, unavailable: bool = False) -> None:
        self.endpoints: dict[tuple[str, str], EndpointHealth] = {}
        self.seen: set[str] = set()
        self.unavailable = unavailable  # every record fails as Firestore down does

    def record(self, svix_id: str, webhook: Webhook, arrived_at: datetime) -> Applied:
        if self.unavailable:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        if svix_id in self.seen:
            return Applied(new=False)
        key = (webhook.app_id or "", webhook.endpoint_id or "")
        after = endpoint_health.apply(self.endpoints.get(key), webhook, arrived_at)
        self.seen.add(svix_id)
        if after is None:
            self.endpoints.pop(key, None)
        else:
            self.endpoints[key] = after
        return Applied(new=True, health=after)

    def started(
        self, app_id: str, endpoint_id: str, recovery: endpoint_health.RecoveryStarted
    ) -> EndpointHealth | None:
        if self.unavailable:
            raise StoreUnavailable("firestore: ServiceUnavailable")
        current = self.endpoints.get((app_id, endpoint_id))
        if current is None:
            return None
        after = endpoint_health.started(current, recovery)
        self.endpoints[(app_id, endpoint_id)] = after
        return after

    def unhealthy(self) -> list[EndpointHealth]:
        found = [h for h in self.endpoints.values() if h.state != endpoint_health.State.HEALTHY]
        return sorted(found, key=lambda h: (h.since, h.project, h.endpoint_id))
