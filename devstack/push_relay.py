"""Pub/Sub push, done right against the emulator: pull, then POST as Eventarc would.

Why a relay rather than the emulator's push subscriptions:
docs/decisions/push-relay-for-redelivery.md. It POSTs
each message as a binary-mode CloudEvent whose JSON body is the push envelope, with push
semantics:

* 102/200/201/202/204 -> ack; any other status, a connection error or a timeout -> retry.
* Retries back off exponentially per message: ``min_backoff * 2**(failures-1)``, capped at
  ``max_backoff``, without jitter so tests can assert on the gaps; the message is held (its ack
  deadline extended) meanwhile, and a copy the emulator redelivers is merged.
* At most ``concurrency`` POSTs are in flight at once.

Clients: every function takes ``emulator_host``; without it ``PUBSUB_EMULATOR_HOST`` is used. One
of the two is required - this module refuses to talk to real Pub/Sub.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import heapq
import itertools
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import requests
from google.api_core import exceptions as gexc
from google.api_core import retry
from google.cloud import pubsub_v1
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport
from google.pubsub_v1.types import PubsubMessage

from devstack.cloudevents import PUBLISHED, eventarc_headers

log = logging.getLogger(__name__)

CE_TYPE = PUBLISHED
SUCCESS_STATUSES = frozenset({102, 200, 201, 202, 204})  # what Pub/Sub push treats as an ack
LEASE_SECONDS = 60  # ack deadline we keep extending held and in-flight messages to
RPC_TIMEOUT = 10.0
# The clients retry for 60 s by default: far too long for a stop() to hang on a dead emulator.
RPC_RETRY = retry.Retry(initial=0.1, maximum=1.0, timeout=RPC_TIMEOUT)


# --- clients ------------------------------------------------------------------------------------


def emulator_host(explicit: str | None = None) -> str:
    """The emulator to talk to: ``explicit``, else PUBSUB_EMULATOR_HOST; never real Pub/Sub."""
    host = explicit or os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        raise RuntimeError(
            "no Pub/Sub emulator: pass emulator_host or set PUBSUB_EMULATOR_HOST "
            "(devstack refuses to talk to real Pub/Sub)"
        )
    return host


def subscriber_client(host: str | None = None) -> pubsub_v1.SubscriberClient:
    """A subscriber on an insecure channel to the emulator; close it when done."""
    channel = grpc.insecure_channel(emulator_host(host))
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))


_publishers: dict[str, pubsub_v1.PublisherClient] = {}
_publishers_lock = threading.Lock()


def publisher_client(host: str | None = None) -> pubsub_v1.PublisherClient:
    """A shared, thread-safe publisher per emulator host (its batching threads are reused)."""
    host = emulator_host(host)
    with _publishers_lock:
        client = _publishers.get(host)
        if client is None:
            channel = grpc.insecure_channel(host)
            client = pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=channel))
            _publishers[host] = client
        return client


def _duration(seconds: float | None) -> datetime.timedelta | None:
    return None if seconds is None else datetime.timedelta(seconds=seconds)


def ensure_topic_and_subscription(
    project: str,
    topic: str,
    subscription: str,
    *,
    push_endpoint: str | None = None,
    ack_deadline: int = 60,
    min_backoff: float | None = None,
    max_backoff: float | None = None,
    emulator_host: str | None = None,
) -> None:
    """Creates the topic and subscription, or brings an existing subscription to this config.

    ``push_endpoint`` makes it an emulator push subscription (see the module docstring for why
    the relay is usually better); ``min_backoff``/``max_backoff`` set its retry policy.
    """
    topic_path = f"projects/{project}/topics/{topic}"
    sub_path = f"projects/{project}/subscriptions/{subscription}"
    with contextlib.suppress(gexc.AlreadyExists):
        publisher_client(emulator_host).create_topic(name=topic_path)
    config: dict[str, Any] = {
        "push_config": {"push_endpoint": push_endpoint} if push_endpoint else {},
        "ack_deadline_seconds": ack_deadline,
    }
    if min_backoff is not None or max_backoff is not None:
        config["retry_policy"] = {
            key: value
            for key, value in (
                ("minimum_backoff", _duration(min_backoff)),
                ("maximum_backoff", _duration(max_backoff)),
            )
            if value is not None
        }
    with subscriber_client(emulator_host) as subscriber:
        try:
            subscriber.create_subscription(
                request={"name": sub_path, "topic": topic_path, **config}
            )
            return
        except gexc.AlreadyExists:
            existing = subscriber.get_subscription(subscription=sub_path)
        if existing.topic != topic_path:
            raise ValueError(f"{sub_path} exists on {existing.topic}, not {topic_path}")
        if "retry_policy" not in config:
            config["retry_policy"] = {}  # clear a policy left from an earlier configuration
        subscriber.update_subscription(
            request={
                "subscription": {"name": sub_path, "topic": topic_path, **config},
                "update_mask": {"paths": list(config)},
            }
        )


def publish(
    project: str,
    topic: str,
    payloads: list[bytes],
    attributes: dict[str, str] | None = None,
    *,
    emulator_host: str | None = None,
    timeout: float = 30.0,
) -> list[str]:
    """Publishes each payload (``b""`` = a message with attributes only); returns message ids.

    Safe to call from many threads at once: they share one batching publisher per host.
    """
    client = publisher_client(emulator_host)
    topic_path = f"projects/{project}/topics/{topic}"
    futures = [client.publish(topic_path, payload, **(attributes or {})) for payload in payloads]
    return [future.result(timeout=timeout) for future in futures]


# --- the Eventarc request -----------------------------------------------------------------------


def push_envelope(
    message: PubsubMessage, subscription: str, delivery_attempt: int | None = None
) -> dict[str, Any]:
    """The Pub/Sub push JSON body (also the CloudEvent ``data`` Eventarc delivers).

    Like real push, ``data`` is absent when the message has none, and ids and times appear in
    both camelCase and snake_case. Times use the proto3 JSON form (e.g. ``...T10:44:45.957Z``).
    """
    pb = PubsubMessage.pb(message)
    publish_time = pb.publish_time.ToJsonString()
    body: dict[str, Any] = {}
    if pb.data:
        body["data"] = base64.b64encode(pb.data).decode("ascii")
    body["attributes"] = dict(pb.attributes)
    body["messageId"] = body["message_id"] = pb.message_id
    body["publishTime"] = body["publish_time"] = publish_time
    if pb.ordering_key:
        body["orderingKey"] = pb.ordering_key
    if delivery_attempt is not None:
        body["deliveryAttempt"] = delivery_attempt
    return {"message": body, "subscription": subscription}


def cloud_event_headers(message: PubsubMessage, topic: str) -> dict[str, str]:
    """Binary-mode CloudEvent headers as Eventarc sets them for ``messagePublished``."""
    pb = PubsubMessage.pb(message)
    return eventarc_headers(pb.message_id, topic, pb.publish_time.ToJsonString())


# --- the relay ----------------------------------------------------------------------------------


@dataclass(eq=False)
class _Held:
    """A pulled, not yet acked message; ``ack_ids`` grows if the emulator redelivers it."""

    message: PubsubMessage
    ack_ids: list[str]
    lease_until: float
    failures: int = 0


@dataclass
class _MessageStats:
    deliveries: int = 0
    statuses: list[int | str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    acked: bool = False
    acked_at: float | None = None


class PushRelay:
    """Pulls ``subscription`` and pushes each message to ``endpoint_url`` as a CloudEvent.

    ``stats`` counts every POST; ``per_message[id]["times"]`` are wall-clock POST start times,
    so consecutive gaps of a retried message are >= ``backoff_for(failures so far)``.
    ``delivery_attempt`` adds ``message.deliveryAttempt`` (1 on the first POST, as Pub/Sub does
    with a dead-letter policy); pass False to mimic a subscription without one.
    """

    def __init__(
        self,
        project: str,
        subscription: str,
        endpoint_url: str,
        *,
        concurrency: int = 8,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
        request_timeout: float = 30.0,
        emulator_host: str | None = None,
        max_outstanding: int = 1000,
        pull_timeout: float = 1.0,
        delivery_attempt: bool = True,
    ) -> None:
        if concurrency < 1 or max_outstanding < 1:
            raise ValueError("concurrency and max_outstanding must be >= 1")
        if not 0 <= min_backoff <= max_backoff:
            raise ValueError("need 0 <= min_backoff <= max_backoff")
        self.project = project
        self.subscription = f"projects/{project}/subscriptions/{subscription}"
        self.endpoint_url = endpoint_url
        self.concurrency = concurrency
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.request_timeout = request_timeout
        self.max_outstanding = max_outstanding
        self.pull_timeout = pull_timeout
        self.delivery_attempt = delivery_attempt
        self._host = emulator_host
        self._subscriber: pubsub_v1.SubscriberClient | None = None
        self._topic = ""
        self._ack_deadline = 10
        self._cv = threading.Condition()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._held: dict[str, _Held] = {}
        self._queue: list[tuple[float, int, str]] = []  # (due monotonic time, seq, message id)
        self._seq = itertools.count()
        self._inflight = 0
        self._settled_at = 0.0  # when the last held message was settled
        self._empty_pull_at = -1.0  # start of the latest pull that returned nothing
        self._totals = dict.fromkeys(
            ("deliveries", "acks", "nacks", "errors", "ack_errors", "duplicates", "pull_errors"), 0
        )
        self._per_message: dict[str, _MessageStats] = {}

    # lifecycle

    def start(self) -> PushRelay:
        """Checks the subscription exists (fails fast) and starts puller, leaser and workers."""
        if self._threads:
            raise RuntimeError("relay already started")
        self._subscriber = subscriber_client(self._host)
        try:
            sub = self._subscriber.get_subscription(
                subscription=self.subscription, retry=RPC_RETRY, timeout=RPC_TIMEOUT
            )
        except Exception:
            self._subscriber.close()
            raise
        self._topic = sub.topic
        self._ack_deadline = sub.ack_deadline_seconds or 10
        self._stopping = False
        self._settled_at = time.monotonic()
        targets = [("pull", self._pull_loop), ("lease", self._lease_loop)]
        targets += [(f"push-{n}", self._push_loop) for n in range(self.concurrency)]
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"relay-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Lets in-flight POSTs finish, then nacks what is still held so it is redelivered."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._threads = []
        if self._subscriber is None:
            return
        with self._cv:
            ack_ids = [ack_id for held in self._held.values() for ack_id in held.ack_ids]
            self._held.clear()
            self._queue.clear()
        if ack_ids:
            with contextlib.suppress(gexc.GoogleAPIError):  # best effort: the emulator may be gone
                self._call("modify_ack_deadline", ack_ids, rpc_retry=None, ack_deadline_seconds=0)
        self._subscriber.close()
        self._subscriber = None

    def __enter__(self) -> PushRelay:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # observation

    def backoff_for(self, failures: int) -> float:
        """Delay before the next POST of a message that has failed ``failures`` times."""
        return min(self.max_backoff, self.min_backoff * 2 ** max(0, failures - 1))

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot: totals, ``outstanding``/``inflight`` and ``per_message`` by message id."""
        with self._cv:
            return {
                **self._totals,
                "outstanding": len(self._held),
                "inflight": self._inflight,
                "per_message": {
                    mid: {
                        "deliveries": s.deliveries,
                        "statuses": list(s.statuses),
                        "times": list(s.times),
                        "acked": s.acked,
                        "acked_at": s.acked_at,
                    }
                    for mid, s in self._per_message.items()
                },
            }

    def wait_idle(self, timeout: float, expected_acks: int | None = None) -> bool:
        """True once nothing pulled is unacked and, with ``expected_acks``, that many were acked.

        Without ``expected_acks`` it also waits for a pull, begun after the last message settled,
        to come back empty (up to ``pull_timeout``), so unpulled backlog is not mistaken for idle.
        """
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                idle = not self._held and not self._inflight
                if expected_acks is None:
                    idle = idle and self._empty_pull_at >= self._settled_at
                else:
                    idle = idle and self._totals["acks"] >= expected_acks
                if idle:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    return False
                self._cv.wait(min(remaining, 0.5))

    # threads

    def _call(
        self, method: str, ack_ids: list[str], *, rpc_retry: Any = RPC_RETRY, **kwargs: Any
    ) -> list[str]:
        """acknowledge/modify_ack_deadline; returns the ack ids the emulator accepted.

        One stale id makes the emulator reject the whole request, so retry them one by one.
        """
        assert self._subscriber is not None
        function = getattr(self._subscriber, method)
        request = {"subscription": self.subscription, **kwargs}
        try:
            function(request={**request, "ack_ids": ack_ids}, retry=rpc_retry, timeout=RPC_TIMEOUT)
            return ack_ids
        except gexc.InvalidArgument:
            if len(ack_ids) == 1:
                return []
        accepted = []
        for ack_id in ack_ids:
            with contextlib.suppress(gexc.InvalidArgument):
                function(
                    request={**request, "ack_ids": [ack_id]}, retry=rpc_retry, timeout=RPC_TIMEOUT
                )
                accepted.append(ack_id)
        return accepted

    def _pull_loop(self) -> None:
        assert self._subscriber is not None
        while True:
            with self._cv:
                while True:
                    if self._stopping:
                        return
                    now = time.monotonic()
                    ready = sum(1 for due, _, _ in self._queue if due <= now)
                    room = min(
                        self.concurrency - self._inflight - ready,
                        self.max_outstanding - len(self._held),
                    )
                    if room > 0:
                        break
                    self._cv.wait(0.2)
            started = time.monotonic()
            try:
                response = self._subscriber.pull(
                    request={"subscription": self.subscription, "max_messages": room},
                    retry=None,  # this loop is the retry; the default one outlives stop()
                    timeout=self.pull_timeout,
                )
                received = list(response.received_messages)
            except gexc.DeadlineExceeded:
                received = []
            except Exception as exc:  # emulator gone or restarting: keep trying until stopped
                with self._cv:
                    self._totals["pull_errors"] += 1
                    if self._stopping:
                        return
                log.warning("push relay: pull failed: %s", exc)
                time.sleep(0.5)
                continue
            now = time.monotonic()
            with self._cv:
                if not received:
                    self._empty_pull_at = started
                for item in received:
                    message_id = item.message.message_id
                    held = self._held.get(message_id)
                    if held is not None:  # redelivered while we hold it: merge
                        held.ack_ids.append(item.ack_id)
                        held.lease_until = now + self._ack_deadline
                        self._totals["duplicates"] += 1
                        continue
                    self._held[message_id] = _Held(
                        item.message, [item.ack_id], now + self._ack_deadline
                    )
                    heapq.heappush(self._queue, (now, next(self._seq), message_id))
                self._cv.notify_all()

    def _lease_loop(self) -> None:
        """Keeps held and in-flight messages leased so the emulator does not redeliver them."""
        while True:
            with self._cv:
                if self._cv.wait_for(lambda: self._stopping, timeout=1.0):
                    return
                now = time.monotonic()
                due = [
                    held
                    for held in self._held.values()
                    if held.lease_until - now < LEASE_SECONDS / 2
                ]
                ack_ids = [ack_id for held in due for ack_id in held.ack_ids]
            if not ack_ids:
                continue
            try:
                accepted = set(
                    self._call("modify_ack_deadline", ack_ids, ack_deadline_seconds=LEASE_SECONDS)
                )
            except gexc.GoogleAPIError as exc:
                log.warning("push relay: lease extension failed: %s", exc)
                continue
            rejected = set(ack_ids) - accepted  # stale after a redelivery: stop using them
            with self._cv:
                for held in due:
                    held.ack_ids = [a for a in held.ack_ids if a not in rejected] or held.ack_ids
                    held.lease_until = now + LEASE_SECONDS

    def _push_loop(self) -> None:
        session = requests.Session()
        try:
            while True:
                with self._cv:
                    while True:
                        if self._stopping:
                            return
                        now = time.monotonic()
                        if self._queue and self._queue[0][0] <= now:
                            message_id = heapq.heappop(self._queue)[2]
                            held = self._held[message_id]
                            self._inflight += 1
                            break
                        wait = self._queue[0][0] - now if self._queue else 0.5
                        self._cv.wait(min(wait, 0.5))
                self._deliver(session, message_id, held)
        finally:
            session.close()

    def _deliver(self, session: requests.Session, message_id: str, held: _Held) -> None:
        attempt = held.failures + 1
        envelope = push_envelope(
            held.message, self.subscription, attempt if self.delivery_attempt else None
        )
        body = json.dumps(envelope).encode()
        headers = cloud_event_headers(held.message, self._topic)
        started_wall = time.time()
        try:
            response = session.post(
                self.endpoint_url, data=body, headers=headers, timeout=self.request_timeout
            )
            status: int | str = response.status_code
            response.close()
        except requests.RequestException as exc:
            status = type(exc).__name__
        ok = status in SUCCESS_STATUSES
        ack_error = False
        if ok:
            try:
                ack_error = not self._call("acknowledge", list(held.ack_ids))
            except gexc.GoogleAPIError as exc:
                log.warning("push relay: ack of %s failed: %s", message_id, exc)
                ack_error = True
        with self._cv:
            self._inflight -= 1
            stats = self._per_message.setdefault(message_id, _MessageStats())
            stats.deliveries += 1
            stats.statuses.append(status)
            stats.times.append(started_wall)
            self._totals["deliveries"] += 1
            if isinstance(status, str):
                self._totals["errors"] += 1
            if ok:
                # An ack the emulator refused means it will redeliver: at-least-once, as real.
                self._totals["ack_errors" if ack_error else "acks"] += 1
                stats.acked = stats.acked or not ack_error
                stats.acked_at = time.time() if not ack_error else stats.acked_at
                self._held.pop(message_id, None)
                if not self._held:
                    self._settled_at = time.monotonic()
            else:
                self._totals["nacks"] += 1
                held.failures += 1
                due = time.monotonic() + self.backoff_for(held.failures)
                heapq.heappush(self._queue, (due, next(self._seq), message_id))
            self._cv.notify_all()
