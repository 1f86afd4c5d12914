"""Deliveries as svix-server's worker.rs makes them: a signed POST of the raw payload to every
matching endpoint, retried on failure. The schedule is shortened (real one: REAL_SCHEDULE, from
the docs' retries.mdx); only loopback targets are called (the sandbox's network rule).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from devstack.svix_twin import endpoints
from devstack.svix_twin.store import Db

REAL_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)  # after the immediate attempt
SHORT_SCHEDULE = (0.1, 0.5, 1.0)
USER_AGENT = "Svix-Webhooks/1.0"  # worker.rs OUR_USER_AGENT: "Svix-Webhooks/<version>"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
TIMEOUT_SECONDS = 5.0


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """worker.rs::sign_msg: `v1,` + base64 HMAC-SHA256 of `{msg_id}.{timestamp}.{body}`."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class Deliveries:
    """One background thread working a queue of due attempts; records every attempt."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self.schedule: tuple[float, ...] = SHORT_SCHEDULE
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self._attempts: list[dict[str, Any]] = []
        self._running = 0
        self._stopped = False
        self._thread = threading.Thread(target=self._work, name="svix-twin-delivery", daemon=True)
        self._thread.start()

    def enqueue(self, message: dict[str, Any]) -> None:
        """create_message_inner queues a task only when some endpoint matches."""
        for endpoint in endpoints.targets(self._db, message):
            self._push(0.0, {"message": message, "endpoint": endpoint, "attempt": 1})

    def _push(self, delay: float, task: dict[str, Any]) -> None:
        with self._cond:
            heapq.heappush(self._queue, (time.monotonic() + delay, next(self._seq), task))
            self._cond.notify_all()

    def attempts(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(a) for a in self._attempts]

    def clear(self) -> None:
        with self._cond:
            self._queue.clear()
            self._attempts.clear()

    def idle(self, timeout: float) -> bool:
        """Wait until no attempt is due or running."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._running, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (
                    not self._queue or self._queue[0][0] > time.monotonic()
                ):
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
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

    def _attempt(self, task: dict[str, Any]) -> None:
        message, endpoint, attempt = task["message"], task["endpoint"], task["attempt"]
        status, error = self._post(message, endpoint)
        record = {
            "endpoint_id": endpoint["id"],
            "endpoint_uid": endpoint["uid"],
            "url": endpoint["url"],
            "app_id": message["app_id"],
            "msg_id": message["id"],
            "event_id": message["eventId"],
            "attempt": attempt,
            "status_code": status,
            "error": error,
            "at": self._db.clock.iso(),
        }
        with self._cond:
            self._attempts.append(record)
        failed = status is None or not 200 <= status < 300
        if failed and error != "blocked" and attempt <= len(self.schedule):
            retry = {**task, "attempt": attempt + 1}
            self._push(self.schedule[attempt - 1], retry)

    def _post(
        self, message: dict[str, Any], endpoint: dict[str, Any]
    ) -> tuple[int | None, str | None]:
        if urllib.parse.urlsplit(endpoint["url"]).hostname not in LOOPBACK:
            return None, "blocked"
        # Signed with the wall clock: receivers verify against theirs, which the twin cannot move.
        timestamp = int(time.time())
        body = message["raw_payload"]
        headers = {
            "svix-id": message["id"],
            "svix-timestamp": str(timestamp),
            "svix-signature": sign(endpoint["secret"], message["id"], timestamp, body),
            "user-agent": USER_AGENT,
            "content-type": "application/json",
        }
        request = urllib.request.Request(endpoint["url"], body.encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                return response.status, None
        except urllib.error.HTTPError as exc:
            return exc.code, None
        except (OSError, ValueError) as exc:
            return None, type(exc).__name__
