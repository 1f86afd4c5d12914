"""Request bodies read within a size cap and a deadline, whatever the client declares or sends.

In front of our code nothing bounds a body (docs/decisions/http-limits-in-the-function.md): the body
a handler sees goes through :class:`GuardedInput`, and a body that did not arrive whole is answered
(408 or 400) and dropped, never recorded.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

_Handler = TypeVar("_Handler", bound=Callable[..., Any])

READ_SECONDS = 10.0  # the whole body, from the first read: ample for 14 MB inside Google's network
ENVIRON_KEY = "notifier.body"
_PIECE = 64 * 1024


class BodyTooLarge(Exception):
    """Over the cap: ``size`` is the declared length, or what was read before stopping."""

    def __init__(self, size: int, *, declared: bool) -> None:
        super().__init__(f"the body is {'declared as ' if declared else ''}{size} bytes")
        self.size = size
        self.declared = declared


class BodyIncomplete(Exception):
    """The body did not arrive whole: ``reason`` is ``timeout`` or ``cut_off``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def declared_length(environ: dict[str, Any]) -> int | None:
    """``Content-Length`` as a number; ``ValueError`` for anything but digits."""
    value = environ.get("CONTENT_LENGTH")
    if value in (None, ""):
        return None
    if not str(value).isdigit():
        raise ValueError("Content-Length is not a number")
    return int(value)


class GuardedInput:
    """Stands in for ``wsgi.input``: bounded by ``cap + 1`` bytes, the declared length and a
    deadline armed on the first read. gunicorn puts its socket in the environ
    (``gunicorn.socket``); without one (an in-process test client) the deadline is checked
    between reads only."""

    def __init__(
        self,
        raw: Any,
        *,
        cap: int,
        declared: int | None,
        sock: socket.socket | None = None,
        seconds: float = READ_SECONDS,
    ) -> None:
        self._raw = raw
        self.cap = cap
        self.declared = declared
        self.received = 0
        self.timed_out = False
        self.broken = False  # the transport failed mid-body (a bad chunk, a reset)
        self._sock = sock
        self._seconds = seconds
        self._deadline: float | None = None
        self._watch: list[Any] | None = None  # its entry in the watchdog's heap, while armed
        self._stopped = False

    @classmethod
    def install(cls, environ: dict[str, Any], *, cap: int, **kwargs: Any) -> GuardedInput:
        """Puts a guarded reader in place of the request's ``wsgi.input`` and returns it."""
        body = cls(
            environ["wsgi.input"],
            cap=cap,
            declared=declared_length(environ),
            sock=environ.get("gunicorn.socket"),
            **kwargs,
        )
        environ["wsgi.input"] = body
        environ["wsgi.input_terminated"] = True  # it ends itself: Werkzeug may read it as is
        environ[ENVIRON_KEY] = body
        return body

    def read(self, size: int | None = -1) -> bytes:
        """At most ``size`` bytes, none past the cap, the declared length or the deadline."""
        room = self.cap + 1 - self.received
        if self.declared is not None:
            room = min(room, self.declared - self.received)
        if self._stopped or self.timed_out or self.broken or room <= 0:
            return b""
        wanted = room if size is None or size < 0 else min(size, room)
        self._arm()
        try:
            data: bytes = self._raw.read(wanted)
        except Exception:  # noqa: BLE001 - gunicorn's NoMoreData, a bad chunk, a reset: the end
            self.broken = True
            return b""
        if self._deadline is not None and time.monotonic() > self._deadline:
            self.timed_out = True
        if self.timed_out:
            return b""
        self.received += len(data)
        if not data or (self.declared is not None and self.received >= self.declared):
            self._disarm()  # all of it is here: a long delivery afterwards is not a slow body
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """A piece of the body (bounded as :meth:`read`); nothing here reads lines of a body."""
        return self.read(size if size is not None and size >= 0 else _PIECE)

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(_PIECE), b"")

    def stop(self) -> None:
        """No more reading: what is left is gunicorn's to drain (bounded) or drop."""
        self._stopped = True
        self._disarm()

    def _disarm(self) -> None:
        if self._watch is not None:
            _WATCHDOG.cancel(self._watch)
            self._watch = None

    def _arm(self) -> None:
        if self._deadline is not None:
            return
        self._deadline = time.monotonic() + self._seconds
        if self._sock is not None:
            self._watch = _WATCHDOG.watch(self._deadline, self)

    def _expire(self) -> None:
        if self._stopped or self._watch is None:  # read whole (or stopped) as the deadline came
            return
        self.timed_out = True
        if self._sock is None:
            return
        with contextlib.suppress(OSError):  # wakes the blocked read; the answer is still written
            self._sock.shutdown(socket.SHUT_RD)


class _Watchdog:
    """One thread per process wakes every stalled body at its deadline: a heap of deadlines, not
    an OS thread per request. An entry is ``[deadline, order, body]``; a disarmed one keeps its
    place with no body (dropped when it comes up), so neither arming nor disarming searches."""

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        self._order = itertools.count()
        self._wake = threading.Condition(threading.Lock())
        self._pid: int | None = None  # the process whose thread runs (gunicorn forks workers)

    def watch(self, deadline: float, body: GuardedInput) -> list[Any]:
        entry = [deadline, next(self._order), body]
        with self._wake:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                threading.Thread(
                    target=self._run, name="notifier-body-deadlines", daemon=True
                ).start()
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:  # earlier than what the thread waits for: tell it
                self._wake.notify()
        return entry

    @staticmethod
    def cancel(entry: list[Any]) -> None:
        entry[2] = None  # one store, atomic under the GIL: the thread skips it

    def _run(self) -> None:
        while True:
            due = []
            with self._wake:
                now = time.monotonic()
                while self._heap and (self._heap[0][2] is None or self._heap[0][0] <= now):
                    body = heapq.heappop(self._heap)[2]
                    if body is not None:
                        due.append(body)
                if not due:
                    self._wake.wait(self._heap[0][0] - now if self._heap else None)
            for body in due:
                body._expire()


_WATCHDOG = _Watchdog()


def read(environ: dict[str, Any], limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; raises :class:`BodyTooLarge` (a declared length
    over the limit is refused before anything is read) or :class:`BodyIncomplete`."""
    body = environ.get(ENVIRON_KEY)
    if body is None:  # no guard in front (a bare WSGI server): this read guards itself
        body = GuardedInput.install(environ, cap=limit)
    try:
        if body.declared is not None and body.declared > limit:
            raise BodyTooLarge(body.declared, declared=True)
        chunks, size = [], 0
        while size <= limit:
            chunk = body.read(min(_PIECE, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        body.stop()
    if body.timed_out:
        raise BodyIncomplete("timeout")
    if size > limit:
        raise BodyTooLarge(size, declared=False)
    if body.broken or (body.declared is not None and size < body.declared):
        raise BodyIncomplete("cut_off")
    return b"".join(chunks)


def stop(environ: dict[str, Any]) -> None:
    """The handler is done: whatever reads the body after it (functions-framework) gets none."""
    body = environ.get(ENVIRON_KEY)
    if body is not None:
        body.stop()


def read_by_handler_only(handler: _Handler) -> _Handler:
    """Decorates an HTTP entry point: once it returns, whatever body it left unread stays unread
    (functions-framework would read it all before answering; gunicorn drains 64 KiB at most)."""

    @functools.wraps(handler)
    def entry(request: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(request, *args, **kwargs)
        finally:
            stop(request.environ)

    return cast(_Handler, entry)
