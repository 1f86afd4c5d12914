"""One operator step against Svix (a setup's, a recovery's): the SDK call through the shared
client's answer table, its failure worded for the operator as the step that failed and what to
do next (:class:`~notifier.domain.errors.SetupError`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, overload

from notifier.adapters.svix.client import (
    MALFORMED,
    NO_CONNECTION,
    TIMED_OUT,
    UNREADABLE,
    SvixClient,
)
from notifier.domain.errors import BadCredentials, NotifierError, Permanent, SetupError, Transient

T = TypeVar("T")


class Steps:
    """The operator adapters' calls: found or not (404), created or there already (409)."""

    def __init__(self, client: SvixClient) -> None:
        self._client = client

    def _find(self, step: str, request: Callable[[], T]) -> T | None:
        """The object, or None when Svix answers 404."""
        return self._call(step, request, none_on=404)

    def _create(self, step: str, request: Callable[[], object]) -> bool:
        """True once created; False when Svix says it exists already (409: a concurrent setup)."""
        return self._call(step, request, none_on=409) is not None

    @overload
    def _call(self, step: str, request: Callable[[], T]) -> T: ...

    @overload
    def _call(self, step: str, request: Callable[[], T], *, none_on: int) -> T | None: ...

    def _call(self, step: str, request: Callable[[], T], *, none_on: int | None = None) -> T | None:
        """One SDK call; None when Svix refuses it with ``none_on``; every other failure becomes
        a :class:`SetupError` naming the step."""
        try:
            return self._client.call(request)
        except Permanent as exc:
            if none_on is not None and exc.status == none_on:
                return None
            raise setup_error(step, exc) from None
        except NotifierError as exc:
            raise setup_error(step, exc) from None


def setup_error(step: str, exc: NotifierError) -> SetupError:
    """The sender's classified failure as the operator reads it: the step, then what to do."""
    if exc.detail in (UNREADABLE, MALFORMED):
        return SetupError(f"{step}: Svix's answer was unreadable; run it again")
    if exc.status is None:  # no answer at all: the sender's timeout or connection failure
        if exc.detail == TIMED_OUT:
            return SetupError(f"{step}: Svix did not answer in time; run it again")
        reason = exc.detail.removeprefix(NO_CONNECTION)
        return SetupError(f"{step}: cannot reach Svix ({reason})")
    return SetupError(f"{step}: Svix answered {exc.status}{_hint(exc)}")


def _hint(exc: NotifierError) -> str:
    if isinstance(exc, BadCredentials):
        return " (check the Svix token)"
    if exc.status == 422:
        return " (Svix refused the settings: is the URL acceptable to it?)"
    if isinstance(exc, Transient):
        return "; run it again in a minute"
    return ""
