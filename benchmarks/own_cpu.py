"""The function's own CPU per event, without HTTP: its code beside the floor's, in one process.

The served ratios carry the machine's noise (every process shares the cores); this does not
serve anything: ``notifier.handlers.pubsub.handle`` (what ``on_event`` calls, its log line
included) and the floor's calls (``benchmarks/floor.py``) run one event at a time in this process,
on the same emulator and twin, in alternating blocks, and each block's CPU (this process, every
thread: gRPC's included) is divided by its events. The difference is what the function's code
costs beyond the unavoidable calls.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from google.cloud import firestore

from benchmarks import events, stats
from benchmarks.floor import Floor, svix_client
from benchmarks.roundtrips import _forget, environment
from benchmarks.stack import PROJECT, TOKEN, Stack

FUNCTION, FLOOR = "function", "floor"
RATIO, SPREAD = "function ÷ floor", "spread"  # of the blocks' paired ratios
NEW, DUPLICATE = "new", "duplicate"


def measure(stack: Stack, per_block: int = 150, blocks: int = 9) -> dict[tuple[str, str], float]:
    """CPU ms per event, by (setup, kind): the median over ``blocks`` alternating blocks; and by
    (``RATIO``, kind) the median of each block's function ÷ floor, (``SPREAD``, kind) how far
    the blocks' ratios disagreed."""
    assert stack.twin is not None
    from notifier import bootstrap
    from notifier.handlers import pubsub

    samples: dict[tuple[str, str], list[float]] = {}
    with environment(stack.env(NOTIFIER_LOG_LEVEL="INFO")), _quiet_log():
        floor = Floor(firestore.Client(project=PROJECT), svix_client(TOKEN, stack.twin.url))
        _forget()
        warm = events.events("own-warm", 50)
        for event in warm:
            pubsub.handle(events.envelope(event), bootstrap.dependencies())
            floor.new({**event, "id": f"{event['id']}-floor"})

        def function_run(batch: list[dict], kind: str) -> Callable[[], None]:
            attempt = 2 if kind == DUPLICATE else 1
            envelopes = [events.envelope(event, attempt) for event in batch]  # not timed

            def run() -> None:
                for envelope in envelopes:
                    pubsub.handle(envelope, bootstrap.dependencies())

            return run

        def floor_run(batch: list[dict], kind: str) -> Callable[[], None]:
            work = floor.new if kind == NEW else floor.duplicate

            def run() -> None:
                for event in batch:
                    work(event)

            return run

        runs: dict[str, Callable[[list[dict], str], Callable[[], None]]] = {
            FUNCTION: function_run,
            FLOOR: floor_run,
        }
        for block in range(blocks):
            order = [FUNCTION, FLOOR] if block % 2 == 0 else [FLOOR, FUNCTION]
            for setup in order:
                batch = events.events(f"own-{setup}-{block}", per_block)
                for kind in (NEW, DUPLICATE):
                    run = runs[setup](batch, kind)
                    started = time.process_time()
                    run()
                    used = time.process_time() - started
                    samples.setdefault((setup, kind), []).append(1000 * used / per_block)
        floor.close()
        _forget()
    result = {key: stats.median(values) for key, values in samples.items()}
    for kind in (NEW, DUPLICATE):  # each block's two runs met the same moment of the machine
        pairs = zip(samples[(FUNCTION, kind)], samples[(FLOOR, kind)], strict=True)
        ratios = [mine / least for mine, least in pairs]
        result[(RATIO, kind)] = stats.median(ratios)
        result[(SPREAD, kind)] = stats.spread(ratios)
    return result


@contextmanager
def _quiet_log() -> Iterator[None]:
    """The log lines are written (their cost counts), to /dev/null rather than this console."""
    from notifier import logs

    root = logs.setup("INFO")
    handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    with open(os.devnull, "w") as sink:
        saved = [h.setStream(sink) for h in handlers]
        try:
            yield
        finally:
            for handler, stream in zip(handlers, saved, strict=True):
                handler.setStream(stream)


def main() -> None:
    with Stack() as stack:
        result = measure(stack)
    for kind in (NEW, DUPLICATE):
        own, least = result[(FUNCTION, kind)], result[(FLOOR, kind)]
        print(
            f"{kind}: function {own:.2f} ms, floor {least:.2f} ms, own {own - least:.2f} ms; "
            f"paired ratio {result[(RATIO, kind)]:.2f} (blocks spread {result[(SPREAD, kind)]:.0%})"
        )


if __name__ == "__main__":
    main()
