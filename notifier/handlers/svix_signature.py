"""Svix's signature on a request, checked by the svix SDK's own verifier: the only gate of the
public functions Svix calls (the canary, the operational webhooks)."""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import flask
from svix.webhooks import Webhook, WebhookVerificationError

from notifier import logs
from notifier.domain.events import safe_id
from notifier.handlers import http_body

# The headers the verifier reads: Svix's own, and the Standard Webhooks names a white-labelled
# Svix sends instead (svix-server worker.rs generate_msg_headers).
HEADERS = (
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
# What the SDK's verifier (standardwebhooks 1.1) says, mapped to our reasons; any other failure of
# the check is a bad signature.
_VERIFIER_REASONS = {
    "Missing required headers": "unsigned",
    "Message timestamp too old": "stale",
    "Message timestamp too new": "from_the_future",
    "Invalid Signature Headers": "bad_timestamp",
}


def verifier(secret: str | None, variable: str, log: logging.Logger, who: str) -> Webhook | None:
    """The SDK's verifier for the configured secret; None (and one ERROR line naming ``who`` and
    the ``variable`` to set) without one."""
    problem = None
    if not secret or not secret.strip():
        problem = f"{variable} is not set"
    else:
        try:
            return Webhook(secret.strip())
        except Exception:  # noqa: BLE001 - binascii.Error, EmptyWebhookSecretError, RuntimeError
            problem = f"{variable} is not a whsec_ signing secret"
    logs.log(log, logging.ERROR, f"{who} is misconfigured: {problem}", reason="misconfigured")
    return None


def headers(request: flask.Request) -> dict[str, str]:
    """The request's signature headers, the only ones the verifier reads."""
    return {name: request.headers[name] for name in HEADERS if name in request.headers}


def message_id(signed: dict[str, str]) -> str | None:
    """The ``svix-id`` (or ``webhook-id``) header: the message's id, the same on every retry."""
    return signed.get("svix-id") or signed.get("webhook-id")


def problem(check: Webhook, body: bytes, signed: dict[str, str]) -> str | None:
    """None when Svix signed this body with our secret within the verifier's tolerance (5 min).

    The verifier raises more than its own error on hostile input (a signature without a comma,
    bad base64, a body that is not UTF-8): all of it is a refusal, never a 500.
    """
    try:
        check.verify(body, signed)
    except WebhookVerificationError as exc:
        return _VERIFIER_REASONS.get(str(exc), "bad_signature")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return "bad_signature"
    return None


@dataclass(frozen=True)
class Signed:
    """A body Svix signed with our secret, and its ``svix-id`` (None when not a plain id)."""

    body: bytes
    svix_id: str | None


@dataclass(frozen=True)
class Refused:
    """Why a request is answered without being read further: the status, the reason to log,
    and a header to send (405's ``Allow``, 401's ``WWW-Authenticate``). ``logged``: the reason
    was already logged (a misconfiguration's ERROR)."""

    status: int
    reason: str
    svix_id: str | None = None
    header: tuple[str, str] | None = None
    logged: bool = False


def receive(
    request: flask.Request,
    secret: str | None,
    max_bytes: int,
    *,
    variable: str,
    log: logging.Logger,
    who: str,
) -> Signed | Refused:
    """The body of a request Svix signed with ``secret``, read under the cap and deadline of
    :mod:`~notifier.handlers.http_body` (before any hashing), or why not."""
    check = verifier(secret, variable, log, who)
    if check is None:
        return Refused(503, "misconfigured", logged=True)
    try:  # the public function's body: capped before reading, under the read deadline
        body = http_body.read(request.environ, max_bytes)
    except http_body.BodyTooLarge:
        return Refused(413, "too_large")
    except http_body.BodyIncomplete as exc:
        return Refused(408 if exc.reason == "timeout" else 400, f"incomplete_body_{exc.reason}")
    signed = headers(request)
    svix_id = safe_id(message_id(signed))
    reason = problem(check, body, signed)
    if reason is not None:
        return Refused(401, reason, svix_id, ("WWW-Authenticate", "Svix-Signature"))
    return Signed(body, svix_id)


POST_ONLY = Refused(405, "method_not_allowed", header=("Allow", "POST"))


def refusal(
    refused: Refused, log: logging.Logger, who: str, texts: Mapping[int, str]
) -> flask.Response:
    """The answer to a refused request (``texts`` by status), and one WARNING ``{who}
    refused: {reason}`` unless its reason was logged already."""
    if not refused.logged:
        message = f"{who} refused: {refused.reason}"
        logs.log(log, logging.WARNING, message, reason=refused.reason, svix_id=refused.svix_id)
    response = result(refused.status, texts.get(refused.status, "refused"))
    if refused.header is not None:
        response.headers[refused.header[0]] = refused.header[1]
    return response


def result(status: int, text: str) -> flask.Response:
    """``{"result": text}``: what the public functions answer, never echoing the body."""
    return flask.Response(json.dumps({"result": text}), status=status, mimetype="application/json")
