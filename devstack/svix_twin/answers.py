"""Answers and error bodies exactly as svix-server's error.rs shapes them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

# error.rs HttpError constructors: status -> (default code, default detail)
STANDARD_ERRORS: dict[int, tuple[str, str]] = {
    400: ("generic_error", "Generic error"),
    401: ("authentication_failed", "Incorrect authentication credentials."),
    403: ("insufficient access", "Insufficient access for the given operation."),
    404: ("not_found", "Entity not found"),
    409: ("conflict", "A conflict has occurred"),
    413: ("payload_too_large", "Request payload is too large."),
    501: ("not_implemented", "This API endpoint is not yet implemented."),
}
# Not in svix-server (the hosted service's rate limiter answers these); code kept from the SDK docs.
RATE_LIMITED = ("rate_limited", "Too many requests")


@dataclass(frozen=True)
class Answer:
    """One HTTP answer; immutable so the idempotency cache can replay it as is."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_answer(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    return Answer(status, json.dumps(obj, separators=(",", ":")).encode(), headers=headers)


def no_content() -> Answer:
    return Answer(204, b"", content_type="")


def http_error(
    status: int,
    code: str | None = None,
    detail: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Answer:
    """error.rs `HttpError`: `{"code", "detail"}`; other errors (5xx) are `{}` (IntoResponse)."""
    if status >= 500 and status != 501:
        return json_answer(status, {}, headers)
    if status == 422:
        return validation([item(["body"], detail or "Validation error", "value_error")], headers)
    default_code, default_detail = STANDARD_ERRORS.get(status) or _other(status)
    return json_answer(
        status, {"code": code or default_code, "detail": detail or default_detail}, headers
    )


def _other(status: int) -> tuple[str, str]:
    """Statuses error.rs never makes (429 from the hosted rate limiter; others from proxies)."""
    if status == 429:
        return RATE_LIMITED
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return phrase.lower().replace(" ", "_"), phrase


def not_found(detail: str | None = None) -> Answer:
    return http_error(404, detail=detail)


def conflict(code: str | None = None, detail: str | None = None) -> Answer:
    return http_error(409, code, detail)


def internal() -> Answer:
    """error.rs: every non-HTTP error becomes 500 with body `{}`."""
    return json_answer(500, {})


def empty_500() -> Answer:
    """idempotency.rs: `StatusCode::INTERNAL_SERVER_ERROR.into_response()`, no body at all."""
    return Answer(500, b"", content_type="")


def item(loc: list[str], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def validation(items: list[dict[str, Any]], headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """error.rs `HttpError::unprocessable_entity`: `{"detail": [{"loc", "msg", "type"}]}`."""
    return json_answer(422, {"detail": items}, headers)


class Refusal(Exception):
    """Raised by handlers to answer with an error; carries the Answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer
