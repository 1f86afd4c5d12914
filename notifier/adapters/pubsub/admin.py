"""Pub/Sub adapter for the operator tools: pull, hold and acknowledge dead letters, publish them
back to the topic.

``google-cloud-pubsub`` is needed by ``redrive`` only and is not in the function's
requirements.txt (it comes with the ``notifier`` command, pyproject.toml, and with
requirements-dev.txt): it is imported when a client is opened.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from google.api_core import exceptions as gexc

from notifier.config import ConfigError
from notifier.domain.messages import PulledMessage

_TIMEOUT = 30.0


def pubsub_module() -> ModuleType:
    """``google.cloud.pubsub_v1``, or a ConfigError that says how to install it."""
    try:
        return importlib.import_module("google.cloud.pubsub_v1")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "redrive needs google-cloud-pubsub: pip install . (or -r requirements-dev.txt)"
        ) from exc


class DeadLetterSubscription:
    """A subscription pulled synchronously (:class:`notifier.domain.ports.DeadLetters`)."""

    def __init__(self, path: str, subscriber: Any = None) -> None:
        self.path = path
        self._subscriber = subscriber or pubsub_module().SubscriberClient()

    def pull(self, max_messages: int, wait: float) -> list[PulledMessage]:
        """Up to ``max_messages`` messages; none once ``wait`` passes with nothing to pull."""
        try:
            response = self._subscriber.pull(
                request={"subscription": self.path, "max_messages": max_messages},
                timeout=wait,
                retry=None,
            )
        except gexc.DeadlineExceeded:
            return []
        return [_pulled(received) for received in response.received_messages]

    def hold(self, ack_ids: list[str], seconds: int) -> None:
        """Sets the ack deadline of the messages (0: back to the subscription now)."""
        for chunk in _chunks(ack_ids):
            try:
                self._subscriber.modify_ack_deadline(
                    request={
                        "subscription": self.path,
                        "ack_ids": chunk,
                        "ack_deadline_seconds": seconds,
                    },
                    timeout=_TIMEOUT,
                )
            except gexc.InvalidArgument:  # a stale ack id: its lease is gone anyway
                continue

    def acknowledge(self, ack_ids: list[str]) -> set[str]:
        """The ack ids accepted; one stale id can fail a whole request, so then one at a time."""
        accepted: set[str] = set()
        for chunk in _chunks(ack_ids):
            try:
                self._acknowledge(chunk)
                accepted.update(chunk)
            except gexc.GoogleAPICallError:
                for ack_id in chunk:
                    try:
                        self._acknowledge([ack_id])
                        accepted.add(ack_id)
                    except gexc.GoogleAPICallError:
                        continue
        return accepted

    def _acknowledge(self, ack_ids: list[str]) -> None:
        self._subscriber.acknowledge(
            request={"subscription": self.path, "ack_ids": ack_ids}, timeout=_TIMEOUT
        )

    def close(self) -> None:
        """Closes the subscriber's channel."""
        self._subscriber.close()


class TopicRepublisher:
    """A topic published to (:class:`notifier.domain.ports.Republisher`)."""

    def __init__(self, path: str, publisher: Any = None) -> None:
        self.path = path
        self._publisher = publisher or pubsub_module().PublisherClient()

    def publish(self, messages: list[tuple[bytes, dict[str, str]]]) -> list[str | Exception]:
        """All published at once, then waited for: each one's new message id, or its failure."""
        futures = [
            self._publisher.publish(self.path, data, **attributes) for data, attributes in messages
        ]
        results: list[str | Exception] = []
        for future in futures:
            try:
                results.append(str(future.result(timeout=_TIMEOUT)))
            except Exception as exc:  # noqa: BLE001 - any failure: the caller leaves it be
                results.append(exc)
        return results

    def close(self) -> None:
        """Sends what is batched and stops the publisher."""
        self._publisher.stop()


def _pulled(received: Any) -> PulledMessage:
    message = received.message
    return PulledMessage(
        ack_id=received.ack_id,
        message_id=message.message_id,
        data=bytes(message.data),
        attributes=dict(message.attributes),
        publish_time=message.publish_time.rfc3339() if message.publish_time else "",
    )


def _chunks(items: list[str], size: int = 1000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
