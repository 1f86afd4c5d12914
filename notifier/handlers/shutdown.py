"""SIGTERM reaches the deliveries: Cloud Run allows 10 s after it, so waiting ones must leave.

functions-framework imports ``main`` in gunicorn's master, before the fork; the worker then sets
its own SIGTERM handler (``init_signals``), which would replace one set at import. :func:`install`
wraps ``init_signals`` instead, so that the worker's handler also sets :data:`STOPPING`, which
the deliveries' waits watch (docs/decisions/renewed-claims.md).
"""

from __future__ import annotations

import importlib
import signal
import threading
from types import FrameType
from typing import Any

STOPPING = threading.Event()  # set on SIGTERM: waits end, waiting deliveries answer 503


def install() -> None:
    """Chains :func:`stop` to SIGTERM in every gunicorn worker (and here, in a main thread)."""
    try:
        worker: Any = importlib.import_module("gunicorn.workers.base").Worker
    except ImportError:  # not under gunicorn (a development server)
        worker = None
    if worker is not None and not getattr(worker.init_signals, "notifier_chained", False):
        init_signals = worker.init_signals

        def chained(self: Any) -> None:
            init_signals(self)
            chain_sigterm()

        chained.notifier_chained = True  # type: ignore[attr-defined]
        worker.init_signals = chained
    chain_sigterm()


def chain_sigterm() -> None:
    """SIGTERM sets :data:`STOPPING`, then does what it did before (gunicorn: a graceful exit,
    which lets requests in flight finish)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "notifier_chained", False):  # main imported again: chained already
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    on_sigterm.notifier_chained = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, on_sigterm)


def stop() -> None:
    """Waiting deliveries stop waiting, release their claims and answer 503."""
    STOPPING.set()
