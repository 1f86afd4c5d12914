"""Evidence for "done once, not per event": the validator, the clients, the sender's build."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import timeit

from benchmarks import events, stats
from devstack.function_server import ROOT

_SENDER = (
    "import time\nfrom notifier.adapters.svix.client import SvixClient\n"
    "t = time.perf_counter()\n"
    "SvixClient('testsk_x', server_url='http://127.0.0.1:9', timeout=10, retry_schedule=(0.05,))\n"
    "print(time.perf_counter() - t)"
)
# What the sender used to do: let the SDK build its own HTTP client, then replace it.
_SENDER_BEFORE = (
    "import time, httpx\nfrom svix.api import Svix, SvixOptions\n"
    "t = time.perf_counter()\n"
    "s = Svix('testsk_x', SvixOptions(server_url='http://127.0.0.1:9', timeout=10))\n"
    "s._httpx_client = httpx.Client(\n"
    "    limits=httpx.Limits(max_connections=100, max_keepalive_connections=32))\n"
    "print(time.perf_counter() - t)"
)


def _fresh(code: str, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        seconds.append(float(done.stdout))
    return stats.median(seconds)


def measure(runs: int = 5, threads: int = 16) -> dict:
    """In this process (which has imported nothing of notifier's clients yet) and in fresh ones."""
    from notifier import bootstrap
    from notifier.adapters.firestore import keys
    from notifier.domain import decoding, schema

    schema.validator.cache_clear()
    started = time.perf_counter()
    first = schema.validator()
    build = time.perf_counter() - started
    cached = schema.validator() is first

    sample = events.events("once", 7)
    envelopes = [events.envelope(e) for e in sample]
    loops = 200
    validate = timeit.timeit(lambda: [schema.validation_errors(e) for e in sample], number=loops)

    def pipeline() -> None:
        for envelope in envelopes:
            keys.pack(decoding.decode(envelope, max_bytes=1 << 20).body)

    per_event = timeit.timeit(pipeline, number=loops) / (loops * len(envelopes))

    bootstrap.reset()
    barrier = threading.Barrier(threads)
    seen = []

    def ask() -> None:
        barrier.wait()
        seen.append(id(bootstrap.dependencies()))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    deps = bootstrap.built()
    bootstrap.reset()
    if deps is not None:
        deps.sender.close()
    return {
        "validator_cached": cached,
        "validator_build": build,
        "validate": validate / (loops * len(sample)),
        "pipeline": per_event,
        "threads": threads,
        "distinct": len(set(seen)),
        "sender_before": _fresh(_SENDER_BEFORE, runs),
        "sender_after": _fresh(_SENDER, runs),
    }
