"""``main`` without the catalog's drift check: ``FUNCTION_SOURCE=benchmarks/no_drift_main.py``."""

from benchmarks.drift import install_no_drift

install_no_drift()

from main import on_event  # noqa: E402  (the entry point, once bootstrap builds no drift check)

__all__ = ["on_event"]
