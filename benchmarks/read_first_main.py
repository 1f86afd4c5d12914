"""``main`` with the read-first claim: ``FUNCTION_SOURCE=benchmarks/read_first_main.py``."""

from benchmarks.claim_variants import install_read_first

install_read_first()

from main import on_event  # noqa: E402  (the entry point, after the claim is swapped)

__all__ = ["on_event"]
