"""Settings, read once from the environment, and the deployment around them.

Every knob beyond the platform's own variables is named ``NOTIFIER_...`` and has a default, so a
deployment sets only what differs. A malformed value fails fast with one message naming the variable
(never its value: one of them is a secret). :class:`Deployment` holds what deploy.sh sets beside the
functions' environment, under the rules that tie it to the settings; deploy.sh asks for both
through ``python -m notifier config check``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from notifier.domain import heartbeat
from notifier.domain.claims import DEDUP_WINDOW_SECONDS, LEASE_SECONDS
from notifier.domain.events import SAFE_ID, SVIX_RESERVED_PREFIXES

HEARTBEAT_PROJECT_ENV = "NOTIFIER_HEARTBEAT_PROJECT"  # the project id / Svix app uid of heartbeats
CANARY_SECRET_ENV = "NOTIFIER_CANARY_SECRET"  # noqa: S105 - the variable's name, not a secret
# The operational-webhook endpoint's signing secret, mounted on the operational_webhooks function.
OPERATIONAL_SECRET_ENV = "SVIX_OPERATIONAL_WEBHOOK_SECRET"  # noqa: S105 - a name, not a secret
# Svix accepts App Portal links valid for 1 hour to 7 days.
PORTAL_EXPIRY_RANGE = (3600, 7 * 24 * 3600)
# Svix keeps an eventId unique for a day; the dedup window must close well before that (1 h at
# least for clocks). 0 looks every resend up.
DEDUP_WINDOW_MAX = 23 * 3600
# What an invocation needs after its longest delivery to record the outcome (a Firestore commit).
RECORDING_SECONDS = 1.0
# The shortest lease: renewed every third of it, each renewal bounded by that third (a Firestore
# write's timeout), a live holder's lease never runs out between two renewals, and 10 s is
# Pub/Sub's smallest backoff in deploy.sh, so a crashed holder's event is free by its redelivery.
LEASE_MIN_SECONDS = 10.0


class ConfigError(RuntimeError):
    """The environment cannot run the function; an operator must fix the deployment."""


@dataclass(frozen=True)
class Settings:
    gcp_project: str
    svix_api_key: str = field(repr=False)
    svix_server_url: str | None = None
    firestore_database: str = "(default)"
    retry_budget_seconds: float = 30.0
    lease_seconds: float = LEASE_SECONDS
    svix_timeout_seconds: float = 10.0
    svix_retry_schedule: tuple[float, ...] = (0.05, 0.1, 0.2)
    max_payload_bytes: int = 1024 * 1024
    rejected_raw_bytes: int = 16 * 1024
    record_ttl_days: int = 30
    log_level: str = "INFO"
    portal_expiry_seconds: int = 3600
    svix_dedup_window_seconds: float = DEDUP_WINDOW_SECONDS
    heartbeat_project: str = heartbeat.DEFAULT_PROJECT  # the heartbeats' project and Svix app uid

    @property
    def longest_delivery_seconds(self) -> float:
        """Worst case for one delivery: the budget, then a last call with all the SDK's retries."""
        attempts = 1 + len(self.svix_retry_schedule)
        return (
            self.retry_budget_seconds
            + attempts * self.svix_timeout_seconds
            + sum(self.svix_retry_schedule)
        )

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, svix: bool = True, firestore: bool = True
    ) -> Settings:
        """``svix=False``: for operator commands that only read Firestore (no token needed);
        ``firestore=False``: for those that only call Svix (no Google project needed)."""
        env = os.environ if env is None else env
        problems: list[str] = []

        def number(name: str, default: float, *, minimum: float = 0.0) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):  # not a number at all, or nan or inf
                problems.append(f"{name} must be a number")
                return default
            if value < minimum:
                problems.append(f"{name} must be at least {minimum:g}")
            return value

        def schedule(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                values = tuple(float(part) for part in raw.split(",") if part.strip())
            except ValueError:
                problems.append(f"{name} must be comma-separated seconds, e.g. 0.05,0.1,0.2")
                return default
            if len(values) > 5 or any(v < 0 for v in values):
                problems.append(f"{name} takes at most 5 non-negative delays (an SDK limit)")
            return values

        gcp_project = (env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or "").strip()
        if firestore and not gcp_project:
            problems.append("GOOGLE_CLOUD_PROJECT is not set (the Firestore project)")
        svix_api_key = env.get("SVIX_API_KEY", "").strip()
        if svix and not svix_api_key:
            problems.append("SVIX_API_KEY is not set (the Svix token, from Secret Manager)")
        log_level = env.get("NOTIFIER_LOG_LEVEL", "").strip().upper() or cls.log_level
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            problems.append("NOTIFIER_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")

        heartbeat_project = env.get(HEARTBEAT_PROJECT_ENV, "").strip() or cls.heartbeat_project
        if not SAFE_ID.fullmatch(heartbeat_project) or heartbeat_project.startswith(
            SVIX_RESERVED_PREFIXES["project"]
        ):
            problems.append(
                f"{HEARTBEAT_PROJECT_ENV} must be a project id "
                f"({SAFE_ID.pattern}, not starting with {SVIX_RESERVED_PREFIXES['project']})"
            )

        settings = cls(
            gcp_project=gcp_project,
            svix_api_key=svix_api_key,
            svix_server_url=env.get("SVIX_SERVER_URL", "").strip() or None,
            firestore_database=env.get("FIRESTORE_DATABASE", "").strip() or cls.firestore_database,
            retry_budget_seconds=number("NOTIFIER_RETRY_BUDGET_SECONDS", cls.retry_budget_seconds),
            lease_seconds=number(
                "NOTIFIER_LEASE_SECONDS", cls.lease_seconds, minimum=LEASE_MIN_SECONDS
            ),
            svix_timeout_seconds=number(
                "NOTIFIER_SVIX_TIMEOUT_SECONDS", cls.svix_timeout_seconds, minimum=0.1
            ),
            svix_retry_schedule=schedule("NOTIFIER_SVIX_RETRY_SCHEDULE", cls.svix_retry_schedule),
            max_payload_bytes=int(
                number("NOTIFIER_MAX_PAYLOAD_BYTES", cls.max_payload_bytes, minimum=1)
            ),
            rejected_raw_bytes=int(number("NOTIFIER_REJECTED_RAW_BYTES", cls.rejected_raw_bytes)),
            record_ttl_days=int(number("NOTIFIER_RECORD_TTL_DAYS", cls.record_ttl_days, minimum=1)),
            log_level=log_level,
            portal_expiry_seconds=int(
                number("NOTIFIER_PORTAL_EXPIRY_SECONDS", cls.portal_expiry_seconds)
            ),
            svix_dedup_window_seconds=number(
                "NOTIFIER_SVIX_DEDUP_WINDOW_SECONDS", cls.svix_dedup_window_seconds
            ),
            heartbeat_project=heartbeat_project,
        )
        if not PORTAL_EXPIRY_RANGE[0] <= settings.portal_expiry_seconds <= PORTAL_EXPIRY_RANGE[1]:
            problems.append("NOTIFIER_PORTAL_EXPIRY_SECONDS must be within 3600..604800 (Svix's)")
        if settings.svix_dedup_window_seconds > DEDUP_WINDOW_MAX:
            problems.append(
                f"NOTIFIER_SVIX_DEDUP_WINDOW_SECONDS must be at most {DEDUP_WINDOW_MAX} (23 h): "
                "Svix keeps an eventId unique for one day, and clocks differ"
            )
        if problems:
            raise ConfigError("notifier is misconfigured: " + "; ".join(problems))
        return settings


@dataclass(frozen=True)
class Deployment:
    """What deploy.sh sets beside the functions' environment: their timeout, which must exceed
    the longest delivery, and the heartbeat's schedule (the Scheduler's interval, and the silence
    its alert waits for: what ``status`` judges by by default)."""

    settings: Settings
    # Cloud Functions ends an invocation at its timeout: the function must have recorded the
    # outcome by then (70.35 s + 1 s with the defaults). The lease does not depend on it: a live
    # delivery renews its claim every third of the lease (LEASE_MIN_SECONDS says what bounds it).
    timeout_seconds: float = 90.0
    heartbeat_every_seconds: float = heartbeat.DEFAULT_INTERVAL_SECONDS
    heartbeat_late_after_seconds: float = heartbeat.DEFAULT_LATE_AFTER_SECONDS

    def check(self) -> None:
        """Raises :class:`ConfigError` naming every rule the deployment breaks."""
        problems = []
        longest = self.settings.longest_delivery_seconds
        if self.timeout_seconds < longest + RECORDING_SECONDS:
            problems.append(
                f"the functions' timeout ({self.timeout_seconds:g} s) must exceed the longest "
                f"delivery ({longest:g} s: the retry budget, then every Svix attempt) by "
                f"{RECORDING_SECONDS:g} s, to record its outcome"
            )
        if problems:
            raise ConfigError("notifier is misconfigured: " + "; ".join(problems))
