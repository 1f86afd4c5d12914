"""Fault injection (not part of Svix): rules that answer instead of the server, delay it, or lose
its answer. Injected error bodies have the real shapes (answers.http_error) unless `body` is given.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devstack.svix_twin.answers import Answer, http_error

RULE_KEYS = frozenset(
    {"op", "status", "retry_after", "times", "rate", "delay", "hold", "lost", "body"}
)


@dataclass
class FaultRule:
    """One fault rule, as devstack/SVIX_TWIN.md describes it."""

    op: str = "*"
    status: int | None = None
    retry_after: float | str | None = None
    times: int | None = None
    rate: float | None = None
    delay: float = 0.0
    hold: float = 0.0
    lost: bool = False
    body: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any], ops: frozenset[str]) -> FaultRule:
        """Reject typos loudly: a silently ignored rule makes a fault test pass for nothing."""
        if not isinstance(raw, dict) or not set(raw) <= RULE_KEYS:
            raise ValueError(f"fault rule must be an object with keys from {sorted(RULE_KEYS)}")
        rule = cls(**raw)
        if rule.op not in ops:
            raise ValueError(f"unknown op {rule.op!r}, expected one of {sorted(ops)}")
        if rule.status is not None and not 100 <= rule.status <= 599:
            raise ValueError(f"status {rule.status} is not an HTTP status")
        if rule.status is not None and rule.lost:
            raise ValueError("a rule either answers with a status or loses the answer")
        if rule.hold and rule.status is not None:
            raise ValueError("hold delays the server's own answer; use delay with a status")
        if rule.rate is not None and not 0 <= rule.rate <= 1:
            raise ValueError("rate must be within 0..1")
        return rule

    def answer(self) -> Answer:
        headers = () if self.retry_after is None else (("Retry-After", _seconds(self.retry_after)),)
        assert self.status is not None
        if self.body is not None:
            return Answer(self.status, self.body.encode(), "text/html; charset=utf-8", headers)
        return http_error(self.status, headers=headers)


def _seconds(value: float | str) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class Faults:
    """Ordered rules; the first matching rule that fires applies to a call."""

    def __init__(self, seed: int, ops: frozenset[str]) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._ops = ops
        self._rules: list[FaultRule] = []

    def set(self, rules: Iterable[dict[str, Any]]) -> None:
        parsed = [FaultRule.parse(raw, self._ops) for raw in rules]
        with self._lock:
            self._rules = parsed

    def pick(self, op: str) -> FaultRule | None:
        with self._lock:
            for rule in self._rules:
                if rule.op in (op, "*") and self._fires(rule):
                    return rule
        return None

    def _fires(self, rule: FaultRule) -> bool:
        if rule.times is not None and rule.times <= 0:
            return False
        if rule.rate is not None and self._rng.random() >= rule.rate:
            return False
        if rule.times is not None:
            rule.times -= 1
        return True
