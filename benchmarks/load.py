"""Drives N items through a piece of work from C threads, timing each item and the whole run."""

from __future__ import annotations

import http.client
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.stats import percentile

Worker = Callable[[Any], bool]  # one item -> did it succeed


@dataclass
class Run:
    concurrency: int
    count: int
    seconds: float
    latencies: list[float] = field(repr=False)
    failures: int = 0

    @property
    def rate(self) -> float:
        """Items per second over the whole run (first start to last finish)."""
        return self.count / self.seconds

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


def drive(
    items: Sequence[Any],
    concurrency: int,
    worker: Callable[[], tuple[Worker, Callable[[], None]]],
) -> Run:
    """``worker()`` is called once per thread and returns (work, close): a thread's own client.

    Every thread is ready (its client built) before the clock starts, so setup is not timed.
    """
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    ready = threading.Barrier(concurrency + 1)

    def loop() -> None:
        nonlocal failures
        work, close = worker()
        mine, failed = [], 0
        try:
            ready.wait()
            while True:
                try:
                    item = todo.get_nowait()
                except queue.Empty:
                    break
                started = time.perf_counter()
                ok = work(item)
                mine.append(time.perf_counter() - started)
                failed += not ok
        finally:
            close()
            with lock:
                latencies.extend(mine)
                failures += failed

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return Run(concurrency, len(items), seconds, latencies, failures)


def http_worker(url: str) -> Callable[[], tuple[Worker, Callable[[], None]]]:
    """A keep-alive connection per thread, POSTing prepared (headers, body) deliveries to ``url``.

    The standard library's client, not httpx: it costs the driver a fraction of the CPU per
    request, and on a small machine the driver shares the cores with what it measures.
    """
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"

    def make() -> tuple[Worker, Callable[[], None]]:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        connection.connect()  # before the clock starts

        def post(request: tuple[dict[str, str], bytes]) -> bool:
            headers, body = request
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status == 200

        return post, connection.close

    return make


def shared_worker(work: Worker) -> Callable[[], tuple[Worker, Callable[[], None]]]:
    """Threads sharing one set of clients, as the function's threads do."""
    return lambda: (work, lambda: None)
