"""Svix's signature on a request, checked by the svix SDK's own verifier: the only gate of the
public functions Svix calls (the canary, the operational webhooks)."""

from __future__ import annotations

import binascii
import logging

import flask
from svix.webhooks import Webhook, WebhookVerificationError

from notifier import logs

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
