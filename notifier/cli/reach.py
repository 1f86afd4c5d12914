"""The operator's cloud calls, bounded and named: each Firestore or Pub/Sub call a command makes
answers within ``--timeout`` seconds or ends the command with one line naming what it could not
reach; a failure names the resource it concerns.

The client libraries retry an unreachable host for minutes without a word (their default retry
deadlines), and their errors name no resource (``NotFound: 404 Subscription does not exist``).
Each call runs on a daemon thread that the command waits for at most ``--timeout`` (for a stream,
at most that long for each next record), so a call that never answers is left behind, never
waited out. The function's own adapters are used unchanged.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar, cast

from google.api_core import exceptions as gexc

from notifier import bootstrap
from notifier.config import Settings
from notifier.domain.errors import StoreUnavailable
from notifier.domain.ports import (
    DeadLetters,
    EndpointHealthLog,
    HeartbeatLog,
    OperatorStore,
    Republisher,
)

CREDENTIALS_HELP = (
    "no Google credentials: run `gcloud auth application-default login`, or set "
    "GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or point "
    "FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST at the emulators"
)
Target = TypeVar("Target")
_UNREACHABLE = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.RetryError)


class CloudError(Exception):
    """A cloud call failed or did not answer: the message is one line naming the resource."""


class Unreachable(CloudError):
    """The resource did not answer within the deadline (or could not be connected to)."""


class FirestoreFailed(StoreUnavailable, CloudError):
    """Firestore answered with an error: still a StoreUnavailable for the use cases that go on
    with the next record, and one named line if it ends the command."""

    def __str__(self) -> str:
        return self.detail


def firestore_name(settings: Settings, env: Mapping[str, str]) -> str:
    """``Firestore at localhost:8080 (project P, database D)``: where the store's calls go."""
    host = env.get("FIRESTORE_EMULATOR_HOST") or "firestore.googleapis.com"
    where = f"project {settings.gcp_project}, database {settings.firestore_database}"
    return f"Firestore at {host} ({where})"


def pubsub_name(kind: str, path: str, env: Mapping[str, str]) -> str:
    """``Pub/Sub subscription projects/P/subscriptions/S at localhost:8085``."""
    host = env.get("PUBSUB_EMULATOR_HOST") or "pubsub.googleapis.com"
    return f"Pub/Sub {kind} {path} at {host}"


def store(settings: Settings, env: Mapping[str, str], seconds: float) -> OperatorStore:
    """The function's Firestore store, each of its calls bounded and named."""
    name = firestore_name(settings, env)
    return cast(OperatorStore, Bounded(bootstrap.build_store(settings), name, seconds))


def heartbeats(settings: Settings, env: Mapping[str, str], seconds: float) -> HeartbeatLog:
    """``heartbeats/`` (the last arrival, for ``status``), its calls bounded and named."""
    name = firestore_name(settings, env)
    return cast(HeartbeatLog, Bounded(bootstrap.build_heartbeat_log(settings), name, seconds))


def endpoint_health(
    settings: Settings, env: Mapping[str, str], seconds: float
) -> EndpointHealthLog:
    """``endpoint_health/`` (``status``, ``recover``), its calls bounded and named."""
    name = firestore_name(settings, env)
    adapter = bootstrap.build_endpoint_health(settings)
    return cast(EndpointHealthLog, Bounded(adapter, name, seconds))


def dead_letters(path: str, env: Mapping[str, str], seconds: float) -> DeadLetters:
    """The dead-letter subscription; ``pull`` keeps its own wait (it never retries)."""
    name = pubsub_name("subscription", path, env)
    adapter = bootstrap.dead_letters(path)
    return cast(DeadLetters, Bounded(adapter, name, seconds, own_deadline={"pull"}))


def topic(path: str, env: Mapping[str, str], seconds: float) -> Republisher:
    """The topic dead letters are published back to."""
    name = pubsub_name("topic", path, env)
    return cast(Republisher, Bounded(bootstrap.republisher(path), name, seconds))


class Bounded:
    """Every public method of ``target``, called within ``seconds`` and with its errors named.

    A method that returns an iterator is read on the same thread, record by record, each within
    ``seconds``. ``own_deadline``: methods already bounded by their own arguments, called here.
    """

    def __init__(
        self,
        target: Any,
        name: str,
        seconds: float,
        *,
        own_deadline: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        self._target, self._name, self._seconds = target, name, seconds
        self._own = own_deadline

    def __getattr__(self, attribute: str) -> Any:
        member = getattr(self._target, attribute)
        if attribute.startswith("_") or not callable(member):
            return member
        if attribute in self._own or attribute == "close":

            def direct(*args: Any, **kwargs: Any) -> Any:
                return self._named(lambda: member(*args, **kwargs))

            return direct

        def bounded(*args: Any, **kwargs: Any) -> Any:
            return self._within(lambda: member(*args, **kwargs))

        return bounded

    def _within(self, call: Callable[[], Any]) -> Any:
        """The call on a daemon thread: its result, or an iterator it feeds, within the deadline."""
        answers: queue.Queue[tuple[str, Any]] = queue.Queue()

        def work() -> None:
            try:
                result = self._named(call)
                if isinstance(result, Iterator):
                    answers.put(("stream", None))
                    for item in result:
                        answers.put(("item", item))
                    answers.put(("end", None))
                else:
                    answers.put(("value", result))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                answers.put(("error", exc))

        threading.Thread(target=work, daemon=True, name=f"bounded {self._name}").start()
        kind, value = self._next(answers)
        if kind == "stream":
            return self._stream(answers)
        return value

    def _stream(self, answers: queue.Queue[tuple[str, Any]]) -> Iterator[Any]:
        while True:
            kind, value = self._next(answers)
            if kind == "end":
                return
            yield value

    def _next(self, answers: queue.Queue[tuple[str, Any]]) -> tuple[str, Any]:
        try:
            kind, value = answers.get(timeout=self._seconds)
        except queue.Empty:
            raise Unreachable(f"cannot reach {self._name} within {self._seconds:g} s") from None
        if kind == "error":
            raise value
        return kind, value

    def _named(self, call: Callable[[], Any]) -> Any:
        """Runs ``call``; a Google API error or a store failure comes out naming the resource."""
        try:
            return call()
        except StoreUnavailable as exc:
            cause = exc.__cause__ or exc
            if isinstance(cause, _UNREACHABLE):
                raise Unreachable(f"cannot reach {self._name}: {_said(cause)}") from exc
            raise FirestoreFailed(f"{self._name}: {_said(cause)}") from cause
        except _UNREACHABLE as exc:
            raise Unreachable(f"cannot reach {self._name}: {_said(exc)}") from exc
        except gexc.GoogleAPIError as exc:
            raise CloudError(f"{self._name}: {_said(exc)}") from exc


def _said(exc: BaseException) -> str:
    """The error's type and first line, short."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"
