"""``notifier operational setup``: our operational-webhook endpoint in Svix, made right, and its
signing secret written for deploy.sh to store in Secret Manager.

Registers (or updates) the endpoint ``notifier-operational`` at the operational_webhooks
function's URL, subscribed to the types :mod:`notifier.domain.endpoint_health` acts on, then
writes its ``whsec_`` secret to a file (mode 600). Idempotent as ``heartbeat setup`` is (its
URL comparison and secret writing are reused): each piece is read first, written only when it
differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from notifier.domain.endpoint_health import EVENT_TYPES
from notifier.domain.ports import OperationalSvix
from notifier.usecases.heartbeat_setup import checked_url, same_url, write_secret

ENDPOINT_UID = "notifier-operational"
DESCRIPTION = "notifier: customer endpoint health (operational_webhooks function)"


@dataclass(frozen=True)
class OperationalSetupReport:
    """What setup found and did; safe to print (no secret in it)."""

    endpoint: str  # "created" | "updated" | "unchanged"
    secret_file: str  # "written" | "unchanged"
    url: str
    secret_path: Path

    @property
    def changed(self) -> bool:
        """True when a step created, updated or wrote something."""
        return (self.endpoint, self.secret_file) != ("unchanged", "unchanged")

    def lines(self) -> list[str]:
        """One line per step, for the plain report."""
        return [
            f"operational webhook endpoint {ENDPOINT_UID} -> {self.url}: {self.endpoint}",
            f"  event types: {', '.join(EVENT_TYPES)}",
            f"signing secret -> {self.secret_path} (mode 600): {self.secret_file}",
        ]


def setup(svix: OperationalSvix, *, url: str, secret_file: Path) -> OperationalSetupReport:
    """Makes the operational-webhook endpoint right and writes its signing secret."""
    url = checked_url(url, flag="--url")
    wanted = list(EVENT_TYPES)
    current = svix.get_operational_endpoint(ENDPOINT_UID)
    if current is None:
        svix.create_operational_endpoint(ENDPOINT_UID, url, wanted, DESCRIPTION)
        endpoint = "created"
    elif (
        not same_url(current.url, url)
        or current.filter_types != frozenset(wanted)
        or current.disabled
    ):
        svix.update_operational_endpoint(ENDPOINT_UID, url, wanted, DESCRIPTION)
        endpoint = "updated"
    else:
        endpoint = "unchanged"
    written = write_secret(secret_file, svix.operational_endpoint_secret(ENDPOINT_UID))
    return OperationalSetupReport(
        endpoint=endpoint,
        secret_file="written" if written else "unchanged",
        url=url,
        secret_path=secret_file,
    )
