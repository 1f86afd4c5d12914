"""Deliveries as svix-server's worker.rs makes them: a signed POST of the raw payload to every
matching endpoint, retried on `retry_schedule` (times on the twin's clock, so tests can move
through days of it), announced by operational webhooks (failing, exhausted, recovered,
disabled). Only loopback targets are called (the sandbox's network rule).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import heapq
import hmac
import itertools
import math
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from devstack.svix_twin import endpoints, operational, operational_endpoints
from devstack.svix_twin.failures import FailureCache
from devstack.svix_twin.store import Db, new_id

# config.default.toml `retry_schedule`: seconds between attempts, after the immediate one.
REAL_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
SHORT_SCHEDULE = (0.1, 0.5, 1.0)
JITTER_DELTA = 0.2  # worker.rs
OVERLOAD_PENALTY_SECONDS = 60.0  # worker.rs OVERLOAD_PENALTY_SECS: 429s and timeouts
FAILING_AFTER = 4  # worker.rs OP_WEBHOOKS_SEND_FAILING_EVENT_AFTER
RECOVER_LIMIT = 10_000  # recovery.rs
USER_AGENT = "Svix-Webhooks/1.0"  # worker.rs OUR_USER_AGENT: "Svix-Webhooks/<version>"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
TIMEOUT_SECONDS = 5.0


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """worker.rs::sign_msg: `v1,` + base64 HMAC-SHA256 of `{msg_id}.{timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay(
    base: float, status: int | None, timed_out: bool, retry_after: float | None, jitter: float
) -> float:
    """worker.rs::calculate_retry_delay: the overload penalty, Retry-After clamped to
    [base, 2 * base], then a jitter of +-JITTER_DELTA (`jitter` is the random draw in [-1, 1])."""
    if timed_out or status == 429:
        base = max(base, OVERLOAD_PENALTY_SECONDS)
    if retry_after is not None:
        base = min(max(retry_after, base), 2 * base)
    return base * (1 + JITTER_DELTA * jitter)


def _retry_after(headers: Message | None) -> float | None:
    """worker.rs::retry_after: an HTTP date or (ceiled) seconds."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return float(math.ceil(float(value)))
    except ValueError:
        pass
    try:
        return (email.utils.parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Task:
    """worker.rs MessageTask: `attempt` is attempt_count + 1; `operational` for operational
    webhooks (their endpoints live in db.op_endpoints and raise no operational webhooks)."""

    message: dict[str, Any]
    endpoint_id: str
    attempt: int = 1
    trigger: str = "scheduled"  # MessageAttemptTriggerType: scheduled | manual
    operational: bool = False


@dataclass
class _Outcome:
    status: int | None
    error: str | None = None
    timed_out: bool = False
    retry_after: float | None = None


class Deliveries:
    """One background thread working a queue of attempts due on the twin's clock."""

    def __init__(self, db: Db, seed: int = 0) -> None:
        self._db = db
        self._clock = db.clock
        self.schedule: tuple[float, ...] = SHORT_SCHEDULE
        self.failures = FailureCache(db.clock)
        self._random = random.Random(seed)
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, Task]] = []
        self._seq = itertools.count()
        self._attempts: list[dict[str, Any]] = []
        self._op_attempts: list[dict[str, Any]] = []
        self._endpoint_faults: dict[str, int | None] = {}
        self._running = 0
        self._stopped = False
        self.operational_webhooks = operational.OperationalWebhooks(db, self._push_operational)
        db.clock.on_advance(self._wake)
        self._thread = threading.Thread(target=self._work, name="svix-twin-delivery", daemon=True)
        self._thread.start()

    # --- queueing --------------------------------------------------------------------------

    def enqueue(self, message: dict[str, Any]) -> None:
        """create_message_inner queues a task only when some endpoint matches."""
        for endpoint in endpoints.targets(self._db, message):
            self._push(0.0, Task(message, endpoint["id"]))

    def _push_operational(self, message: dict[str, Any], endpoint_id: str) -> None:
        self._push(0.0, Task(message, endpoint_id, operational=True))

    def _push(self, delay: float, task: Task) -> None:
        with self._cond:
            due = self._clock.now() + delay
            heapq.heappush(self._queue, (due, next(self._seq), task))
            self._cond.notify_all()

    def recover(self, app_id: str, endpoint_id: str, since: datetime, until: datetime) -> int:
        """recovery.rs::bulk_recover_failed_messages: one manual task per message that has a
        failed attempt to the endpoint within [since, until) and no successful one there."""
        with self._cond:
            window = [
                a
                for a in self._attempts
                if a["endpoint_id"] == endpoint_id and since <= a["_created"] < until
            ]
        succeeded = {a["msg_id"] for a in window if a["status"] == "success"}
        failed = {a["msg_id"]: a["_message"] for a in window if a["status"] == "fail"}
        msg_ids = sorted(m for m in failed if m not in succeeded)[:RECOVER_LIMIT]
        for msg_id in msg_ids:
            self._push(0.0, Task(failed[msg_id], endpoint_id, trigger="manual"))
        return len(msg_ids)

    # --- test controls -----------------------------------------------------------------------

    def fail_endpoint(self, endpoint_id: str, status: int | None) -> None:
        """Answer deliveries to this endpoint with `status` (None: connection refused)."""
        with self._cond:
            self._endpoint_faults[endpoint_id] = status

    def heal_endpoint(self, endpoint_id: str) -> None:
        with self._cond:
            self._endpoint_faults.pop(endpoint_id, None)

    def attempts(self, of_operational: bool = False) -> list[dict[str, Any]]:
        with self._cond:
            records = self._op_attempts if of_operational else self._attempts
            return [{k: v for k, v in a.items() if not k.startswith("_")} for a in records]

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()
            self._attempts.clear()
            self._op_attempts.clear()
            self._endpoint_faults.clear()
        self.failures.clear()
        self.operational_webhooks.clear()

    def idle(self, timeout: float) -> bool:
        """Wait until no attempt is queued or running."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout)

    def settle(self, timeout: float) -> bool:
        """Wait until no attempt is due now or running (later ones may stay queued)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: (
                    not self._running and (not self._queue or self._queue[0][0] > self._clock.now())
                ),
                timeout,
            )

    def next_due_in(self) -> float | None:
        """Seconds on the twin's clock until the next queued attempt; None if none is queued."""
        with self._cond:
            return max(0.0, self._queue[0][0] - self._clock.now()) if self._queue else None

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # --- the worker ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > self._clock.now()
                ):
                    wait = self._queue[0][0] - self._clock.now() if self._queue else None
                    self._cond.wait(wait)
                if self._stopped:
                    return
                _, _, task = heapq.heappop(self._queue)
                self._running += 1
            try:
                self._attempt(task)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def _target(self, task: Task) -> dict[str, Any] | None:
        """message_app.rs::filtered_endpoints: "No disabled or deleted endpoints ever" (manual
        tasks too), nor endpoints of a deleted application (layered_fetch)."""
        if task.operational:
            endpoint = operational_endpoints.find(self._db, task.endpoint_id)
        else:
            if self._db.find_app(task.message["app_id"]) is None:
                return None
            endpoint = endpoints.find(self._db, task.message["app_id"], task.endpoint_id)
        return endpoint if endpoint is not None and not endpoint["disabled"] else None

    def _attempt(self, task: Task) -> None:
        endpoint = self._target(task)
        if endpoint is None:
            return
        outcome = self._post(task, endpoint)
        record = self._record(task, endpoint, outcome)
        failed = record["status"] == "fail"
        if task.operational:
            if failed and outcome.error != "blocked" and task.attempt <= len(self.schedule):
                self._retry(task, outcome)
            return
        if not failed:
            self._succeeded(task, record)
        elif task.trigger == "manual" or outcome.error == "blocked":
            return  # "Manual retry failed": no retry, no operational webhook
        elif task.attempt <= len(self.schedule):
            if task.attempt == FAILING_AFTER:
                self._emit("message.attempt.failing", task, record)
            self._retry(task, outcome)
        else:
            self._exhausted(task, endpoint, record)

    def _retry(self, task: Task, outcome: _Outcome) -> None:
        base = self.schedule[task.attempt - 1]
        with self._cond:
            draw = self._random.uniform(-1.0, 1.0)
        delay = retry_delay(base, outcome.status, outcome.timed_out, outcome.retry_after, draw)
        self._push(delay, replace(task, attempt=task.attempt + 1))

    def _succeeded(self, task: Task, record: dict[str, Any]) -> None:
        """handle_successful_dispatch: forgive the failures; `recovered` after a `failing`."""
        self.failures.success(task.endpoint_id)
        if task.trigger == "scheduled" and task.attempt - 1 >= FAILING_AFTER:
            self._emit("message.attempt.recovered", task, record)

    def _exhausted(self, task: Task, endpoint: dict[str, Any], record: dict[str, Any]) -> None:
        """handle_failed_dispatch, schedule exhausted: `exhausted`, then maybe disable."""
        self._emit("message.attempt.exhausted", task, record)
        first_failure = self.failures.failure(task.endpoint_id)
        if first_failure is None:
            return
        with self._db.lock:
            endpoint["disabled"] = True
            endpoint["first_failure_at"] = first_failure
        app_id = task.message["app_id"]
        self._db.emit_operational(
            "endpoint.disabled",
            operational.disabled_event(self._db, app_id, endpoint, first_failure, "automatic"),
        )

    def _emit(self, event_type: str, task: Task, record: dict[str, Any]) -> None:
        data = operational.attempt_event(self._db, task.message, task.endpoint_id, record)
        self._db.emit_operational(event_type, data)

    def _record(self, task: Task, endpoint: dict[str, Any], outcome: _Outcome) -> dict[str, Any]:
        created = self._clock.utcnow()
        ok = outcome.status is not None and 200 <= outcome.status < 300
        record: dict[str, Any] = {
            "id": new_id("atmpt_"),
            "endpoint_id": endpoint["id"],
            "endpoint_uid": endpoint["uid"],
            "url": endpoint["url"],
            "msg_id": task.message["id"],
            "attempt": task.attempt,
            "trigger": task.trigger,
            "status": "success" if ok else "fail",
            "status_code": outcome.status,
            "error": outcome.error,
            "at": created.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "_created": created,
            "_message": task.message,
        }
        if task.operational:
            record["type"] = task.message["type"]
        else:
            record["app_id"] = task.message["app_id"]
            record["event_id"] = task.message["eventId"]
        with self._cond:
            (self._op_attempts if task.operational else self._attempts).append(record)
        return record

    def _post(self, task: Task, endpoint: dict[str, Any]) -> _Outcome:
        if urllib.parse.urlsplit(endpoint["url"]).hostname not in LOOPBACK:
            return _Outcome(None, "blocked")
        with self._cond:
            faulted = endpoint["id"] in self._endpoint_faults
            fault = self._endpoint_faults.get(endpoint["id"])
        if faulted:
            return _Outcome(fault, None if fault is not None else "ConnectionRefusedError")
        # Signed with the wall clock: receivers verify against theirs, which the twin cannot move.
        timestamp = int(time.time())
        message = task.message
        body = message["raw_payload"]
        if task.operational:
            keys = operational_endpoints.signing_secrets(self._db, endpoint)
            extra = dict(endpoint["headers"])
        else:
            keys, extra = [endpoint["secret"]], {}
        headers = {
            **extra,
            "svix-id": message["id"],
            "svix-timestamp": str(timestamp),
            "svix-signature": " ".join(sign(k, message["id"], timestamp, body) for k in keys),
            "user-agent": USER_AGENT,
            "content-type": "application/json",
        }
        request = urllib.request.Request(endpoint["url"], body.encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return _Outcome(response.status)
        except urllib.error.HTTPError as exc:
            return _Outcome(exc.code, retry_after=_retry_after(exc.headers))
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            timed_out = isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)
            return _Outcome(None, type(reason).__name__, timed_out=timed_out)
