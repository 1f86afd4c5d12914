"""The Svix client all Svix adapters share: the SDK on our own HTTP client, and the answer table.

The SDK retries 5xx and transport errors itself but never 429, and its exceptions carry no
headers. A response hook on the SDK's HTTP client keeps the last status and ``Retry-After`` per
thread, so a 429 can be waited out as Svix asks and an unreadable error body still has a status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from time import time
from typing import TypeVar

import httpx
import pydantic
from svix.api import Svix, SvixOptions
from svix.api.svix import ClientBase
from svix.exceptions import HttpError, HTTPValidationError

from notifier.domain.errors import (
    BadCredentials,
    NotifierError,
    Permanent,
    RateLimited,
    SvixUnavailable,
)

Answer = TypeVar("Answer")


# The details of failures without a readable Svix answer (other adapters word them for their users).
TIMED_OUT = "timeout"
NO_CONNECTION = "connection: "  # + the transport error's type
UNREADABLE = "unreadable answer"  # not Svix's JSON: a proxy's page, a cut body
MALFORMED = "malformed error body"  # JSON, but not the shape of Svix's errors


class _LastResponse(threading.local):
    """This thread's last Svix answer: its status and ``Retry-After`` (the SDK drops both)."""

    status: int | None = None
    retry_after: float | None = None

    def forget(self) -> None:
        """Before a call: what is then found was answered to it."""
        self.status = self.retry_after = None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds, or an HTTP date, as RFC 9110 allows; ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


class _Svix(Svix):
    """The SDK on the client's own HTTP client. ``Svix()`` builds a client of its own first, whose
    TLS context alone costs a cold start ~30 ms, only for it to be replaced and never used."""

    def __init__(self, token: str, options: SvixOptions, http: httpx.Client) -> None:
        ClientBase.__init__(self, token, options)
        self._httpx_client = http


class SvixClient:
    """The svix SDK on one HTTP client, every call through the answer table (:func:`classify`):
    shared by the adapters of messages, event types and the heartbeat's setup."""

    def __init__(
        self,
        token: str,
        *,
        server_url: str | None,
        timeout: float,
        retry_schedule: tuple[float, ...],
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport``: httpx's own by default; tests pass an ``httpx.MockTransport``."""
        options = SvixOptions(
            server_url=server_url, timeout=timeout, retry_schedule=list(retry_schedule)
        )
        self._last = _LastResponse()
        # Same client the SDK would build, plus the hook; shared by every thread of the instance.
        http = httpx.Client(
            transport=transport,
            event_hooks={"response": [self._remember]},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=32),
        )
        self._svix = _Svix(token, options, http)

    def _remember(self, response: httpx.Response) -> None:
        self._last.status = response.status_code
        self._last.retry_after = parse_retry_after(response.headers.get("retry-after"))

    @property
    def sdk(self) -> Svix:
        """The SDK on this client, for the adapters to build their requests with."""
        return self._svix

    @property
    def last_status(self) -> int | None:
        """The status of this thread's last answer (the SDK does not return it)."""
        return self._last.status

    def call(self, request: Callable[[], Answer]) -> Answer:
        """The SDK call, its failures classified into the error tree (the answer table)."""
        self._last.forget()
        try:
            return request()
        except (HttpError, HTTPValidationError) as exc:
            raise classify(exc.status_code, self._last.retry_after, _detail(exc)) from None
        except httpx.TimeoutException:
            raise SvixUnavailable(TIMED_OUT) from None
        except httpx.HTTPError as exc:
            raise SvixUnavailable(f"{NO_CONNECTION}{type(exc).__name__}") from None
        except (AttributeError, KeyError, TypeError):
            # The SDK could not parse an error body of an unexpected shape: go by the status.
            status = self._last.status
            if status is None or status < 400:
                raise
            raise classify(status, self._last.retry_after, MALFORMED) from None
        except (json.JSONDecodeError, pydantic.ValidationError):
            # Not Svix's own answer (a proxy's error page, a cut body): worth another try.
            status = self._last.status
            if status in (401, 403, 429):
                raise classify(status, self._last.retry_after, UNREADABLE) from None
            raise SvixUnavailable(UNREADABLE, status=status) from None

    def close(self) -> None:
        """Closes the HTTP client's connections."""
        self._svix._httpx_client.close()


def _detail(exc: HttpError | HTTPValidationError) -> str:
    if isinstance(exc, HTTPValidationError):
        return "; ".join(f"{'.'.join(map(str, d.loc))}: {d.msg}" for d in exc.detail)[:300]
    return f"{exc.code}: {exc.detail}"[:300] if exc.code else str(exc.detail)[:300]


def classify(status: int, retry_after: float | None, detail: str) -> NotifierError:
    """The Svix answer table: what each status means for the event."""
    if status == 429:
        return RateLimited(detail, retry_after=retry_after)
    if status in (401, 403):
        return BadCredentials(detail, status=status)
    if status in (408, 423) or status >= 500:
        return SvixUnavailable(detail, status=status)
    if 400 <= status < 500:
        return Permanent(detail, status=status)
    return SvixUnavailable(detail, status=status)
